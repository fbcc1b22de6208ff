import math

import numpy as np
import pytest
import torch

from als4gan.metrics import ConfusionMatrix, metrics_from_confusion


def test_metrics_on_known_confusion() -> None:
    # rows = truth, cols = prediction
    matrix = np.array([[3, 1, 0], [2, 4, 0], [0, 0, 0]])
    result = metrics_from_confusion(matrix, ["a", "b", "c"])
    assert result["pixel_accuracy"] == pytest.approx(7 / 10)
    assert result["per_class_iou"][0] == pytest.approx(3 / (4 + 5 - 3))
    assert result["per_class_iou"][1] == pytest.approx(4 / (6 + 5 - 4))
    assert result["per_class_iou"][2] is None  # absent from truth and prediction
    assert result["miou"] == pytest.approx((3 / 6 + 4 / 7) / 2)
    assert result["mean_class_accuracy"] == pytest.approx((3 / 4 + 4 / 6) / 2)
    assert result["fwiou"] == pytest.approx(0.4 * 3 / 6 + 0.6 * 4 / 7)
    assert result["per_class_f1"][0] == pytest.approx(2 * 3 / (4 + 5))


def test_class_only_predicted_counts_in_miou() -> None:
    matrix = np.array([[5, 5], [0, 0]])
    result = metrics_from_confusion(matrix)
    assert result["per_class_iou"] == [0.5, 0.0]
    assert result["miou"] == pytest.approx(0.25)


def test_ignore_label_and_accumulation() -> None:
    cm = ConfusionMatrix(2)
    cm.update(torch.tensor([[0, 1], [1, 1]]), torch.tensor([[0, 255], [1, 0]]))
    cm.update(np.array([0]), np.array([0]))
    assert cm.matrix.tolist() == [[2, 1], [0, 1]]
    with pytest.raises(ValueError, match="label resolution"):
        cm.update(torch.zeros(4), torch.zeros(5))


def test_empty_matrix_gives_nan() -> None:
    assert math.isnan(ConfusionMatrix(3).compute()["miou"])
