"""Write a report as .html (self-contained: inline CSS, plots as base64 PNG), .md (plots as
PNG files beside it) or .json (the contract in document.py), chosen by the file extension.

Both text formats are drawn from the JSON dictionary, so they show exactly what the contract
holds: a withheld probability (fit not reliable) prints as NOT RELIABLE. Their figures are
drawn here, from the data the report holds (figures.py); the JSON names them and draws none.
"""
from __future__ import annotations

import base64
import html
import re
import sys
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError, Diagnostic
from ..files import STDIO, atomic_write
from .document import Report, to_dict, to_json
from .figures import draw

FORMATS = (".html", ".md", ".json")
# cost columns: their headers, "{currency}" filled in from the report's units
COST_HEADERS = {"training_gpu_hours": "training GPU-hours", "training_cost": "training cost ({currency})",
                "serving_gpu_hours_per_year": "serving GPU-hours per year",
                "serving_cost_per_year": "serving cost per year ({currency})", "total_cost": "total cost ({currency})"}

# above this many candidates, the probabilities are one row per candidate, conditions as columns
LONG_TABLE_MAX_CANDIDATES = 5
# a block is ("h1" | "h2" | "p" | "warn", text) or ("table", header, rows) or ("img", title, png)
Block = tuple


def number(value: Any) -> str:
    if value is None:
        return "NOT RELIABLE"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def interval(summary: dict | None) -> str:
    if summary is None:
        return "-"
    if summary["q05"] == summary["q95"]:  # a fixed quantity: no interval to show
        return number(summary["median"])
    return f"{number(summary['median'])} [{number(summary['q05'])}, {number(summary['q95'])}]"


def probability(p: float | None, error: float | None) -> str:
    return "NOT RELIABLE" if p is None else f"{p:.3f} ± {error:.3f}"


def blocks(report: Report) -> list[Block]:
    doc = to_dict(report)
    out: list[Block] = [("h1", doc["title"])]
    out.append(("p", f"Spec {doc['spec']}, fitted by {doc['method']}; {doc['generator']}."))
    out.append(("p", diagnostics_line(doc["diagnostics"], doc["reliable"])))
    if not doc["reliable"]:
        out.append(("warn", "NOT RELIABLE: the fit failed its diagnostics, so no probability or "
                            "recommendation is given. Why: " + "; ".join(doc["problems"])))
    out.extend(("warn", f"Warning: {warning}.") for warning in doc["warnings"])
    out.append(("h2", "Question and assumptions"))
    out.append(("p", "Targets and budgets: " + (", ".join(doc["conditions"]) or "none")))
    for note in doc["notes"] + [f"Monte Carlo errors: {doc['mc_error_basis']}."]:
        out.append(("p", note))
    if doc["recommendation"]:
        r = doc["recommendation"]
        out.append(("h2", "Recommendation"))
        out.append(("p", f"Rule: {r['rule_text']}."))
        out.append(("p", f"Recommended: {r['chosen'] or 'none'} ({r['reason']})."))
    out.extend(candidate_blocks(doc["candidates"], report.label))
    if doc["allocation"]:
        a = doc["allocation"]
        fixed = ", ".join(f"{k} = {number(v)}" for k, v in a["fixed"].items()) or "none"
        out.append(("h2", f"Compute-optimal allocation at C = {a['flops']:.3g} FLOPs"))
        out.append(("p", f"Per posterior draw, the law minimised over N with D = C/(6N); other inputs "
                         f"fixed at: {fixed}. Share of draws at the search grid's edge: "
                         f"{a['share_at_grid_edge']:.3f}."))
        loss = a["response"]
        rows = [[label, interval(a[key])] for key, label in
                (("n_opt", "N* (parameters)"), ("d_opt", "D* (tokens)"),
                 ("loss", f"{report.label(loss)} at (N*, D*) (law)"),
                 ("tokens_per_parameter", "tokens per parameter D*/N*"))]
        out.append(("table", ["quantity", "median [90% interval]"], rows))
    if doc["lifetime"]:
        life = doc["lifetime"]
        out.append(("h2", "Lifetime compute (Sardana et al. 2024)"))
        out.append(("p", f"Minimise 6 N D_train + 2 N D_inf to reach loss {life['target_loss']:g} and then "
                         f"serve D_inf = {life['inference_tokens']:.3g} tokens; share of draws that can "
                         f"reach the target: {life['share_feasible']:.3f}."))
        keys = (("n_opt", "N (parameters)"), ("d_train", "D_train (tokens)"), ("tokens_per_parameter", "tokens per parameter"),
                ("total_flops", "lifetime FLOPs"), ("chinchilla_total_flops", "lifetime FLOPs at the "
                 "training-only optimum"), ("saving_vs_chinchilla", "share saved"))
        rows = [[label, interval(life.get(key))] for key, label in keys if key in life]
        out.append(("table", ["quantity", "median [90% interval]"], rows))
    if doc["cost_assumptions"]:
        out.append(("h2", "Cost per candidate"))
        out.append(("p", "Assumptions: " + doc["cost_assumptions"] + "."))
        keys = ("training_gpu_hours", "training_cost", "serving_gpu_hours_per_year",
                "serving_cost_per_year", "total_cost")
        present = [k for k in keys if any(c["costs"] and k in c["costs"] for c in doc["candidates"])]
        rows = [[c["name"]] + [interval(c["costs"].get(k)) for k in present] for c in doc["candidates"]]
        currency = doc["units"].get("cost", "")
        out.append(("table", ["candidate"] + [COST_HEADERS[k].format(currency=currency) for k in present], rows))
    for title, image in draw(report.figures).items():
        out.append(("img", title, image))
    return out


def diagnostics_line(d: dict, reliable: bool) -> str:
    if d.get("max_r_hat") is None:
        return "Diagnostics: a point fit, no posterior to diagnose."
    verdict = "passed" if reliable else "FAILED"
    return (f"Diagnostics {verdict}: {d['divergences']} divergent transitions, largest R-hat "
            f"{d['max_r_hat']:.3f}, smallest bulk ESS {d['min_ess_bulk']:.0f}.")


def candidate_blocks(candidates: list[dict], label: Callable[[str], str]) -> list[Block]:
    if not candidates:
        return []
    out: list[Block] = [("h2", "Candidates")]
    quantities = candidates[0]["quantities"]
    header = ["candidate", "training FLOPs"]
    for q, entry in quantities.items():
        q = label(q)
        header += [f"{q}, measured"] if entry["source"] == "table" else [f"{q}: law", f"{q}: new run"]
    header += ["beyond the data (factor)", "on frontier"]
    rows = []
    for c in candidates:
        row = [c["name"], number(c["training_flops"])]
        for q, entry in quantities.items():
            if entry["source"] == "table":
                row.append(number(c["quantities"][q]["observed"]["median"]))
            else:
                row += [interval(c["quantities"][q]["law"]), interval(c["quantities"][q]["observed"])]
        beyond = {k: v for k, v in c["extrapolation"].items() if v > 1.0}
        row.append(", ".join(f"{k} x{v:.3g}" for k, v in beyond.items()) or "inside")
        row.append({True: "yes", False: "no", None: "-"}[c["on_frontier"]])
        rows.append(row)
    out.append(("p", "Medians with 90% intervals. 'law' is the law's own (epistemic) uncertainty; "
                     "'new run' adds the noise of one training run."))
    out.append(("table", header, rows))
    if any(c["targets"] for c in candidates):
        out.append(("h2", "Probability of meeting each target"))
        out.extend(compact_probability_blocks(candidates) if len(candidates) > LONG_TABLE_MAX_CANDIDATES
                   else long_probability_blocks(candidates))
    return out


def long_probability_blocks(candidates: list[dict]) -> list[Block]:
    """One row per candidate and condition, with the law's own probability and the shortfall."""
    rows = []
    for c in candidates:
        for t in c["targets"]:
            law = "NOT RELIABLE" if t["p_met"] is None else ("-" if t["p_met_law"] is None else f"{t['p_met_law']:.3f}")
            rows.append([c["name"], t["condition"], probability(t["p_met"], t["mc_error"]), law,
                         number(t["expected_shortfall"])])
        if c["targets"]:
            rows.append([c["name"], "all of them", probability(c["p_all_met"], c["mc_error_all"]), "", ""])
    return [("table", ["candidate", "condition", "P(met), new run, with MC error", "P(met), law",
                       "expected shortfall"], rows)]


def compact_probability_blocks(candidates: list[dict]) -> list[Block]:
    """Many candidates: one row each, a column per condition (P(met) for a new run)."""
    conditions = [t["condition"] for t in candidates[0]["targets"]]
    rows = [[c["name"]] + [probability(t["p_met"], t["mc_error"]) for t in c["targets"]]
            + [probability(c["p_all_met"], c["mc_error_all"])] for c in candidates]
    return [("p", "P(met) for a new run, with its Monte Carlo error. The law's own probabilities "
                  "and the expected shortfalls are in the report's JSON."),
            ("table", ["candidate"] + [f"P({condition})" for condition in conditions] + ["P(all met)"], rows)]


def to_markdown(report: Report, figure_dir: Path, stem: str) -> str:
    lines = []
    for block in blocks(report):
        kind = block[0]
        if kind == "h1":
            lines += [f"# {block[1]}", ""]
        elif kind == "h2":
            lines += [f"## {block[1]}", ""]
        elif kind == "p":
            lines += [block[1], ""]
        elif kind == "warn":
            lines += [f"> **{block[1]}**", ""]
        elif kind == "table":
            _, header, rows = block
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "---|" * len(header))
            lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
            lines.append("")
        else:
            _, title, image = block
            name = f"{stem}_{slug(title)}.png"
            atomic_write(figure_dir / name, lambda temp, image=image: Path(temp).write_bytes(image))
            lines += [f"![{title}]({name})", ""]
    return "\n".join(lines)


STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:0.88em}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f2f2f2}.warn{background:#fde2e1;border:2px solid #c0392b;padding:0.8em;font-weight:bold}
img{max-width:100%;display:block;margin:0.5em 0 1.5em}h2{border-bottom:1px solid #ddd;padding-bottom:0.2em}"""


def to_html(report: Report) -> str:
    parts = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'>",
             f"<title>{html.escape(report.title)}</title><style>{STYLE}</style></head><body>"]
    for block in blocks(report):
        kind = block[0]
        if kind in ("h1", "h2", "p"):
            parts.append(f"<{kind}>{html.escape(block[1])}</{kind}>")
        elif kind == "warn":
            parts.append(f"<p class='warn'>{html.escape(block[1])}</p>")
        elif kind == "table":
            _, header, rows = block
            head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
            body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
            parts.append(f"<table><tr>{head}</tr>{body}</table>")
        else:
            _, title, image = block
            data = base64.b64encode(image).decode("ascii")
            parts.append(f"<h3>{html.escape(title)}</h3><img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    return "\n".join(parts)


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")[:40]


def write_report(report: Report, path: str | Path) -> Path | str:
    """Write the report in the format its extension names; `-` writes the JSON to standard
    output (the other formats carry images)."""
    if str(path) == STDIO:
        sys.stdout.write(to_json(report) + "\n")
        return STDIO
    path = Path(path)
    if path.suffix not in FORMATS:
        raise ConfigError(Diagnostic(f"cannot write a report as {path.suffix or 'a file without extension'}",
                                     filename=str(path), hint="name the output .html, .md or .json"))
    if path.suffix == ".json":
        text = to_json(report) + "\n"
    elif path.suffix == ".md":
        text = to_markdown(report, path.parent, path.stem)
    else:
        text = to_html(report)
    # a report cut short by a kill would read as a whole one: it appears complete or not at all
    return atomic_write(path, lambda temp: Path(temp).write_text(text))
