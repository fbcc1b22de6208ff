"""The prediction-examples figure: image | ground truth | prediction, one row per image."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from als4gan.draw.plots import figure_png, new_figure

if TYPE_CHECKING:
    from als4gan.data.encoding import ClassTable

#: (id, (h, w, 3) image, (h, w) truth indices, (h, w) predicted indices, pixel accuracy).
Panels = tuple[str, np.ndarray, np.ndarray, np.ndarray, float]
TITLES = ("image", "ground truth", "prediction")


def _accuracy_text(value: float) -> str:
    if not math.isfinite(value):
        return "pixel accuracy – %"
    return f"pixel accuracy {100 * value:.1f} %"


def examples_figure_png(rows: Sequence[Panels], classes: ClassTable) -> bytes:
    """One row per example (image, colourised truth, colourised prediction) and a class legend.

    Args:
        rows: The examples (see :data:`Panels`); truth and prediction hold class indices
            (ignored pixels: ``classes.ignore_index``, drawn black).
        classes: Class names and colours.
    """
    from matplotlib.patches import Patch

    fig = new_figure(10.5, 3.4 * len(rows) + 0.6)
    axes = np.atleast_2d(fig.subplots(len(rows), 3, squeeze=False))
    for row, (sample_id, image, truth, prediction, accuracy) in enumerate(rows):
        panels = (image, classes.colorize(truth), classes.colorize(prediction))
        for col, panel in enumerate(panels):
            ax = axes[row, col]
            ax.imshow(panel, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(TITLES[col], fontsize=11)
        axes[row, 0].set_ylabel(sample_id, fontsize=9)
        axes[row, 2].set_xlabel(_accuracy_text(accuracy), fontsize=9)
    handles = [
        Patch(
            facecolor=(color[0] / 255, color[1] / 255, color[2] / 255),
            edgecolor="#374151",
            label=name,
        )
        for name, color in zip(classes.names, classes.colors, strict=True)
    ]
    fig.legend(
        handles=handles, loc="outside lower center", ncol=min(6, len(handles)), frameon=False
    )
    return figure_png(fig)
