from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from als4gan.cli import main
from als4gan.data import build_dataset
from als4gan.data.stats import compute_stats, format_stats
from als4gan.io import read_json
from tests.data.deepglobe.data import write_deepglobe
from tests.data.ucm.data import write_label, write_ucm


def test_stats_match_a_direct_count(synthetic_root: Path) -> None:
    dataset = build_dataset("synthetic", synthetic_root, "train")
    stats = compute_stats(dataset, workers=0, show_progress=False)
    masks = [dataset.load_mask(i) for i in dataset.ids]
    counts = np.bincount(np.concatenate([m.ravel() for m in masks]), minlength=6)
    assert [c["pixels"] for c in stats["classes"]] == counts.tolist()
    assert sum(c["share"] for c in stats["classes"]) == pytest.approx(1.0)
    dominant = np.bincount([int(np.bincount(m.ravel(), minlength=6).argmax()) for m in masks])
    assert [label["images"] for label in stats["labels"]] == np.pad(
        dominant, (0, 6 - len(dominant))
    ).tolist()
    images = np.stack([dataset.load_image(i) for i in dataset.ids]).astype(np.float64) / 255
    assert stats["channel_mean"] == pytest.approx(images.mean((0, 1, 2)).tolist(), abs=1e-4)
    assert stats["num_read"] == len(dataset) and not stats["problems"]
    # worker processes give the same figures
    assert compute_stats(dataset, workers=2, show_progress=False)["classes"] == stats["classes"]
    text = format_stats(stats)
    assert "agriculture" in text and "image-level labels (dominant class)" in text


def test_stats_cli_keeps_going_and_lists_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_deepglobe(tmp_path, num_images=6, size=(16, 16), stray=(0, 0, 0, 0, 3))
    (tmp_path / "images" / "101_sat.jpg").write_bytes(b"broken")
    Image.new("RGB", (8, 8)).save(tmp_path / "masks" / "102_mask.png")
    out_json = tmp_path / "stats.json"
    base = ["data", "stats", "--dataset", "deepglobe", "--root", str(tmp_path), "--split", "all"]
    code = main([*base, "--json", str(out_json), "--workers", "0"])
    assert code == 1
    printed = capsys.readouterr().out
    assert "PROBLEMS: 2 sample(s) could not be used" in printed
    assert "101: " in printed and "could not be read" in printed
    assert "102: " in printed and "is 16x16 but mask" in printed
    assert "3 pixel(s) in 1 mask(s) matched no class" in printed
    stats = read_json(out_json)
    assert stats["num_samples"] == 6 and stats["num_read"] == 4 and stats["num_failed"] == 2
    assert [w["id"] for w in stats["warnings"]] == ["104"]
    assert stats["unmatched_pixels"] == 3


def test_unmatched_colours_fail_only_with_strict(tmp_path: Path) -> None:
    write_deepglobe(tmp_path, num_images=2, stray=(2,))
    base = ["data", "stats", "--dataset", "deepglobe", "--root", str(tmp_path), "--split", "all"]
    assert main([*base, "--workers", "0"]) == 0
    assert main([*base, "--workers", "0", "--strict"]) == 1


def test_stats_of_ucm_count_scene_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_ucm(tmp_path, per_scene=2)
    write_label(tmp_path / "Labels" / "forest" / "forest01.png", np.zeros((12, 12), np.uint8))
    code = main(["data", "stats", "--dataset", "ucm", "--root", str(tmp_path), "--split", "all"])
    printed = capsys.readouterr().out
    assert code == 1
    assert "image-level labels (scene class)" in printed
    assert "forest01: " in printed and "outside the DLRSD table" in printed
    assert "bare soil" in printed  # pixel classes are the 17 DLRSD classes
