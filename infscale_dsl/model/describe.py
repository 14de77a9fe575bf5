"""What `infscale-dsl show` prints of a compiled model: each law's noise and drift, every
parameter's role and prior, and how the sampler sees each one (compile.py's reparametrisations)."""
from __future__ import annotations

from .compile import (CENTRED_MIN_ROWS, GROUP_Z_SUFFIX, LOG_REF_SUFFIX, LOG_SUM_SUFFIX, SHARES_SUFFIX,
                      CompiledModel)
from ..language.distributions import DEFAULT_NU
from .likelihood import ROBUST_ROWS_PER_PARAMETER, law_parameters, noise_text


def describe(compiled: CompiledModel) -> str:
    lines = [f"spec: {compiled.spec.filename}"]
    for law in compiled.spec.laws:
        lines.append(f"law {law.response}: noise {noise_text(law.noise)}{_noise_source(compiled, law)}, "
                     f"scale parameter {law.sigma}; beyond the fitted data, misfit grows by "
                     f"{law.drift} per log unit of distance in "
                     f"{', '.join(compiled.spec.law_inputs(law)) or 'its inputs (none is data yet: give the table)'}")
    if compiled.spec.derived:
        lines.append("derived: " + ", ".join(d.name for d in compiled.spec.derived))
    lines.append("")
    width = max([34] + [len(choice.text) for choice in compiled.priors.values()])
    lines.append(f"{'parameter':<12} {'role':<12} {'prior':<{width}} {'source':<9} over")
    for name in compiled.spec.parameters:
        choice, role = compiled.priors[name], compiled.roles.role[name]
        group = compiled.spec.parameters[name].group
        label = f"{name}[{group}]" if group else name
        lines.append(f"{label:<12} {role:<12} {choice.text:<{width}} {choice.source:<9} {choice.on}")
    lines.append("")
    for term in compiled.roles.terms:
        refs = ", ".join(f"mean log {b} = {compiled.log_reference[b]:.4g}" if b in compiled.log_reference
                         else f"mean log {b}" for b in dict.fromkeys(b for b, _ in term.powers))
        if not any(term.coefficient in offset_sum.coefficients for offset_sum in compiled.joint):
            lines.append(f"{term.coefficient} is sampled as {term.coefficient}{LOG_REF_SUFFIX}, "
                         f"the log of its term at typical values ({refs})")
    for offset_sum in compiled.joint:
        parts = ", ".join((offset_sum.offset,) + offset_sum.coefficients)
        times = "" if offset_sum.factor is None else \
            f", times {compiled.roles.added_to[offset_sum.factor]:g} + {compiled.roles.term_for(offset_sum.factor).text}"
        lines.append(f"{parts} are sampled jointly as {offset_sum.offset}{LOG_SUM_SUFFIX}, the log of "
                     f"{offset_sum.offset} plus the terms{times} at typical values, and "
                     f"{offset_sum.offset}{SHARES_SUFFIX}, each term's log-share against "
                     f"{offset_sum.offset}; their priors are unchanged")
    for sigma in compiled.collapsed:
        lines.append(f"{sigma} is integrated out while sampling, then drawn for each draw from "
                     f"its conditional given that draw's residuals")
    for name, parameter in compiled.spec.parameters.items():
        if not parameter.group:
            continue
        levels = f"{name} varies by {parameter.group} ({len(compiled.levels.get(parameter.group, ()))} levels)"
        if name in compiled.centred:
            lines.append(f"{levels}, centred: at least {CENTRED_MIN_ROWS} rows in every level")
        else:
            lines.append(f"{levels}, non-centred: {name}{GROUP_Z_SUFFIX} ~ Normal(0, 1) per level")
    if compiled.runs is not None:
        lines += compiled.runs.describe(compiled.spec)
    elif compiled.spec.curves is not None:
        which = ", ".join(law.response for law in compiled.spec.curve_laws)
        lines.append(f"curves by {compiled.spec.curves.column} ({which}): each run's rows share an offset "
                     f"on the noise's scale (tau_<response>); give a table to see how many runs")
    return "\n".join(lines)


def _noise_source(compiled: CompiledModel, law) -> str:
    """Why the law has its noise, where the spec declares none: the table decided."""
    if not law.noise.default:
        return " (declared)"
    rule = (f"StudentT(nu={DEFAULT_NU:g}) on log with {ROBUST_ROWS_PER_PARAMETER} or more fitted rows "
            f"per law parameter, else Normal on log; declare `{law.response} noise ...` to choose")
    if law.response not in compiled.n_rows:
        return f" (default without a table: {rule})"
    n_parameters = len(law_parameters(compiled.spec, law))
    return f" (default: {compiled.n_rows[law.response]} rows for {n_parameters} parameters; {rule})"
