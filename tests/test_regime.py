"""Validation and ``als4gan evaluate`` segment images the same way; the ASPP/crop warning."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from als4gan.checkpoint import load_checkpoint
from als4gan.cli import main
from als4gan.errors import ConfigError
from als4gan.evaluate import resolve_regime
from als4gan.io import read_jsonl, read_yaml
from als4gan.models import build_segmentation_model
from als4gan.regime import (
    InferenceRegime,
    aspp_dilations,
    aspp_warning,
    recorded_regime,
    training_regime,
)
from als4gan.train.config import TrainConfig

FAST = [
    *("--dataset", "synthetic", "--backbone", "resnet18", "--crop-size", "48"),
    *("--batch-size", "2", "--num-workers", "0", "--method", "supervised"),
    *("--labeled-ratio", "0.2", "--iterations", "2", "--val-every", "1"),
]


def test_training_regime_follows_val_window_and_crop() -> None:
    assert training_regime(None, 128) == InferenceRegime(128, 1 / 3)
    assert training_regime(0, 128) == InferenceRegime(None)
    assert training_regime(256, 128).window == 256


def test_recorded_regime_reads_new_and_old_checkpoints() -> None:
    new = {"inference": {"window": None, "overlap": 1 / 3}, "config": {"val_window": 96}}
    assert recorded_regime(new) == InferenceRegime(None)
    # checkpoints written before the regime was recorded: their config says how they validated
    assert recorded_regime({"config": {"val_window": 0, "crop_size": 128}}) == InferenceRegime(None)
    assert recorded_regime({"config": {"val_window": None, "crop_size": 128}}) == InferenceRegime(
        128
    )
    assert recorded_regime({"config": {"crop_size": 128}}) is None
    assert recorded_regime({}) is None


def test_resolve_regime_prefers_the_recorded_one_and_warns_on_override(
    caplog: pytest.LogCaptureFixture,
) -> None:
    meta = {"inference": {"window": 48, "overlap": 1 / 3}, "path": "run/best.pt"}
    with caplog.at_level(logging.WARNING, logger="als4gan.evaluate"):
        assert resolve_regime(None, None, meta) == (InferenceRegime(48), "recorded")
        assert resolve_regime(48, 1 / 3, meta) == (InferenceRegime(48), "recorded")
        assert not caplog.records
        assert resolve_regime(0, None, meta) == (InferenceRegime(None), "override")
    assert "validated with 48 px sliding windows" in caplog.text
    # nothing recorded: --window, else the training crop, and an overlap of 1/3
    assert resolve_regime(None, None, {"config": {"crop_size": 64}}) == (
        InferenceRegime(64),
        "default",
    )


def test_aspp_warning_names_the_blind_rates_and_the_fix() -> None:
    model = build_segmentation_model(
        arch="deeplabv2", backbone="resnet18", num_classes=3, pretrained="none", output_stride=16
    )
    assert aspp_dilations(model) == [6, 12, 18, 24]  # the backbone's dilations do not count
    warning = aspp_warning(model, crop_size=128, output_stride=16)
    assert warning is not None
    assert "12, 18, 24" in warning and "8x8" in warning and "--crop-size 400" in warning
    assert aspp_warning(model, crop_size=512, output_stride=16) is None  # 32x32 map
    plus = build_segmentation_model(
        arch="deeplabv3plus", backbone="resnet18", num_classes=3, pretrained="none"
    )
    assert aspp_warning(plus, crop_size=512, output_stride=16) is None


def test_aspp_rates_option_reaches_the_model_and_silences_the_warning() -> None:
    config = TrainConfig(
        backbone="resnet18", output_stride=16, aspp_rates=(3, 6, 9, 12), crop_size=256
    )
    config.validate()
    assert config.model_options()["rates"] == (3, 6, 9, 12)
    model = build_segmentation_model(
        arch="deeplabv2", backbone="resnet18", num_classes=3, **config.model_options()
    )
    assert aspp_dilations(model) == [3, 6, 9, 12]
    assert aspp_warning(model, crop_size=256, output_stride=16) is None  # 16x16 map
    with pytest.raises(ConfigError, match="--aspp-rates"):
        TrainConfig(aspp_rates=(0, 6)).validate()


@pytest.mark.parametrize("val_window", ["0", None])
def test_evaluate_repeats_validation_by_default(
    synthetic_root: Path,
    tmp_path: Path,
    val_window: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    run = tmp_path / "run"
    extra = ["--val-window", val_window] if val_window is not None else []
    with caplog.at_level(logging.WARNING):
        assert main(["train", "--root", str(synthetic_root), "--out", str(run), *FAST, *extra]) == 0
    # 48 px crops at output stride 8: a 6x6 feature map, every ASPP rate (6-24) is blind
    assert "ASPP dilation rates 6, 12, 18, 24 reach past the 6x6" in caplog.text
    window = 0 if val_window == "0" else 48
    assert read_yaml(run / "config.yaml")["val_window"] == window  # recorded resolved
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    assert best["inference"] == {"window": window or None, "overlap": 1 / 3}
    (val,) = [r for r in read_jsonl(run / "metrics.jsonl") if r["kind"] == "val" and r["step"] == 2]
    out = tmp_path / "eval"
    latest = str(run / "checkpoints" / "latest.pt")
    # one image per forward pass for whole images, 4 windows per pass otherwise: exactly what
    # validation does, so not even the last bit can differ
    batch = "1" if window == 0 else "4"
    code = main(
        [
            *("evaluate", "--checkpoint", latest, "--split", "val", "--out", str(out)),
            *("--batch-size", batch),
        ]
    )
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["regime"] == "recorded" and metrics["window"] == (window or None)
    # the same images segmented the same way: the validation score is reproduced
    assert metrics["miou"] == pytest.approx(val["miou"], abs=1e-9)
    assert "as in validation during training" in (out / "metrics.md").read_text()


def test_explicit_window_overrides_with_a_warning(
    synthetic_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = tmp_path / "run"
    train = ["train", "--root", str(synthetic_root), "--out", str(run), *FAST]
    assert main([*train, "--val-window", "0"]) == 0
    out = tmp_path / "eval"
    with caplog.at_level(logging.WARNING, logger="als4gan.evaluate"):
        code = main(
            [
                *("evaluate", "--checkpoint", str(run), "--split", "val"),
                *("--out", str(out), "--window", "32"),
            ]
        )
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["regime"] == "override" and metrics["window"] == 32
    assert "was validated with whole images in one pass" in caplog.text
