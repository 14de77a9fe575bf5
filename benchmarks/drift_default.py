"""The drift's default prior, measured: which prior of drift_<response> (likelihood.py) gives
the extrapolation benchmark's 90 % intervals the best coverage and the best interval score.

    python benchmarks/drift_default.py [--tasks a,b] [--data ../shared/data] [--seed 0]

No fitted row informs the drift (every one lies inside the fitted data), so a fit draws it from
its prior after sampling, and a candidate prior needs no refit: each task (tasks.py) is fitted
once at `fit`'s defaults, then each held-out run's value is drawn again from the same posterior
draws of the law and its noise scale under each candidate, with the same noise draws. Candidates:
- `fixed s`: drift ~ HalfNormal(s), the same for every table (the default until 2026-12-03: 0.02);
- `scatter k, f`: drift ~ HalfNormal(sqrt(f^2 + (k sigma)^2)) at each posterior draw's noise
  scale sigma: a law that its own runs scatter around more bends away faster beyond them.
Printed per candidate: the pooled 90 % coverage, the lowest coverage of a task with 10 or more
held-out runs, the interval score (Gneiting and Raftery 2007: the 90 % interval's width plus 20
times the distance by which it misses the truth, relative to the truth; lower is better) as the
geometric mean over tasks of its ratio to `fixed 0.02`, and the tasks whose coverage is off 0.90
at binomial p < 0.05 (too narrow or too wide), and then those off at p < 0.05 among the coverages
the candidate's own joint draws expect (`p_own`, extrapolation.py: a task's held-out runs share
its fit's error, which the binomial ignores). The rule that chose the default: the best interval
score among the candidates that leave no task too narrow and every task of 10 or more held-out
runs covered at 0.85 or more (a margin over the issue's 0.80 for Monte Carlo noise: a task of 30
runs moves by a run, 0.03, between seeds); the same rule with "too narrow" judged by `p_own` is
printed beside it. Then, per task, MARE / coverage / mean relative width /
interval score under `fixed 0.02` and as fitted (the default).
"""
from __future__ import annotations

import itertools
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from extrapolation import coverage_p, fit_each, score, task_arguments  # noqa: E402

# one row per run in each (no `curves by`): a new run's spread is its noise and drift alone
MAIN_TASKS = ("chinchilla_top_decile", "chinchilla_few6", "seed_86M", "seed_116M", "seed_126M", "seed_164M",
              "seed_178M", "seed_237M", "seed_313M", "seed_339M", "seed_1B", "seed_1B_main27", "seed_few5_gadre",
              "seed_few6_bian", "porian_corrected", "porian_kaplan_like", "opt_trajectories", "cpu_sweep_largest")
FIXED = (0.01, 0.02, 0.03)
SCATTER = tuple(itertools.product((1.0, 1.5, 2.0, 2.5, 3.0), (0.0, 0.01, 0.02)))  # (k, floor)
MISS_WEIGHT = 2 / 0.1  # the interval score's weight on a miss, for a 90 % interval
LARGE_TASK, LOWEST_COVERAGE = 10, 0.85  # the choice's floor on the coverage of tasks this large


def interval_score(truth: np.ndarray, low: np.ndarray, high: np.ndarray) -> float:
    """Mean over runs of the 90 % interval score relative to the truth."""
    misses = np.maximum(low - truth, 0) + np.maximum(truth - high, 0)
    return float(np.mean((high - low + MISS_WEIGHT * misses) / truth))


def scores(observed: np.ndarray, truth: np.ndarray) -> dict:
    """The benchmark's figures for draws (S, n) of the held-out runs, and the interval score."""
    low, median, high = np.quantile(observed, [0.05, 0.5, 0.95], axis=0)
    return score(truth, median, low, high, observed) | {"interval_score": interval_score(truth, low, high),
                                                        "n": len(truth)}


def candidates() -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """name -> the drift's scale per posterior draw, from that draw's sigma (S, 1)."""
    rules = {f"fixed {s:g}": (lambda sigma, s=s: np.full_like(sigma, s)) for s in FIXED}
    rules |= {f"scatter {k:g}, {f:g}": (lambda sigma, k=k, f=f: np.sqrt(f ** 2 + (k * sigma) ** 2))
              for k, f in SCATTER}
    return rules


def redraw(result, task, seed: int) -> dict[str, dict]:
    """Each candidate's scores on one task, from one fit's posterior."""
    from infscale_dsl.model.likelihood import Likelihood
    from infscale_dsl.prediction.predict import predict_draws

    law = result.spec.law_for(task.response)
    draws = predict_draws(result, task.test, seed=seed)[task.response]
    truth = task.test[task.response].to_numpy(float)
    sigma = np.asarray(result.draws[law.sigma], float)[:, None]  # (S, 1)
    out = {"as fitted": scores(draws.observed, truth)}
    for name, scale in candidates().items():
        rng = np.random.default_rng(seed)  # the same noise and z draws for every candidate
        drift = scale(sigma) * np.abs(rng.standard_normal(sigma.shape))  # HalfNormal(scale), (S, 1)
        observed = Likelihood.of(law).draws(draws.law, sigma, drift, draws.distance, rng)
        out[name] = scores(observed, truth)
    return out


def summarise(rows: dict[str, dict], baseline: dict[str, dict]) -> dict:
    """A candidate's figures over the tasks (task -> scores), against `fixed 0.02`'s."""
    off = {t: r for t, r in rows.items() if coverage_p(r["covered"], r["n"]) < 0.05}
    off_own = {t: r for t, r in rows.items() if r["p_own"] < 0.05}
    return {"pooled": sum(r["covered"] for r in rows.values()) / sum(r["n"] for r in rows.values()),
            "lowest": min(r["coverage90"] for r in rows.values() if r["n"] >= LARGE_TASK),
            "ratio": float(np.exp(np.mean([np.log(rows[t]["interval_score"] / baseline[t]["interval_score"])
                                           for t in rows]))),
            "narrow": [t for t, r in off.items() if r["coverage90"] < 0.9],
            "wide": [t for t, r in off.items() if r["coverage90"] > 0.9],
            "narrow_own": [t for t, r in off_own.items() if r["coverage90"] < 0.9],
            "wide_own": [t for t, r in off_own.items() if r["coverage90"] > 0.9]}


def eligible(figures: dict, judge: str = "narrow") -> bool:
    """No task too narrow (by the binomial, `narrow`, or by its own draws, `narrow_own`), and
    every large task covered at LOWEST_COVERAGE or more."""
    return not figures[judge] and figures["lowest"] >= LOWEST_COVERAGE


def main() -> int:
    args = task_arguments(__doc__, MAIN_TASKS)
    by_task = {}
    for task, result in fit_each(args):
        by_task[task.name] = redraw(result, task, args.seed)
        print(f"fitted {task.name} (gate {'ok' if result.diagnostics['ok'] else 'FAILED'})", flush=True)

    names = list(next(iter(by_task.values())))
    per_candidate = {name: {t: rows[name] for t, rows in by_task.items()} for name in names}
    figures = {name: summarise(per_candidate[name], per_candidate["fixed 0.02"]) for name in names}
    print(f"\n{'drift prior':<18} {'pooled':>7} {'lowest':>7} {'IS ratio':>9}   tasks off 0.90 at p < 0.05")
    for name, f in figures.items():
        print(f"{name:<18} {f['pooled']:7.3f} {f['lowest']:7.2f} {f['ratio']:9.3f}   too narrow: "
              f"{', '.join(f['narrow']) or '-'}; too wide: {', '.join(f['wide']) or '-'}")
    print(f"\n{'drift prior':<18} tasks off at p_own < 0.05 (by the candidate's own draws)")
    for name, f in figures.items():
        print(f"{name:<18} too narrow: {', '.join(f['narrow_own']) or '-'}; too wide: {', '.join(f['wide_own']) or '-'}")
    for judge, by in (("narrow", "binomial"), ("narrow_own", "own draws")):
        chosen = min((n for n in names if n != "as fitted" and eligible(figures[n], judge)),
                     key=lambda n: figures[n]["ratio"], default=None)
        print(f"\nchosen (best interval score, no task too narrow by {by}, tasks of {LARGE_TASK}+ runs covered "
              f"at {LOWEST_COVERAGE} or more): {chosen}")
    print("\nper task: MARE % / coverage / width % / interval score %, under fixed 0.02 and as fitted")
    for t in by_task:
        cells = [f"{100 * r['mare']:5.2f} / {r['coverage90']:.2f} / {100 * r['rel_width90']:5.1f} / "
                 f"{100 * r['interval_score']:5.1f}" for r in (by_task[t]["fixed 0.02"], by_task[t]["as fitted"])]
        print(f"{t:<22} {cells[0]:<32} {cells[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
