"""``als4gan select`` through the real CLI on the tiny generated dataset (22 training scenes)."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from als4gan.cli import main
from als4gan.io import read_ids, read_json, read_yaml

DETERMINISTIC_FILES = (
    "labeled.txt",
    "unlabeled.txt",
    "labeled_names.npy",
    "selection.json",
    "config.yaml",
    "contact_sheet.png",
)


def _select(root: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "select",
            "--root",
            str(root),
            "--model",
            "resnet18",
            "--image-size",
            "64",
            "--epochs",
            "1",
            "--num-workers",
            "0",
            "--out",
            str(out),
            *extra,
        ]
    )


def _files(out: Path) -> dict[str, bytes]:
    return {name: (out / "selection" / name).read_bytes() for name in DETERMINISTIC_FILES}


SMALL = ("--labeled-ratio", "0.5", "--alpha", "0.5", "--beta", "0.5")  # B 11, n0 5, q 3: 3 + 3


@pytest.fixture(scope="module")
def entropy_run(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("entropy_run")
    assert _select(synthetic_root, out, *SMALL, "--strategy", "entropy", "--epochs", "2") == 0
    return out


def test_outputs_exist_and_are_consistent(entropy_run: Path, synthetic_root: Path) -> None:
    folder = entropy_run / "selection"
    labelled = read_ids(folder / "labeled.txt")
    unlabelled = read_ids(folder / "unlabeled.txt")
    train = read_ids(synthetic_root / "splits" / "train.txt")
    assert len(labelled) == 11 and len(set(labelled)) == 11
    assert sorted(labelled + unlabelled) == sorted(train)
    assert unlabelled == [i for i in train if i not in set(labelled)]  # pool order

    selection = read_json(folder / "selection.json")
    budget = selection["budget"]
    assert (budget["budget"], budget["initial_size"], budget["query_size"]) == (11, 5, 3)
    assert budget["round_sizes"] == [3, 3]
    rounds = selection["rounds"]
    assert [r["kind"] for r in rounds] == ["initial", "query", "query"]
    assert [i for r in rounds for i in r["ids"]] == labelled  # initial set kept (defect 1)
    for record in rounds[1:]:
        assert record["strategy"] == "entropy"
        assert record["model"]["model"] == "resnet18"
        assert isinstance(record["seed"], int)
        scores = record["scores"]
        assert len(scores) == len(record["ids"])
        assert scores == sorted(scores, reverse=True)
        assert all(0 <= s <= math.log(6) + 1e-6 for s in scores)
        assert record["train"]["epochs"] == 2  # refit full: every round trains all epochs
        assert record["histogram"]["images"] == len(record["ids"])
        assert sum(record["histogram"]["labels"].values()) == len(record["ids"])
    total = selection["labelled"]["histogram"]
    assert total["images"] == 11
    assert sum(total["pixels"].values()) + total["ignored_pixels"] == 11 * 64 * 64
    assert sum(total["pixel_share"].values()) == pytest.approx(1.0)
    assert selection["config"]["strategy"] == "entropy"

    names = np.load(folder / "labeled_names.npy", allow_pickle=False)
    assert names.dtype.kind == "U" and names.tolist() == labelled
    with Image.open(folder / "contact_sheet.png") as sheet:
        assert sheet.format == "PNG" and sheet.width >= 480
    config = read_yaml(folder / "config.yaml")
    assert config["labeled_ratio"] == 0.5 and config["model"] == "resnet18"
    status = read_json(entropy_run / "status.json")
    assert status["select"]["state"] == "done"
    timing = read_json(folder / "timing.json")
    assert len(timing["rounds"]) == 3
    assert not list(folder.glob("acquisition_round*.pt"))  # resume weights removed when done


def test_same_seed_gives_byte_identical_selection(
    entropy_run: Path, synthetic_root: Path, tmp_path: Path
) -> None:
    # a second run, with a DataLoader worker this time: augmentation is seeded per item
    again = tmp_path / "again"
    args = (*SMALL, "--strategy", "entropy", "--epochs", "2")
    assert _select(synthetic_root, again, *args, "--num-workers", "1") == 0
    first, second = _files(entropy_run), _files(again)
    for name in ("labeled.txt", "unlabeled.txt", "labeled_names.npy", "contact_sheet.png"):
        assert first[name] == second[name], name
    # the JSON records num_workers, the one option that differs; all else is identical
    first_json = read_json(entropy_run / "selection" / "selection.json")
    second_json = read_json(again / "selection" / "selection.json")
    assert second_json["config"].pop("num_workers") == 1
    assert first_json["config"].pop("num_workers") == 0
    assert first_json == second_json
    other = tmp_path / "other_seed"
    assert _select(synthetic_root, other, *args, "--seed", "1") == 0
    assert _files(other)["labeled.txt"] != first["labeled.txt"]


def test_resume_after_interruption_matches_uninterrupted_run(
    entropy_run: Path, synthetic_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from als4gan.active import acquisition

    original_fit = acquisition.AcquisitionModel.fit

    def interrupted_fit(self: Any, ids: Any, round_index: int, epochs: int) -> Any:
        if round_index == 2:
            raise KeyboardInterrupt
        return original_fit(self, ids, round_index, epochs)

    out = tmp_path / "resumed"
    args = (*SMALL, "--strategy", "entropy", "--epochs", "2")
    monkeypatch.setattr(acquisition.AcquisitionModel, "fit", interrupted_fit)
    assert _select(synthetic_root, out, *args) == 130
    state = read_json(out / "selection" / "state.json")
    assert len(state["rounds"]) == 2 and len(state["labelled"]) == 8
    assert (out / "selection" / "acquisition_round1.pt").is_file()
    assert read_json(out / "status.json")["select"]["state"] == "running"
    assert not (out / "selection" / "labeled.txt").exists()

    monkeypatch.setattr(acquisition.AcquisitionModel, "fit", original_fit)
    calls: list[int] = []

    def counting_fit(self: Any, ids: Any, round_index: int, epochs: int) -> Any:
        calls.append(round_index)
        return original_fit(self, ids, round_index, epochs)

    monkeypatch.setattr(acquisition.AcquisitionModel, "fit", counting_fit)
    assert _select(synthetic_root, out, *args) == 0
    assert calls == [2]  # rounds 0 and 1 were not redone
    assert _files(out) == _files(entropy_run)
    assert read_json(out / "selection" / "timing.json")["resumed_from_round"] == 1


def test_resume_with_other_options_is_refused(
    synthetic_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from als4gan.active import strategies

    def interrupt(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    out = tmp_path / "run"
    monkeypatch.setattr(strategies.RandomStrategy, "select", interrupt)
    assert _select(synthetic_root, out, "--budget", "6", "--strategy", "random") == 130
    monkeypatch.undo()
    assert _select(synthetic_root, out, "--budget", "6", "--strategy", "margin") == 2
    # (margin with the default alpha 0.1: n0 = 1, then 5 rounds of 1)
    err = capsys.readouterr().err
    assert "interrupted selection made with other options" in err
    assert "strategy: 'random' -> 'margin'" in err and "--no-resume" in err
    args = ("--budget", "6", "--alpha", "0.5", "--strategy", "margin", "--no-resume")
    assert _select(synthetic_root, out, *args) == 0
    assert len(read_json(out / "selection" / "selection.json")["rounds"]) == 3


def test_finished_selection_is_not_overwritten_without_force(
    synthetic_root: Path, tmp_path: Path, capsys: Any
) -> None:
    out = tmp_path / "run"
    assert _select(synthetic_root, out, "--budget", "4", "--strategy", "random") == 0
    before = _files(out)
    assert _select(synthetic_root, out, "--budget", "5", "--strategy", "random") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--force" in err and "Traceback" not in err
    assert _files(out) == before
    assert _select(synthetic_root, out, "--budget", "5", "--strategy", "random", "--force") == 0
    assert len(read_ids(out / "selection" / "labeled.txt")) == 5


def test_budget_sizes_for_many_settings(synthetic_root: Path, tmp_path: Path) -> None:
    train = read_ids(synthetic_root / "splits" / "train.txt")
    cases = list(itertools.product([1, 3, 7, 22], ["0.05", "0.3", "1"], ["0.1", "0.5", "1"]))
    betas = ["0.1", "0.5", "0.9", "1"]
    for index, (n, ratio, alpha) in enumerate(cases):
        beta = betas[index % len(betas)]
        split = tmp_path / f"pool{n}.txt"
        split.write_text("".join(f"{i}\n" for i in train[:n]))
        out = tmp_path / f"case{index}"
        code = _select(
            synthetic_root, out, "--split", str(split), "--labeled-ratio", ratio,
            "--alpha", alpha, "--beta", beta, "--strategy", "random", "--seed", str(index),
        )  # fmt: skip
        assert code == 0
        budget = math.ceil(Fraction(ratio) * n)
        n0 = max(1, math.floor(Fraction(alpha) * budget))
        q = max(1, math.ceil(Fraction(beta) * n0))
        labelled = read_ids(out / "selection" / "labeled.txt")
        unlabelled = read_ids(out / "selection" / "unlabeled.txt")
        assert len(labelled) == budget == len(set(labelled)), (n, ratio, alpha, beta)
        assert sorted(labelled + unlabelled) == sorted(train[:n])
        rounds = read_json(out / "selection" / "selection.json")["rounds"]
        sizes = [len(r["ids"]) for r in rounds]
        assert sizes[0] == n0 and all(s == q for s in sizes[1:-1]) and sum(sizes) == budget
    out = tmp_path / "absolute"
    assert _select(synthetic_root, out, "--budget", "13", "--strategy", "random") == 0
    assert len(read_ids(out / "selection" / "labeled.txt")) == 13


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (("--labeled-ratio", "1.5"), "--labeled-ratio must lie in (0, 1]"),
        (("--labeled-ratio", "0"), "--labeled-ratio must lie in (0, 1]"),
        (("--budget", "23"), "exceeds the pool of 22 images"),
        (("--budget", "5", "--alpha", "0"), "--alpha must lie in (0, 1]"),
        (("--budget", "5", "--beta", "1.2"), "--beta must lie in (0, 1]"),
        (("--budget", "5", "--labeled-ratio", "0.1"), "either --labeled-ratio or --budget"),
        (("--split", "nosuch"), "split file"),
        (("--budget", "5", "--epochs", "0"), "--epochs must be >= 1"),
        (("--budget", "5", "--pretrained", "/nonexistent/resnet18.pth"), "--pretrained"),
    ],
)
def test_errors_are_clear(
    synthetic_root: Path, tmp_path: Path, capsys: Any, args: tuple[str, ...], text: str
) -> None:
    assert _select(synthetic_root, tmp_path / "run", "--strategy", "entropy", *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and text in err and "Traceback" not in err


def test_missing_root_is_explained(tmp_path: Path, capsys: Any) -> None:
    assert main(["select", "--out", str(tmp_path / "run")]) == 2
    assert "--root is required" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("strategy", "extra"),
    [
        ("margin", ("--refit", "incremental", "--epochs", "3")),
        ("least-confidence", ("--refit", "reinit")),
        ("bald", ("--mc-samples", "3")),
        ("coreset", ()),
        ("hybrid", ("--hybrid-uncertainty", "margin")),
    ],
)
def test_each_model_strategy_runs(
    synthetic_root: Path, tmp_path: Path, strategy: str, extra: tuple[str, ...]
) -> None:
    out = tmp_path / strategy
    args = ("--budget", "6", "--alpha", "0.5", "--beta", "0.5", "--strategy", strategy, *extra)
    assert _select(synthetic_root, out, *args) == 0  # n0 = 3, q = 2: rounds of 2 and 1
    selection = read_json(out / "selection" / "selection.json")
    assert [len(r["ids"]) for r in selection["rounds"]] == [3, 2, 1]
    assert selection["acquisition"]["dropout"] == (0.5 if strategy == "bald" else 0.0)
    epochs = [r["train"]["epochs"] for r in selection["rounds"][1:]]
    assert epochs == ([3, 1] if "incremental" in extra else [1, 1])
    for record in selection["rounds"][1:]:
        assert record["scores"] == sorted(record["scores"], reverse=True) or strategy in (
            "coreset",
            "hybrid",
        )
        assert all(np.isfinite(record["scores"]))


def test_segmentation_mode_with_class_balanced_reduction(
    synthetic_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "seg"
    args = (
        "--budget", "6", "--alpha", "0.5", "--beta", "0.5", "--acquisition", "segmentation",
        "--strategy", "hybrid", "--reduction", "class-balanced",
    )  # fmt: skip
    assert _select(synthetic_root, out, *args) == 0
    selection = read_json(out / "selection" / "selection.json")
    assert selection["acquisition"]["mode"] == "segmentation"
    weights = selection["rounds"][1]["class_weights"]
    assert len(weights) == 6 and all(w > 0 for w in weights)
    assert len(read_ids(out / "selection" / "labeled.txt")) == 6


def test_config_file_reproduces_the_selection(entropy_run: Path, tmp_path: Path) -> None:
    config = entropy_run / "selection" / "config.yaml"
    out = tmp_path / "from_config"
    assert main(["select", "--config", str(config), "--out", str(out)]) == 0
    assert _files(out)["labeled.txt"] == _files(entropy_run)["labeled.txt"]
    # an explicit flag overrides the file
    out2 = tmp_path / "override"
    assert main(["select", "--config", str(config), "--budget", "4", "--labeled-ratio", "none",
                 "--strategy", "random", "--out", str(out2)]) == 0  # fmt: skip
    assert len(read_ids(out2 / "selection" / "labeled.txt")) == 4


def test_eval_pool_records_classifier_accuracy(synthetic_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    args = ("--budget", "4", "--alpha", "0.5", "--beta", "1", "--eval-pool")
    assert _select(synthetic_root, out, *args) == 0
    record = read_json(out / "selection" / "selection.json")["rounds"][1]
    assert 0.0 <= record["pool_accuracy"] <= 1.0
