"""The report's figures, each drawn from arrays and returned as PNG bytes (Agg backend).

Bands are always the 90% interval (5th to 95th percentile of the draws) unless a figure's
legend says otherwise; the law's own uncertainty is the darker band, a new run's noise the
lighter one.
"""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend first)
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

from .figure_data import GroupCurve  # noqa: E402
from .risk import Summary  # noqa: E402

BAND = (5, 50, 95)
FAN = ((5, 95, 0.18), (25, 75, 0.35))  # (low, high percentile, alpha) from outer to inner


def png(fig, tight: bool = True) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return buffer.getvalue()


def data_against_law(groups: list[GroupCurve], x_label: str, y_label: str) -> bytes:
    n = len(groups)
    columns = min(n, 3)
    rows = -(-n // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.3 * rows), squeeze=False)
    for ax, group in zip(axes.flat, groups):
        low, mid, high = np.percentile(group.law, BAND, axis=0)
        new_low, new_high = np.percentile(group.observed, (BAND[0], BAND[2]), axis=0)
        ax.fill_between(group.x_grid, new_low, new_high, color="tab:blue", alpha=0.15, label="new run, 90%")
        ax.fill_between(group.x_grid, low, high, color="tab:blue", alpha=0.4, label="law, 90%")
        ax.plot(group.x_grid, mid, color="tab:blue", lw=1.2, label="law, median")
        ax.scatter(group.x_points, group.y_points, s=14, color="black", zorder=3, label="data")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # crowded within a decade
        ax.set_title(group.name, fontsize=10)
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("Data against the fitted law (other inputs at the group's median)", fontsize=11)
    fig.tight_layout()
    return png(fig)


def fan_chart(budgets: np.ndarray, loss: np.ndarray, observed_max_flops: float | None,
              target: float | None, y_label: str) -> bytes:
    """loss: (n_budgets, S) compute-optimal loss per budget and draw."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for low, high, alpha in FAN:
        ax.fill_between(budgets, np.percentile(loss, low, axis=1), np.percentile(loss, high, axis=1),
                        color="tab:purple", alpha=alpha, lw=0, label=f"{high - low}% interval")
    ax.plot(budgets, np.median(loss, axis=1), color="tab:purple", label="median")
    if observed_max_flops:
        ax.axvline(observed_max_flops, color="grey", ls="--", lw=1)
        ax.axvspan(observed_max_flops, budgets[-1], color="grey", alpha=0.08, label="beyond the data")
    if target is not None:
        ax.axhline(target, color="tab:red", lw=1, label=f"target {target:g}")
    ax.set_xscale("log")
    ax.set_xlabel("training compute C (FLOPs)")
    ax.set_ylabel(f"{y_label} at the compute-optimal N")
    ax.set_title("Compute-optimal loss against compute (law's uncertainty)", fontsize=11)
    ax.legend(fontsize=7)
    return png(fig)


def pair_plot(draws: dict[str, np.ndarray], max_points: int = 1500) -> bytes:
    """Scatter matrix of parameter draws; parameters spanning decades are shown as log10."""
    names = list(draws)
    shown = {}
    for name in names:
        values = np.asarray(draws[name], dtype=np.float64)
        wide = values.min() > 0 and values.max() / values.min() > 20
        shown[f"log10 {name}" if wide else name] = np.log10(values) if wide else values
    labels = list(shown)
    k = len(labels)
    step = max(1, len(next(iter(shown.values()))) // max_points)
    fig, axes = plt.subplots(k, k, figsize=(1.9 * k + 0.6, 1.9 * k + 0.6), squeeze=False)
    for i, row in enumerate(labels):
        for j, column in enumerate(labels):
            ax = axes[i, j]
            if i == j:
                ax.hist(shown[row], bins=30, color="tab:green", alpha=0.7)
            elif i > j:
                ax.scatter(shown[column][::step], shown[row][::step], s=2, alpha=0.3, color="tab:green")
                r = np.corrcoef(shown[column], shown[row])[0, 1]
                ax.text(0.03, 0.88, f"r={r:+.2f}", transform=ax.transAxes, fontsize=7)
            else:
                ax.axis("off")
            # tick labels only on the outer edge: fewer texts to lay out, and a cleaner grid
            ax.tick_params(labelsize=6, labelbottom=i == k - 1, labelleft=j == 0 and i > 0)
            ax.locator_params(nbins=3)
            if i == k - 1:
                ax.set_xlabel(column, fontsize=8)
            if j == 0 and i > 0:
                ax.set_ylabel(row, fontsize=8)
    fig.suptitle("Posterior draws of the law's parameters", fontsize=11)
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.1, top=0.93, wspace=0.08, hspace=0.08)
    return png(fig, tight=False)


def frontier_plot(names: list[str], loss: list[Summary], latency: list[Summary], on_front: np.ndarray,
                  chosen: str | None, target: float | None, budget: float | None, loss_label: str,
                  latency_label: str) -> bytes:
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    x = np.array([s.median for s in latency])
    y = np.array([s.median for s in loss])
    x_err = np.array([[s.median - s.q05 for s in latency], [s.q95 - s.median for s in latency]])
    y_err = np.array([[s.median - s.q05 for s in loss], [s.q95 - s.median for s in loss]])
    ax.errorbar(x, y, xerr=x_err, yerr=y_err, fmt="o", color="tab:blue", ecolor="tab:blue",
                elinewidth=1, capsize=3, label="median, 90% interval")
    order = np.argsort(x[on_front])
    ax.plot(x[on_front][order], y[on_front][order], color="tab:orange", lw=1.5, label="Pareto frontier")
    for name, xi, yi in zip(names, x, y):
        ax.annotate(name, (xi, yi), textcoords="offset points", xytext=(6, 6), fontsize=8)
    if chosen is not None:
        i = names.index(chosen)
        ax.scatter([x[i]], [y[i]], s=180, facecolors="none", edgecolors="tab:red", lw=2, label="recommended")
    if target is not None:
        ax.axhline(target, color="tab:red", lw=1, ls="--", label=f"target {target:g}")
    if budget is not None:
        ax.axvline(budget, color="tab:green", lw=1, ls="--", label=f"latency budget {budget:g}")
    ax.set_xlabel(latency_label)
    ax.set_ylabel(loss_label)
    ax.set_title("Loss against latency per candidate", fontsize=11)
    ax.legend(fontsize=7)
    return png(fig)


def probability_against_budget(budgets: np.ndarray, p: np.ndarray, target_text: str,
                               threshold: float | None) -> bytes:
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.plot(budgets, p, marker="o", ms=3, color="tab:green")
    if threshold is not None:
        ax.axhline(threshold, color="grey", ls="--", lw=1, label=f"threshold {threshold:g}")
        ax.legend(fontsize=7)
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("training compute C (FLOPs), compute-optimal N and D")
    ax.set_ylabel(f"P({target_text})")
    ax.set_title("Probability of meeting the target against the compute budget (law)", fontsize=11)
    return png(fig)
