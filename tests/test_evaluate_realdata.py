"""Evaluation and prediction on real DeepGlobe imagery (../shared/data; skipped when absent)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from als4gan.cli import main
from als4gan.data import build_dataset
from tests.fake_runs import make_checkpoint

pytestmark = pytest.mark.realdata


def test_evaluate_and_predict_on_deepglobe(
    shared_data: Path, synthetic_root: Path, tmp_path: Path
) -> None:
    root = shared_data / "deepglobe_512"
    ids = ["0000", "0111", "0254"]
    (tmp_path / "three.txt").write_text("\n".join(ids) + "\n")
    # a random network is enough: the point is real decoding, full-size images, real counts
    checkpoint = make_checkpoint(tmp_path / "model.pt", synthetic_root, crop_size=256)
    out = tmp_path / "eval"
    split = str(tmp_path / "three.txt")
    args = ["evaluate", "--checkpoint", str(checkpoint), "--dataset", "deepglobe"]
    assert main([*args, "--root", str(root), "--split", split, "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    dataset = build_dataset("deepglobe", root, "all")
    labelled = sum(int((dataset.load_mask(i) != 255).sum()) for i in ids)
    assert metrics["pixels"] == labelled and metrics["window"] == 256
    assert metrics["class_names"][1] == "agriculture"

    image = root / "images" / "0000_sat.jpg"
    maps = tmp_path / "maps"
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(checkpoint),
                str(image),
                "--out",
                str(maps),
                "--overlay",
            ]
        )
        == 0
    )
    classes = np.asarray(Image.open(maps / "0000_sat_classes.png"))
    assert classes.shape == (512, 512) and classes.max() < 6
    assert Image.open(maps / "0000_sat_overlay.png").height >= 512
