"""Plots for evaluation and reports, drawn with matplotlib's Agg canvas and returned as PNG bytes.

Figures are built with :class:`matplotlib.figure.Figure` directly (no ``pyplot`` state), so
plotting works headless and from several threads.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: Line colours for runs and loss terms (colour-blind friendly, Okabe-Ito).
PALETTE = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#F0E442",
    "#000000",
)
#: Line styles that tell apart series sharing a palette colour.
LINESTYLES = ("-", "--", ":", "-.")
#: Human names of the training loss keys of ``metrics.jsonl`` (and UniMatch's pseudo-label shares).
LOSS_LABELS = {
    "loss_ce": "cross-entropy (labelled)",
    "loss_fm": "feature matching",
    "loss_st": "self-training",
    "loss_d": "discriminator",
    "accept_rate": "D accept rate (self-training)",
    "loss_u_s1": "UniMatch: strong view 1",
    "loss_u_s2": "UniMatch: strong view 2",
    "loss_u_fp": "UniMatch: feature perturbation",
    "loss_total": "UniMatch: combined loss",
    "pseudo_coverage": "pseudo-label coverage (>= threshold)",
    "pseudo_accuracy": "pseudo-label accuracy (confident, diagnostic)",
    "pseudo_accuracy_all": "pseudo-label accuracy (all, diagnostic)",
}

#: Human names of the discriminator keys of ``metrics.jsonl`` (s4GAN runs), in plot order.
DISCRIMINATOR_LABELS = {
    "d_real_mean": "mean D(ground truth)",
    "d_fake_mean": "mean D(prediction)",
    "d_above_0.5": "share D(prediction) > 0.5",
    "d_above_0.6": "share D(prediction) > 0.6",
    "d_above_0.7": "share D(prediction) > 0.7",
    "d_above_tau": "share D(prediction) > tau (accepted)",
}

Series = tuple[str, Sequence[float], Sequence[float]]


def new_figure(width: float, height: float) -> Any:
    """A matplotlib Figure (inches) with constrained layout, not attached to pyplot."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    return fig


def _style(ax: Any) -> None:
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.grid(True, color="#e5e7eb", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.tick_params(colors="#374151", labelsize=9)
    for spine in ax.spines.values():
        spine.set_color("#9ca3af")


def figure_png(fig: Any) -> bytes:
    """Render a figure to PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", facecolor="white")
    return buffer.getvalue()


def smooth(values: Sequence[float] | np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average over ``window`` points (NaN-aware; same length as input)."""
    array = np.asarray(values, dtype=np.float64)
    if window <= 1 or array.size < 3:
        return array
    valid = np.isfinite(array)
    filled = np.where(valid, array, 0.0)
    sums = np.cumsum(filled)
    counts = np.cumsum(valid)
    sums[window:] = sums[window:] - sums[:-window]
    counts[window:] = counts[window:] - counts[:-window]
    with np.errstate(invalid="ignore", divide="ignore"):
        result: np.ndarray = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return result


def confusion_matrix_png(
    matrix: np.ndarray, class_names: Sequence[str], title: str = "Confusion matrix"
) -> bytes:
    """Row-normalised confusion matrix (share of each true class), annotated in percent.

    Args:
        matrix: (C, C) counts, rows = ground truth, columns = prediction.
        class_names: One name per class.
        title: Figure title.
    """
    counts = np.asarray(matrix, dtype=np.float64)
    rows = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(rows > 0, counts / np.where(rows > 0, rows, 1), np.nan)
    size = len(class_names)
    side = min(12.0, 2.2 + 0.75 * size)
    fig = new_figure(side + 1.0, side)
    ax = fig.add_subplot()
    image = ax.imshow(np.nan_to_num(share), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(size), labels=list(class_names), rotation=35, ha="right", fontsize=9)
    ax.set_yticks(range(size), labels=list(class_names), fontsize=9)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=11)
    font = 9 if size <= 8 else 7 if size <= 14 else 5
    for row in range(size):
        for col in range(size):
            value = share[row, col]
            if math.isnan(value):
                text, colour = "–", "#6b7280"
            else:
                text = f"{100 * value:.0f}" if value >= 0.005 or value == 0 else "<1"
                colour = "white" if value > 0.55 else "#111827"
            ax.text(col, row, text, ha="center", va="center", fontsize=font, color=colour)
    colorbar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    colorbar.set_label("share of true-class pixels")
    return figure_png(fig)


def curves_png(
    series: Sequence[Series],
    title: str,
    ylabel: str,
    xlabel: str = "iteration",
    percent: bool = False,
    markers: bool = False,
) -> bytes:
    """One axes of lines (label, x, y), e.g. validation mIoU of several runs.

    Up to 6 series share a legend inside the axes; more get a legend beside the axes (so it
    never hides the lines) and, past the palette's 8 colours, dashed and dotted line styles.
    """
    many = len(series) > 6
    columns = 1 if len(series) <= 16 else 2
    fig = new_figure(7.0 + (2.6 * columns if many else 0.0), max(3.6, 0.19 * len(series) / columns))
    ax = fig.add_subplot()
    _style(ax)
    for index, (label, xs, ys) in enumerate(series):
        values = np.asarray(ys, dtype=np.float64) * (100 if percent else 1)
        ax.plot(
            xs,
            values,
            label=label,
            color=PALETTE[index % len(PALETTE)],
            linestyle=LINESTYLES[index // len(PALETTE) % len(LINESTYLES)],
            linewidth=1.8,
            marker="o" if markers else None,
            markersize=3.5,
        )
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel + (" (%)" if percent else ""))
    # legends sit outside the axes so that they never cover a curve
    if many:
        fig.legend(fontsize=9, frameon=False, loc="outside right upper", ncols=columns)
    elif len(series) > 1:
        fig.set_figheight(fig.get_figheight() + 0.25 * math.ceil(len(series) / 3))
        fig.legend(fontsize=9, frameon=False, loc="outside lower center", ncols=3)
    return figure_png(fig)


def loss_curves_png(steps: Sequence[float], losses: Mapping[str, Sequence[float]]) -> bytes:
    """Small multiples, one per loss term: raw values (faint) and a moving average."""
    keys = list(losses)
    columns = min(3, max(1, len(keys)))
    rows = math.ceil(len(keys) / columns)
    fig = new_figure(3.4 * columns, 2.5 * rows + 0.2)
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).ravel()
    window = max(1, len(steps) // 50)
    for index, key in enumerate(keys):
        ax = axes[index]
        _style(ax)
        colour = PALETTE[index % len(PALETTE)]
        values = np.asarray(losses[key], dtype=np.float64)
        ax.plot(steps, values, color=colour, alpha=0.25, linewidth=0.8)
        ax.plot(steps, smooth(values, window), color=colour, linewidth=1.8)
        ax.set_title(LOSS_LABELS.get(key, key), fontsize=10)
        ax.set_xlabel("iteration", fontsize=10)
    for ax in axes[len(keys) :]:
        ax.set_visible(False)
    return figure_png(fig)


def discriminator_png(
    steps: Sequence[float], values: Mapping[str, Sequence[float]], tau: float | None = None
) -> bytes:
    """What D does over training: mean outputs (solid) and accepted shares (dashed), smoothed.

    Args:
        steps: Iterations of the records.
        values: Series by :data:`DISCRIMINATOR_LABELS` key (missing keys are skipped).
        tau: The self-training threshold, named in the legend when known.
    """
    fig = new_figure(7.0, 3.6)
    ax = fig.add_subplot()
    _style(ax)
    window = max(1, len(steps) // 50)
    for index, (key, label) in enumerate(DISCRIMINATOR_LABELS.items()):
        if key not in values:
            continue
        if key == "d_above_tau" and tau is not None:
            label = f"share D(prediction) > tau = {tau:g} (accepted)"
        ax.plot(
            steps,
            smooth(np.asarray(values[key], dtype=np.float64), window),
            label=label,
            color=PALETTE[index % len(PALETTE)],
            linestyle="-" if key.endswith("_mean") else "--",
            linewidth=1.8,
        )
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Discriminator D", fontsize=11)
    ax.set_xlabel("iteration")
    ax.set_ylabel("D output / share")
    fig.legend(fontsize=7, frameon=False, loc="outside right upper")
    return figure_png(fig)


def per_class_bars_png(
    class_names: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    colors: Sequence[Sequence[int]] | None = None,
    title: str = "Per-class IoU",
    xlabel: str = "IoU (%)",
) -> bytes:
    """Horizontal bars per class; one bar group per series (run), values in [0, 1].

    With a single series the bars take the dataset's class colours (dark edge, so white and
    yellow classes stay visible); several series use the run palette and a legend. Missing
    values (class absent) are marked "n/a".
    """
    size = len(class_names)
    count = max(1, len(series))
    fig = new_figure(7.0, 0.8 + size * (0.32 + 0.16 * count))
    ax = fig.add_subplot()
    _style(ax)
    ax.grid(True, axis="x", color="#e5e7eb")
    ax.grid(False, axis="y")
    height = 0.8 / count
    positions = np.arange(size)
    for index, (label, values) in enumerate(series):
        offsets = positions - 0.4 + height * (index + 0.5)
        numbers = np.array([np.nan if v is None else 100 * float(v) for v in values])
        if count == 1 and colors is not None:
            face: list[Any] = [tuple(channel / 255 for channel in colour) for colour in colors]
        else:
            face = [PALETTE[index % len(PALETTE)]] * size
        ax.barh(
            offsets,
            np.nan_to_num(numbers),
            height=height * 0.92,
            color=face,
            edgecolor="#374151",
            linewidth=0.6,
            label=label,
        )
        for offset, number in zip(offsets, numbers, strict=True):
            text = "n/a" if math.isnan(number) else f"{number:.1f}"
            ax.text(
                (0 if math.isnan(number) else number) + 1,
                offset,
                text,
                va="center",
                fontsize=9 if count <= 2 else 8,
                color="#374151",
            )
    ax.set_yticks(positions, labels=list(class_names), fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, 108)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=11)
    if count > 1:  # below the axes: never over a bar
        fig.set_figheight(fig.get_figheight() + 0.25 * math.ceil(count / 3))
        fig.legend(fontsize=9, frameon=False, loc="outside lower center", ncols=3)
    return figure_png(fig)


def group_bars_png(
    labels: Sequence[str],
    means: Sequence[float],
    spreads: Sequence[float],
    counts: Sequence[int],
    title: str,
    ylabel: str,
) -> bytes:
    """Bars of a mean (in [0, 1]) with a ±spread whisker per group, annotated with n."""
    fig = new_figure(max(5.0, 1.1 * len(labels) + 2.0), 3.6)
    ax = fig.add_subplot()
    _style(ax)
    ax.grid(False, axis="x")
    positions = np.arange(len(labels))
    values = 100 * np.asarray(means, dtype=np.float64)
    errors = 100 * np.nan_to_num(np.asarray(spreads, dtype=np.float64))
    colours = [PALETTE[index % len(PALETTE)] for index in range(len(labels))]
    ax.bar(positions, values, color=colours, alpha=0.85, width=0.6)
    repeated = np.asarray(counts) > 1
    if repeated.any():  # whiskers only where there is a spread to show
        ax.errorbar(
            positions[repeated],
            values[repeated],
            yerr=errors[repeated],
            fmt="none",
            ecolor="#111827",
            capsize=4,
            linewidth=1.2,
        )
    for position, value, error, count in zip(positions, values, errors, counts, strict=True):
        ax.text(
            position,
            value + error + 0.8,
            f"{value:.1f}" + (f" ±{error:.1f}" if count > 1 else "") + f"\nn={count}",
            ha="center",
            va="bottom",
            fontsize=9,
        )
    ax.set_xticks(positions, labels=list(labels), rotation=20, ha="right", fontsize=9)
    ax.set_ylabel(ylabel + " (%)")
    ax.set_ylim(0, min(115.0, max(10.0, float(np.nanmax(values + errors)) * 1.25 + 5)))
    ax.set_title(title, fontsize=11)
    return figure_png(fig)
