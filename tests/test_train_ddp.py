"""Multi-process training: two CPU processes (gloo) launched by torchrun, as on a GPU node."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from als4gan.checkpoint import load_checkpoint
from als4gan.cli import main
from als4gan.io import read_jsonl

COMMON = [
    "--dataset",
    "synthetic",
    "--backbone",
    "resnet18",
    "--crop-size",
    "48",
    "--batch-size",
    "4",
    "--num-workers",
    "0",
    "--labeled-ratio",
    "0.2",
    "--iterations",
    "2",
]


def torchrun(*args: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "als4gan",
        *args,
    ]
    env = {**os.environ, "ALS4GAN_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_two_process_s4gan_run(synthetic_root: Path, tmp_path: Path) -> None:
    # DDP over G and D for two steps, validation split between the processes.
    run = tmp_path / "ddp"
    result = torchrun("train", "--root", str(synthetic_root), "--out", str(run), *COMMON)
    assert result.returncode == 0, result.stderr[-3000:]
    records = read_jsonl(run / "metrics.jsonl")
    assert [r["kind"] for r in records] == ["train", "train", "val"]
    assert all(0 <= r["accept_rate"] <= 1 for r in records if r["kind"] == "train")
    checkpoint = load_checkpoint(run / "checkpoints" / "latest.pt")
    assert checkpoint["step"] == 2
    assert checkpoint["trainer"]["world_size"] == 2
    assert len(checkpoint["trainer"]["rng"]) == 2  # each process's dropout RNG


@pytest.mark.slow
def test_two_processes_compute_what_accumulation_computes(
    synthetic_root: Path, tmp_path: Path
) -> None:
    # Supervised (no dropout): 2 processes x micro-batch 2 compute what one process computes
    # with 2 accumulation steps of 2: the same micro-batches, gradients averaged the same way.
    extra = ["--method", "supervised", "--val-every", "0"]
    ddp = tmp_path / "ddp_sup"
    result = torchrun("train", "--root", str(synthetic_root), "--out", str(ddp), *COMMON, *extra)
    assert result.returncode == 0, result.stderr[-3000:]
    single = tmp_path / "single"
    args = ["train", "--root", str(synthetic_root), "--out", str(single), *COMMON, *extra]
    assert main([*args, "--grad-accum", "2"]) == 0
    losses_ddp = [r["loss_ce"] for r in read_jsonl(ddp / "metrics.jsonl")]
    losses_single = [r["loss_ce"] for r in read_jsonl(single / "metrics.jsonl")]
    assert losses_ddp == pytest.approx(losses_single, rel=1e-5)


def test_two_process_unimatch_run(synthetic_root: Path, tmp_path: Path) -> None:
    # UniMatch's passes are one module call under DDP; its statistics are summed over processes.
    run = tmp_path / "ddp_unimatch"
    extra = ["--method", "unimatch", "--val-every", "0", "--threshold-u", "0.3"]
    result = torchrun("train", "--root", str(synthetic_root), "--out", str(run), *COMMON, *extra)
    assert result.returncode == 0, result.stderr[-3000:]
    records = read_jsonl(run / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2]
    assert all(0 <= r["pseudo_coverage"] <= 1 and r["loss_u_fp"] >= 0 for r in records)
    checkpoint = load_checkpoint(run / "checkpoints" / "latest.pt")
    assert set(checkpoint["trainer"]["streams"]) == {"labelled", "unlabelled", "unlabelled_mix"}
