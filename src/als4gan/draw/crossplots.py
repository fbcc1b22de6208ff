"""Charts of the cross-run report sections: paired differences and per-class bars.

Sized to be shown at their natural width in the page (no downscaling at the default page
width), with text of at least 10 pt at 110 dpi (15 px) and legends outside the data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from als4gan.draw.plots import PALETTE, figure_png, new_figure

#: Smallest font size used in these charts, in points (10 pt at 110 dpi = 15 px).
MIN_FONT_PT = 10
#: Width of these charts in inches (770 px at 110 dpi: fits the report's content column).
WIDTH_IN = 7.0


def _style(ax: Any) -> None:
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.tick_params(colors="#374151", labelsize=MIN_FONT_PT)
    ax.set_axisbelow(True)


def differences_png(
    labels: Sequence[str],
    means: Sequence[float],
    lows: Sequence[float | None],
    highs: Sequence[float | None],
    title: str,
) -> bytes:
    """Mean paired differences (fractions) with their 95 % intervals, one row per comparison.

    Significant rows (interval excluding 0) are drawn in the accent colour, the others grey;
    rows without an interval (one seed) show the point only.
    """
    count = len(labels)
    fig = new_figure(WIDTH_IN, 1.2 + 0.42 * count)
    ax = fig.add_subplot()
    _style(ax)
    ax.grid(True, axis="x", color="#e5e7eb", linewidth=0.8)
    ax.axvline(0.0, color="#111827", linewidth=1.0)
    positions = np.arange(count)[::-1]
    for position, mean, low, high in zip(positions, means, lows, highs, strict=True):
        significant = low is not None and high is not None and (low > 0 or high < 0)
        colour = PALETTE[0] if significant else "#6b7280"
        if low is not None and high is not None:
            ax.plot([100 * low, 100 * high], [position, position], color=colour, linewidth=2.2)
        ax.plot([100 * mean], [position], "o", color=colour, markersize=7)
    ax.set_yticks(positions, labels=list(labels), fontsize=MIN_FONT_PT)
    ax.set_xlabel("difference (mIoU points): tested − baseline", fontsize=MIN_FONT_PT + 1)
    ax.set_title(title, fontsize=MIN_FONT_PT + 2)
    values = [100 * v for v in (*means, *lows, *highs) if v is not None and math.isfinite(v)]
    reach = max([1.0, *[abs(v) for v in values]]) * 1.15
    ax.set_xlim(-reach, reach)
    ax.set_ylim(-0.7, count - 0.3)
    return figure_png(fig)


def class_bars_png(
    class_names: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    title: str,
    xlabel: str,
) -> bytes:
    """Horizontal bars per class, one bar per series (values in [0, 1], shown in %).

    The legend sits below the axes, so it never covers a bar; missing values read "n/a".
    """
    size = len(class_names)
    count = max(1, len(series))
    rows_of_legend = math.ceil(count / 2)
    fig = new_figure(WIDTH_IN, 1.3 + 0.3 * rows_of_legend + size * (0.25 + 0.15 * count))
    ax = fig.add_subplot()
    _style(ax)
    ax.grid(True, axis="x", color="#e5e7eb", linewidth=0.8)
    height = 0.8 / count
    positions = np.arange(size)
    top = 0.0
    for index, (label, values) in enumerate(series):
        offsets = positions - 0.4 + height * (index + 0.5)
        numbers = np.array(
            [np.nan if v is None or not math.isfinite(v) else 100 * float(v) for v in values]
        )
        ax.barh(
            offsets,
            np.nan_to_num(numbers),
            height=height * 0.9,
            color=PALETTE[index % len(PALETTE)],
            edgecolor="#374151",
            linewidth=0.5,
            label=label,
        )
        if np.isfinite(numbers).any():
            top = max(top, float(np.nanmax(numbers)))
        if count <= 3:  # values beside the bars while they stay readable
            for offset, number in zip(offsets, numbers, strict=True):
                text = "n/a" if math.isnan(number) else f"{number:.1f}"
                ax.text(
                    (0 if math.isnan(number) else number) + 0.8,
                    offset,
                    text,
                    va="center",
                    fontsize=MIN_FONT_PT - 1 if count > 1 else MIN_FONT_PT,
                    color="#374151",
                )
    ax.set_yticks(positions, labels=list(class_names), fontsize=MIN_FONT_PT)
    ax.invert_yaxis()
    ax.set_xlim(0, max(10.0, top * 1.18 + 2))
    ax.set_xlabel(xlabel, fontsize=MIN_FONT_PT + 1)
    ax.set_title(title, fontsize=MIN_FONT_PT + 2)
    if count > 1:
        fig.legend(loc="outside lower center", ncol=2, frameon=False, fontsize=MIN_FONT_PT)
    return figure_png(fig)


__all__ = ["MIN_FONT_PT", "class_bars_png", "differences_png"]
