"""Segmentation metrics from one confusion matrix accumulated over a whole split."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from als4gan.data.encoding import IGNORE_INDEX


class ConfusionMatrix:
    """Accumulates a (C, C) confusion matrix (rows = ground truth, columns = prediction).

    Pixels whose label is ``ignore_index`` (or outside ``0..C-1``) are not counted.

    Args:
        num_classes: Number of classes ``C``.
        ignore_index: Label value to skip.
    """

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(
        self, prediction: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray
    ) -> None:
        """Add a batch: ``prediction`` and ``target`` hold class indices of the same shape."""
        pred = torch.as_tensor(prediction).reshape(-1).long()
        true = torch.as_tensor(target).reshape(-1).long().to(pred.device)
        if pred.shape != true.shape:
            raise ValueError(
                f"prediction has {pred.numel()} pixels but target has {true.numel()}: evaluate "
                "at label resolution (crop or resize the prediction to the label first)"
            )
        valid = (true != self.ignore_index) & (true >= 0) & (true < self.num_classes)
        index = true[valid] * self.num_classes + pred[valid].clamp(0, self.num_classes - 1)
        counts = torch.bincount(index, minlength=self.num_classes**2).cpu().numpy()
        self.matrix += counts.reshape(self.num_classes, self.num_classes)

    def merge(self, other: ConfusionMatrix) -> None:
        """Add another matrix (e.g. from another process)."""
        self.matrix += other.matrix

    def reset(self) -> None:
        """Zero the counts."""
        self.matrix[:] = 0

    def compute(self, class_names: Sequence[str] | None = None) -> dict[str, Any]:
        """All metrics of :func:`metrics_from_confusion`."""
        return metrics_from_confusion(self.matrix, class_names)


def metrics_from_confusion(
    matrix: np.ndarray, class_names: Sequence[str] | None = None
) -> dict[str, Any]:
    """Metrics of a confusion matrix (rows = ground truth, columns = prediction).

    * ``pixel_accuracy``: correct / labelled pixels.
    * ``mean_class_accuracy``: mean recall over classes present in the ground truth.
    * ``miou``: mean IoU over classes present in ground truth or prediction (docs/method.md).
    * ``fwiou``: IoU weighted by ground-truth frequency.
    * ``per_class_iou`` / ``per_class_f1`` / ``per_class_accuracy``: ``None`` (JSON null) for a
      class absent from both ground truth and prediction.

    Returns:
        A JSON-ready dict (plain floats and lists).
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    num_classes = matrix.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(num_classes)]
    true_positive = np.diag(matrix)
    gt_total = matrix.sum(axis=1)
    pred_total = matrix.sum(axis=0)
    union = gt_total + pred_total - true_positive
    total = matrix.sum()
    present = union > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(present, true_positive / np.where(union > 0, union, 1), np.nan)
        recall = np.where(gt_total > 0, true_positive / np.where(gt_total > 0, gt_total, 1), np.nan)
        f1_den = gt_total + pred_total
        f1 = np.where(present, 2 * true_positive / np.where(f1_den > 0, f1_den, 1), np.nan)
    freq = gt_total / total if total > 0 else np.zeros(num_classes)

    def _list(values: np.ndarray) -> list[float | None]:
        return [None if np.isnan(v) else float(v) for v in values]

    return {
        "pixel_accuracy": float(true_positive.sum() / total) if total > 0 else float("nan"),
        "mean_class_accuracy": float(np.nanmean(recall)) if (gt_total > 0).any() else float("nan"),
        "miou": float(np.nanmean(iou)) if present.any() else float("nan"),
        "fwiou": float(np.nansum(freq * np.nan_to_num(iou))) if total > 0 else float("nan"),
        "per_class_iou": _list(iou),
        "per_class_f1": _list(f1),
        "per_class_accuracy": _list(recall),
        "class_names": names,
        "pixels": int(total),
        "confusion_matrix": matrix.astype(np.int64).tolist(),
    }
