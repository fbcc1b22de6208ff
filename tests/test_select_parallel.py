"""``als4gan select`` under torchrun: sharded pool scoring gives the single-process selection."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from als4gan.active.acquisition import ACQUISITION_MODELS
from als4gan.active.config import SelectConfig
from als4gan.active.scoring import Shard, merge_outputs
from als4gan.active.strategies import build_strategy
from als4gan.cli import main
from als4gan.data import build_dataset
from als4gan.io import read_json

# With --labeled-ratio 0.5, rounds score 17 then 14 unlabelled images: 5 and 4 batches of 4,
# so both processes score.
SELECT = [
    "--model", "resnet18", "--image-size", "32", "--epochs", "1", "--num-workers", "0",
    "--alpha", "0.5", "--beta", "0.5", "--score-batch-size", "4",
]  # fmt: skip


@pytest.mark.parametrize(
    ("acquisition", "strategy"),
    [("classifier", "bald"), ("segmentation", "bald"), ("classifier", "hybrid")],
)
def test_shards_concatenate_to_the_single_process_outputs(
    synthetic_root: Path, acquisition: str, strategy: str
) -> None:
    # Each shard scores its run of the batches and first skips the Monte-Carlo dropout masks of
    # the batches before it: the rows of 3 shards, concatenated, are one process's bit for bit.
    config = SelectConfig(
        root=str(synthetic_root), acquisition=acquisition, model="resnet18", image_size=32,
        score_batch_size=3, mc_samples=3, hybrid_uncertainty="bald",
    )  # fmt: skip
    dataset = build_dataset("synthetic", str(synthetic_root), "train")
    query = build_strategy(strategy, uncertainty="bald")
    model = ACQUISITION_MODELS[acquisition](
        dataset, config, torch.device("cpu"), amp=False, channels_last=False, num_workers=0,
        strategy=query,
    )  # fmt: skip
    model.reset()
    ids = dataset.ids[:10]  # 4 batches of 3, 3, 3, 1 -> shards of 1, 1 and 2 batches
    flags = (True, query.needs_embeddings, False)
    single = model.score_pool(ids, 2, with_scores=True, with_embeddings=flags[1])
    parts = [model.score_shard(ids, 2, flags, "score", Shard(rank, 3)) for rank in range(3)]
    assert [len(part.scores) for part in parts if part.scores is not None] == [3, 3, 4]
    merged = merge_outputs(parts, 0.0)
    assert merged.scores is not None and single.scores is not None
    assert merged.scores.tobytes() == single.scores.tobytes()
    assert len(np.unique(single.scores)) == len(ids)  # the test can see a misplaced row
    if query.needs_embeddings:
        assert merged.embeddings is not None and single.embeddings is not None
        assert merged.embeddings.tobytes() == single.embeddings.tobytes()
    else:
        assert merged.embeddings is None


def test_shards_cover_every_batch_once() -> None:
    for batches in (0, 1, 2, 5, 17):
        for world in (1, 2, 3, 8):
            ranges = [Shard(rank, world).batch_range(batches) for rank in range(world)]
            assert ranges[0][0] == 0 and ranges[-1][1] == batches
            assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))


def _folder(out: Path) -> dict[str, bytes | dict[str, object]]:
    """Every file of the selection folder, the wall times left out."""
    files: dict[str, bytes | dict[str, object]] = {}
    for path in sorted((out / "selection").iterdir()):
        if path.name == "timing.json":
            continue
        if path.name == "state.json":
            state = read_json(path)
            state.pop("timing")
            files[path.name] = state
        else:
            files[path.name] = path.read_bytes()
    return files


def test_torchrun_selection_is_byte_identical_to_one_process(
    synthetic_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["select", "--root", str(synthetic_root), *SELECT, "--labeled-ratio", "0.5"]
    args += ["--strategy", "entropy"]
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "als4gan", *args, "--out", str(tmp_path / "two"),
    ]  # fmt: skip
    env = {**os.environ, "ALS4GAN_NO_PROGRESS": "1", "ALS4GAN_THREADS": "1"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "selected 11 of 22 images (5 random + 2 round(s) of entropy)" in result.stdout
    monkeypatch.setenv("ALS4GAN_THREADS", "1")  # the same number of threads per process
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    two, one = _folder(tmp_path / "two"), _folder(tmp_path / "one")
    assert sorted(two) == sorted(one)
    assert {"labeled.txt", "selection.json", "contact_sheet.png", "state.json"} <= set(one)
    for name in one:
        assert two[name] == one[name], name
    rounds = read_json(tmp_path / "one" / "selection" / "selection.json")["rounds"]
    assert [len(r["ids"]) for r in rounds] == [5, 3, 3]


@pytest.mark.slow
@pytest.mark.parametrize(
    "strategy", [["hybrid", "--hybrid-uncertainty", "bald", "--mc-samples", "3"], ["typiclust"]]
)
def test_torchrun_hybrid_and_lowbudget_selections_are_byte_identical(
    synthetic_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, strategy: list[str]
) -> None:
    # hybrid: scores, embeddings of pool and labelled set, MC dropout; typiclust: rank 0 alone
    args = ["select", "--root", str(synthetic_root), *SELECT, "--labeled-ratio", "0.5"]
    args += ["--strategy", *strategy]
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "als4gan", *args, "--out", str(tmp_path / "two"),
    ]  # fmt: skip
    env = {**os.environ, "ALS4GAN_NO_PROGRESS": "1", "ALS4GAN_THREADS": "1"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    monkeypatch.setenv("ALS4GAN_THREADS", "1")
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    two, one = _folder(tmp_path / "two"), _folder(tmp_path / "one")
    assert sorted(two) == sorted(one)
    for name in one:
        assert two[name] == one[name], name


@pytest.mark.slow
def test_torchrun_error_in_rank_0_stops_every_process(synthetic_root: Path, tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "als4gan", "select", "--root", str(synthetic_root), *SELECT, "--budget", "100",
        "--out", str(tmp_path / "two"),
    ]  # fmt: skip
    env = {**os.environ, "ALS4GAN_NO_PROGRESS": "1", "ALS4GAN_THREADS": "1"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "exceeds the pool of 22 images" in result.stderr
    assert "process 0 of the selection stopped (BudgetError" in result.stderr
