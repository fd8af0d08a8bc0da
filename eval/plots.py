"""PNG plots of a run: recall/hit@k curves, per-metric bars, a histogram of per-question scores."""

from __future__ import annotations

import math
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server or in CI
import matplotlib.pyplot as plt  # noqa: E402

_AT_K = re.compile(r"^(.+)@(\d+)$")


def at_k_curves(figures: dict[str, dict[str, float]]) -> dict[tuple[str, str], list[tuple[int, float]]]:
    """(row, metric family) -> [(k, value)] for families with several cut-offs (recall@1,5,10...)."""
    curves: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for row, metrics in figures.items():
        for name, value in metrics.items():
            match = _AT_K.match(name)
            if match and not math.isnan(value):
                curves.setdefault((row, match.group(1)), []).append((int(match.group(2)), value))
    return {key: sorted(points) for key, points in curves.items() if len(points) > 1}


def plot_curves(figures: dict[str, dict[str, float]], path: Path) -> Path | None:
    curves = at_k_curves(figures)
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for (row, family), points in curves.items():
        ks, values = zip(*points, strict=True)
        ax.plot(ks, values, marker="o", label=f"{row}: {family}")
    ax.set_xscale("log")
    ax.set_xticks(sorted({k for points in curves.values() for k, _ in points}))
    ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.set(xlabel="k", ylabel="score", ylim=(0, 1.05), title="score at k")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")  # curves rise to the right: the top is taken
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_bars(figures: dict[str, dict[str, float]], path: Path) -> Path:
    labels = [f"{row}\n{metric}" for row, metrics in figures.items() for metric in metrics]
    values = [0.0 if math.isnan(v) else v for metrics in figures.values() for v in metrics.values()]
    colours = [f"C{i}" for i, metrics in enumerate(figures.values()) for _ in metrics]
    fig, ax = plt.subplots(figsize=(max(6, 0.55 * len(values)), 4))
    bars = ax.bar(range(len(values)), values, color=colours)
    ax.bar_label(bars, fmt="%.3f", fontsize=7)
    ax.set_xticks(range(len(values)), labels, rotation=60, ha="right", fontsize=7)
    ax.set(ylim=(0, 1.05), title="figures")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_histogram(scores: dict[str, list[float]], path: Path) -> Path | None:
    """scores: label -> per-question values (NaNs are left out and said in the legend)."""
    if not scores:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, values in scores.items():
        defined = [v for v in values if not math.isnan(v)]
        missing = len(values) - len(defined)
        ax.hist(
            defined,
            bins=20,
            range=(0, 1),
            alpha=0.5,
            label=f"{label} (n={len(defined)}{f', {missing} NaN' if missing else ''})",
        )
    ax.set(xlabel="per-question score", ylabel="questions", title="score distribution")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
