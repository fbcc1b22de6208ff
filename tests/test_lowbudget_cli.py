"""Low-budget strategies through ``als4gan select`` and a tiny ``als4gan run`` grid."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from als4gan.cli import main
from als4gan.io import read_ids, read_json

SELECT = ["--model", "resnet18", "--image-size", "48", "--epochs", "1", "--num-workers", "0"]


def _select(root: Path, out: Path, *extra: str) -> int:
    return main(["select", "--root", str(root), *SELECT, "--out", str(out), *extra])


def test_typiclust_select_is_deterministic_caches_embeddings_and_draws_a_map(
    synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    args = ("--labeled-ratio", "0.2", "--strategy", "typiclust")
    assert _select(synthetic_root, first, *args) == 0
    assert "all by typiclust on pretrained embeddings" in capsys.readouterr().out
    assert _select(synthetic_root, second, *args) == 0
    folder = first / "selection"
    assert (folder / "labeled.txt").read_text() == (
        second / "selection" / "labeled.txt"
    ).read_text()
    assert len(read_ids(folder / "labeled.txt")) == 5  # B = ceil(0.2 x 22), as for any strategy
    record = read_json(folder / "selection.json")
    assert record["strategy"] == "typiclust"
    (only,) = record["rounds"]
    assert only["kind"] == "lowbudget" and only["typiclust"]["clusters"] == 5
    assert only["embeddings"]["backbone"] == "resnet18"
    assert not read_json(folder / "timing.json")["rounds"][0]["embeddings_reused"]
    # byte-identical selection files (cache use and wall times live in timing.json)
    assert (folder / "selection.json").read_bytes() == (
        second / "selection" / "selection.json"
    ).read_bytes()
    meta = read_json(folder / "embeddings.json")
    assert len(meta["weights_sha256"]) == 64 and meta["count"] == 22
    assert (folder / "embedding_map.png").read_bytes()[:4] == b"\x89PNG"
    # a second strategy in the same folder reuses the embeddings
    assert _select(synthetic_root, first, "--labeled-ratio", "0.2", "--strategy", "probcover",
                   "--force") == 0  # fmt: skip
    record = read_json(folder / "selection.json")
    assert read_json(folder / "timing.json")["rounds"][0]["embeddings_reused"]
    assert record["rounds"][0]["probcover"]["delta_choice"]["purity"] >= 0.95


def test_auto_and_initial_strategy(synthetic_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "auto"
    assert _select(synthetic_root, out, "--labeled-ratio", "0.2", "--strategy", "auto") == 0
    record = read_json(out / "selection" / "selection.json")
    assert record["strategy"] == "entropy"  # 5/22 = 23 % >= the default threshold
    assert "at or above" in record["rounds"][0]["auto"]["reason"]
    out = tmp_path / "low"
    assert _select(synthetic_root, out, "--labeled-ratio", "0.2", "--strategy", "auto",
                   "--auto-threshold", "0.5") == 0  # fmt: skip
    assert read_json(out / "selection" / "selection.json")["strategy"] == "probcover"
    out = tmp_path / "initial"
    assert _select(synthetic_root, out, "--budget", "6", "--alpha", "0.5",
                   "--strategy", "entropy", "--initial-strategy", "probcover") == 0  # fmt: skip
    rounds = read_json(out / "selection" / "selection.json")["rounds"]
    assert rounds[0]["strategy"] == "probcover" and len(rounds[0]["ids"]) == 3
    assert [r["strategy"] for r in rounds[1:]] == ["entropy", "entropy"]


def test_run_grid_with_low_budget_strategies_and_initial_set(
    synthetic_root: Path, tmp_path: Path
) -> None:
    config = {
        "name": "tiny",
        "out": str(tmp_path / "exp"),
        "dataset": {"name": "synthetic", "root": str(synthetic_root)},
        "grid": {
            "strategies": ["random", "typiclust", "entropy"],
            "ratios": [0.2],
            "seeds": [0],
            "methods": ["supervised"],
        },
        "select": {
            "model": "resnet18",
            "image_size": 48,
            "epochs": 1,
            "alpha": 0.5,
            "initial_strategy": "typiclust",
            "num_workers": 0,
        },
        "train": {
            "backbone": "resnet18",
            "crop_size": 48,
            "batch_size": 2,
            "iterations": 2,
            "val_every": 2,
            "val_window": 0,
            "num_workers": 0,
        },
        "evaluate": {"split": "test"},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["run", str(path)]) == 0
    exp = tmp_path / "exp"
    selections = exp / "selections"
    typical = read_json(selections / "typiclust_r0.2_s0" / "selection" / "selection.json")
    entropy = read_json(selections / "entropy_r0.2_s0" / "selection" / "selection.json")
    # the pool was embedded once, in the experiment's cache, for every cell
    assert (exp / "embeddings" / "embeddings.npy").is_file()
    assert (
        typical["rounds"][0]["embeddings"]["ids_sha256"]
        == (entropy["rounds"][0]["embeddings"]["ids_sha256"])
    )
    # entropy's initial set of n0 = 2 was chosen by typiclust
    assert entropy["rounds"][0]["strategy"] == "typiclust"
    assert len(entropy["rounds"][0]["ids"]) == 2
    html = (exp / "report.html").read_text()
    assert "typiclust_r0.2_s0_supervised" in html
    assert "selection/embedding_map.png" in html  # the PCA map of the picks
