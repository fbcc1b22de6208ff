"""``als4gan evaluate`` through the real CLI, and the evaluation loop on hand-made cases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from als4gan.checkpoint import load_segmentation_model
from als4gan.cli import main
from als4gan.data import build_dataset
from als4gan.data.base import SegmentationDataset
from als4gan.data.encoding import ClassTable
from als4gan.evaluate import EvalSettings, evaluate_model
from als4gan.inference import predict_probs
from tests.fake_runs import make_checkpoint, make_run


def hand_confusion(pred: np.ndarray, true: np.ndarray, num_classes: int) -> np.ndarray:
    """Confusion matrix counted pixel by pixel (rows = truth), ignore = 255."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    for p, t in zip(pred.ravel(), true.ravel(), strict=True):
        if t != 255:
            matrix[t, p] += 1
    return matrix


@pytest.fixture(scope="module")
def run_dir(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("eval") / "run", synthetic_root, steps=(20, 40))


@pytest.mark.parametrize("window", [0, 32])
def test_metrics_match_hand_computed_confusion(
    run_dir: Path, synthetic_root: Path, tmp_path: Path, window: int
) -> None:
    out = tmp_path / "out"
    # no --dataset/--root: both come from the checkpoint's recorded config
    code = main(
        [
            *("evaluate", "--checkpoint", str(run_dir), "--split", "test"),
            *("--window", str(window), "--out", str(out)),
        ]
    )
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())

    model, _ = load_segmentation_model(run_dir)
    dataset = build_dataset("synthetic", synthetic_root, "test")
    expected = np.zeros((6, 6), dtype=np.int64)
    for sample in dataset:
        probs = predict_probs(model, sample["image"][None], 6, window or None, 0.33)
        pred = probs[0].argmax(0).numpy()
        expected += hand_confusion(pred, sample["mask"].numpy(), 6)
    assert metrics["confusion_matrix"] == expected.tolist()
    assert metrics["pixels"] == int(expected.sum()) == 4 * 64 * 64
    diag = np.diag(expected)
    union = expected.sum(0) + expected.sum(1) - diag
    present = union > 0
    assert metrics["miou"] == pytest.approx(float(np.mean(diag[present] / union[present])))
    assert metrics["pixel_accuracy"] == pytest.approx(diag.sum() / expected.sum())
    assert metrics["window"] == (window or None)
    assert metrics["split"] == "test" and metrics["step"] == 40
    assert metrics["dataset"]["root"] == str(synthetic_root)
    assert len(metrics["per_class_iou"]) == len(metrics["class_names"]) == 6
    assert "| mIoU |" in (out / "metrics.md").read_text()
    Image.open(out / "confusion_matrix.png").verify()
    assert json.loads((out / "status.json").read_text())["evaluate:test"]["state"] == "done"


class CodedDataset(SegmentationDataset):
    """Images whose first band encodes the class (value c / 10), with an ignored border."""

    name = "coded"
    classes = ClassTable(("a", "b", "c"), ((255, 0, 0), (0, 255, 0), (0, 0, 255)))
    sizes: ClassVar[list[tuple[int, int]]] = [(37, 53), (37, 53), (70, 41), (16, 16)]

    def __init__(self) -> None:
        self.root = Path(".")
        self.split = "all"
        self.transform = None
        self.ids = [str(i) for i in range(len(self.sizes))]
        self.label_names = self.classes.names

    def discover_ids(self) -> list[str]:
        return self.ids

    def load_mask(self, sample_id: str) -> np.ndarray:
        height, width = self.sizes[int(sample_id)]
        rng = np.random.default_rng(int(sample_id))
        mask = rng.integers(0, 3, (height, width)).astype(np.uint8)
        mask[0, :] = 255
        return mask

    def load_image(self, sample_id: str) -> np.ndarray:
        mask = self.load_mask(sample_id)
        code = np.where(mask == 255, 0, mask).astype(np.float32) / 10
        return np.stack([code, np.zeros_like(code), np.zeros_like(code)], axis=-1)


class Oracle(nn.Module):
    """A per-pixel "perfect" model for CodedDataset: logits peak at the encoded class."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        code = x[:, :1] * 10
        classes = torch.arange(3, dtype=x.dtype).view(1, 3, 1, 1)
        return -((code - classes) ** 2) * 10


@pytest.mark.parametrize("window", [None, 16])
def test_perfect_model_scores_one_at_label_resolution(window: int | None) -> None:
    dataset = CodedDataset()
    settings = EvalSettings(window=window, overlap=0.25, batch_size=3)
    result = evaluate_model(Oracle(), dataset, settings).compute(dataset.classes.names)
    labelled = sum((dataset.load_mask(i) != 255).sum() for i in dataset.ids)
    assert result["pixels"] == labelled  # ignore respected, every other pixel counted once
    assert result["pixel_accuracy"] == 1.0
    assert result["miou"] == 1.0
    assert result["fwiou"] == pytest.approx(1.0)
    assert result["per_class_f1"] == [1.0, 1.0, 1.0]


def _record_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, Any]]:
    import als4gan.evaluate as evaluate_module

    calls: list[tuple[str, str, Any]] = []
    original = evaluate_module.evaluate_checkpoint

    def recording(checkpoint: Any, source: Any, split: str, *args: Any, **kw: Any) -> Any:
        result = original(checkpoint, source, split, *args, **kw)
        calls.append((Path(str(checkpoint)).name, split, result["miou"]))
        return result

    monkeypatch.setattr(evaluate_module, "evaluate_checkpoint", recording)
    return calls


def test_all_checkpoints_choose_on_val_and_evaluate_only_the_winner_on_test(
    synthetic_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = make_run(tmp_path / "run", synthetic_root, steps=(10, 20, 30), best_step=10)
    calls = _record_calls(monkeypatch)
    code = main(["evaluate", "--checkpoint", str(run), "--all-checkpoints", "--window", "0"])
    assert code == 0
    val_calls = [c for c in calls if c[1] == "val"]
    test_calls = [c for c in calls if c[1] == "test"]
    # three distinct steps scored once each (best.pt / latest.pt are copies)
    assert sorted(c[0] for c in val_calls) == ["step_000010.pt", "step_000020.pt", "step_000030.pt"]
    assert len(test_calls) == 1
    best_on_val = max(val_calls, key=lambda c: c[2])[0]
    assert test_calls[0][0] == best_on_val
    metrics = json.loads((run / "eval" / "test" / "metrics.json").read_text())
    assert Path(metrics["checkpoint"]).name == best_on_val
    assert metrics["selected_on"]["split"] == "val"
    assert metrics["selected_on"]["candidates"] == 5
    selection = json.loads((run / "eval" / "test" / "checkpoint_selection.json").read_text())
    assert Path(selection["chosen"]).name == best_on_val
    aliases = {Path(r["checkpoint"]).name: r["same_as"] for r in selection["checkpoints"]}
    assert aliases["best.pt"] and Path(aliases["best.pt"]).name == "step_000010.pt"


def test_finished_evaluation_needs_force(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["evaluate", "--checkpoint", str(run_dir), "--split", "val", "--window", "0"]
    assert main(args) == 0
    assert (run_dir / "eval" / "val" / "metrics.json").is_file()
    capsys.readouterr()
    assert main(args) == 2
    assert "--force" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0


def test_errors_are_clear(
    run_dir: Path, synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    four = make_checkpoint(tmp_path / "four.pt", synthetic_root, num_classes=4)
    assert main(["evaluate", "--checkpoint", str(four), "--out", str(tmp_path / "o")]) == 2
    assert "predicts 4 classes" in capsys.readouterr().err
    file = run_dir / "checkpoints" / "best.pt"
    assert main(["evaluate", "--checkpoint", str(file), "--all-checkpoints"]) == 2
    assert "needs a run folder" in capsys.readouterr().err
    missing = ["evaluate", "--checkpoint", str(run_dir), "--root", str(tmp_path / "nowhere")]
    assert main([*missing, "--out", str(tmp_path / "o2")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    moved = make_checkpoint(
        tmp_path / "moved.pt", synthetic_root, config={"root": str(tmp_path / "gone")}
    )
    assert main(["evaluate", "--checkpoint", str(moved), "--out", str(tmp_path / "o3")]) == 2
    assert "recorded at training time" in capsys.readouterr().err


def test_crf_needs_the_extra(
    run_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import als4gan.inference

    monkeypatch.setattr(als4gan.inference, "crf_available", lambda: False)
    args = ["evaluate", "--checkpoint", str(run_dir), "--crf", "--out", str(tmp_path / "crf")]
    assert main(args) == 2
    assert "als4gan[crf]" in capsys.readouterr().err


def test_crf_post_processing(run_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("pydensecrf.densecrf")
    out = tmp_path / "crf"
    args = ["evaluate", "--checkpoint", str(run_dir), "--crf", "--crf-iterations", "2"]
    assert main([*args, "--window", "0", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["crf"] is True
    assert metrics["pixels"] == 4 * 64 * 64


def test_dense_crf_smooths_noisy_probabilities() -> None:
    pytest.importorskip("pydensecrf.densecrf")
    from als4gan.inference import dense_crf

    image = np.zeros((32, 32, 3), dtype=np.uint8)
    image[:, 16:] = 255
    truth = (np.arange(32)[None, :] >= 16).repeat(32, axis=0).astype(np.int64)
    rng = np.random.default_rng(0)
    probs = np.where(truth[None] == np.arange(2)[:, None, None], 0.65, 0.35).astype(np.float32)
    flip = rng.random((32, 32)) < 0.2  # 20 % of the pixels start on the wrong side
    probs[:, flip] = probs[::-1][:, flip]
    noisy_accuracy = (probs.argmax(0) == truth).mean()
    refined = dense_crf(probs, image, iterations=5)
    assert refined.shape == probs.shape
    assert (refined.argmax(0) == truth).mean() > max(0.95, noisy_accuracy)
