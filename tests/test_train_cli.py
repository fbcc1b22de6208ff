"""``als4gan train`` through the real CLI on the tiny generated dataset (ResNet-18, 48 px crops)."""

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch

from als4gan.checkpoint import load_checkpoint, load_segmentation_model
from als4gan.cli import main
from als4gan.io import read_json, read_jsonl, read_yaml

FAST = [
    "--dataset",
    "synthetic",
    "--backbone",
    "resnet18",
    "--crop-size",
    "48",
    "--batch-size",
    "2",
    "--num-workers",
    "0",
]


def train(root: Path, out: Path, *extra: str) -> int:
    return main(["train", "--root", str(root), "--out", str(out), *FAST, *extra])


def train_records(run: Path) -> list[dict[str, Any]]:
    return [r for r in read_jsonl(run / "metrics.jsonl") if r["kind"] == "train"]


def without_time(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in record.items() if k != "time"} for record in records]


def test_s4gan_iteration_writes_the_run_folder(synthetic_root: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    # whole validation images in one pass (the DDP test covers sliding windows)
    code = train(
        synthetic_root, run, "--labeled-ratio", "0.1", "--iterations", "1", "--val-window", "0"
    )
    assert code == 0
    config = read_yaml(run / "config.yaml")
    assert config["dataset"] == "synthetic"
    assert config["root"] == str(synthetic_root)
    assert config["method"] == "s4gan"
    assert config["lr"] == 2.5e-4 and config["threshold_st"] == 0.8
    assert config["scale_range"] == [0.5, 1.5]
    assert len((run / "train_labeled.txt").read_text().split()) == 3  # ceil(0.1 x 22)
    (record,) = train_records(run)
    assert set(record) == {
        "kind",
        "step",
        "loss_ce",
        "loss_fm",
        "loss_st",
        "loss_d",
        "accept_rate",
        "d_real_mean",
        "d_fake_mean",
        "d_above_0.5",
        "d_above_0.6",
        "d_above_0.7",
        "d_above_tau",
        "lr_g",
        "lr_d",
        "time",
    }
    assert record["step"] == 1 and record["lr_g"] == 2.5e-4 and record["lr_d"] == 1e-4
    assert 0 <= record["accept_rate"] <= 1
    # what D did: means in [0, 1], shares falling with the level, tau = 0.8 is the accept rate
    assert 0 <= record["d_real_mean"] <= 1 and 0 <= record["d_fake_mean"] <= 1
    shares = [record[f"d_above_{level}"] for level in ("0.5", "0.6", "0.7", "tau")]
    assert 1 >= shares[0] >= shares[1] >= shares[2] >= shares[3] >= 0
    assert record["d_above_tau"] == record["accept_rate"]
    assert all(math.isfinite(record[k]) for k in ("loss_ce", "loss_fm", "loss_st", "loss_d"))
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["kind"] for line in lines] == ["train", "val"]
    (val,) = [r for r in read_jsonl(run / "metrics.jsonl") if r["kind"] == "val"]
    assert val["step"] == 1 and 0 <= val["miou"] <= 1 and len(val["per_class_iou"]) == 6
    assert read_json(run / "status.json")["train"]["state"] == "done"
    # best.pt is light (network only); latest.pt holds the trainer state
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    latest = load_checkpoint(run / "checkpoints" / "latest.pt")
    assert "trainer" not in best and best["metrics"]["miou"] == val["miou"]
    assert set(latest["trainer"]) >= {"discriminator", "optimizer_g", "optimizer_d", "rng"}
    model, meta = load_segmentation_model(run)
    assert meta["step"] == 1 and meta["dataset"]["name"] == "synthetic"
    assert model(torch.rand(1, 3, 40, 56)).shape == (1, 6, 40, 56)
    # the written config repeats the run
    again = tmp_path / "again"
    assert main(["train", "--config", str(run / "config.yaml"), "--out", str(again)]) == 0
    assert without_time(train_records(again)) == without_time(train_records(run))


def test_supervised_from_selection_file(synthetic_root: Path, tmp_path: Path) -> None:
    ids = (synthetic_root / "splits" / "train.txt").read_text().split()
    selection = tmp_path / "labeled.txt"
    selection.write_text("\n".join(ids[:3]) + "\n")
    run = tmp_path / "run"
    code = train(
        synthetic_root,
        run,
        "--method",
        "supervised",
        "--selection",
        str(selection),
        "--iterations",
        "2",
        "--val-every",
        "0",
        "--grad-accum",
        "2",
    )
    assert code == 0
    records = train_records(run)
    assert [r["step"] for r in records] == [1, 2]
    assert set(records[0]) == {"kind", "step", "loss_ce", "lr_g", "time"}
    assert not (run / "checkpoints" / "best.pt").exists()  # no validation, no best
    assert (run / "train_labeled.txt").read_text().split() == ids[:3]


def test_deeplabv3plus_runs(synthetic_root: Path, tmp_path: Path) -> None:
    run = tmp_path / "v3"
    code = train(
        synthetic_root,
        run,
        "--arch",
        "deeplabv3plus",
        "--labeled-ratio",
        "0.1",
        "--iterations",
        "1",
        "--val-every",
        "0",
    )
    assert code == 0
    _, meta = load_segmentation_model(run)
    assert meta["model_spec"]["arch"] == "deeplabv3plus"
    assert meta["model_spec"]["output_stride"] == 16


def test_finished_and_unfinished_runs_are_not_overwritten(
    synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    base = ("--labeled-ratio", "0.1", "--method", "supervised", "--val-every", "0")
    args = (*base, "--iterations", "1")
    assert train(synthetic_root, run, *args) == 0
    before = (run / "checkpoints" / "latest.pt").stat().st_mtime_ns
    capsys.readouterr()
    assert train(synthetic_root, run, *args) == 2
    assert "--force" in capsys.readouterr().err
    assert (run / "checkpoints" / "latest.pt").stat().st_mtime_ns == before
    assert main(["train", "--out", str(run), "--resume"]) == 0  # nothing to do
    assert "nothing to resume" in capsys.readouterr().out
    # an unfinished run asks for --resume or --force
    paused = tmp_path / "paused"
    assert train(synthetic_root, paused, *base, "--iterations", "3", "--stop-after", "1") == 0
    assert read_json(paused / "status.json")["train"]["state"] == "stopped"
    capsys.readouterr()
    assert train(synthetic_root, paused, *base, "--iterations", "3") == 2
    assert "--resume" in capsys.readouterr().err
    # --force starts over
    assert train(synthetic_root, paused, *args, "--force") == 0
    assert [r["step"] for r in train_records(paused)] == [1]


def test_resume_is_exact_and_independent_of_workers(synthetic_root: Path, tmp_path: Path) -> None:
    args = ("--labeled-ratio", "0.2", "--iterations", "3", "--val-every", "0", "--seed", "7")
    straight = tmp_path / "straight"
    assert train(synthetic_root, straight, *args) == 0
    interrupted = tmp_path / "interrupted"
    assert train(synthetic_root, interrupted, *args, "--stop-after", "1") == 0
    assert [r["step"] for r in train_records(interrupted)] == [1]
    assert main(["train", "--out", str(interrupted), "--resume", "--num-workers", "1"]) == 0
    assert without_time(train_records(interrupted)) == without_time(train_records(straight))
    a = load_checkpoint(straight / "checkpoints" / "latest.pt")
    b = load_checkpoint(interrupted / "checkpoints" / "latest.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_resume_refuses_to_change_what_is_computed(
    synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert (
        train(
            synthetic_root,
            run,
            "--labeled-ratio",
            "0.1",
            "--iterations",
            "3",
            "--val-every",
            "0",
            "--stop-after",
            "1",
        )
        == 0
    )
    capsys.readouterr()
    assert main(["train", "--out", str(run), "--resume", "--lr", "0.1"]) == 2
    err = capsys.readouterr().err
    assert "--lr cannot change when resuming" in err


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(
    synthetic_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import als4gan.train.methods.s4gan as trainer_module  # where s4GAN's step takes L_ce

    real = trainer_module.cross_entropy
    calls = {"n": 0}

    def diverging(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        loss = real(logits, target)
        return loss * float("nan") if calls["n"] >= 2 else loss

    monkeypatch.setattr(trainer_module, "cross_entropy", diverging)
    run = tmp_path / "run"
    args = ("--labeled-ratio", "0.1", "--iterations", "3", "--val-every", "0")
    code = train(synthetic_root, run, *args, "--checkpoint-every", "1")
    assert code == 2
    err = capsys.readouterr().err
    assert "loss_ce became nan at step 2" in err
    assert load_checkpoint(run / "checkpoints" / "latest.pt")["step"] == 1
    status = read_json(run / "status.json")["train"]
    assert status["state"] == "failed" and status["step"] == 1
    assert [r["step"] for r in train_records(run)] == [1]


KILL_SCRIPT = """
import os, signal, sys
from als4gan import checkpoint, io
from als4gan.cli import main

writes = []

def write_then_die(path, data):
    writes.append(path)
    if len(writes) < 2:
        return io.atomic_write_bytes(path, data)
    with io.atomic_open(path, "wb") as handle:  # the real atomic writer, killed half-way
        handle.write(data[: len(data) // 2])
        handle.flush()
        os.kill(os.getpid(), signal.SIGKILL)

checkpoint.atomic_write_bytes = write_then_die
sys.exit(main(sys.argv[1:]))
"""


def test_kill_during_checkpoint_write_keeps_previous_and_resumes(
    synthetic_root: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    args = [
        "train",
        "--root",
        str(synthetic_root),
        "--out",
        str(run),
        *FAST,
        "--method",
        "supervised",  # the checkpoint writing is the same for both methods, and cheaper
        "--labeled-ratio",
        "0.1",
        "--iterations",
        "3",
        "--val-every",
        "0",
        "--checkpoint-every",
        "1",
    ]
    env = {**os.environ, "ALS4GAN_NO_PROGRESS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KILL_SCRIPT), *args], env=env, check=False
    )
    assert result.returncode == -9  # SIGKILL while writing the step-2 checkpoint
    assert load_checkpoint(run / "checkpoints" / "latest.pt")["step"] == 1
    assert main(["train", "--out", str(run), "--resume"]) == 0
    assert [r["step"] for r in train_records(run)] == [1, 2, 3]
    assert load_checkpoint(run / "checkpoints" / "latest.pt")["step"] == 3


def test_pretrained_from_previous_run_freezes_batchnorm(
    synthetic_root: Path, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    args = ("--labeled-ratio", "0.1", "--iterations", "1", "--val-every", "0")
    assert train(synthetic_root, source, *args) == 0
    run = tmp_path / "run"
    assert train(synthetic_root, run, *args, "--pretrained", str(source), "--lr", "0.01") == 0
    before = load_checkpoint(source / "checkpoints" / "latest.pt")["model"]
    after = load_checkpoint(run / "checkpoints" / "latest.pt")["model"]
    # frozen BatchNorm (auto with pretrained weights): statistics and affine unchanged
    for key in ("backbone.bn1.weight", "backbone.bn1.running_mean", "backbone.layer1.0.bn1.bias"):
        assert torch.equal(before[key], after[key]), key
    assert not torch.equal(before["backbone.conv1.weight"], after["backbone.conv1.weight"])
    assert read_yaml(run / "config.yaml")["pretrained"] == str(source)


def test_missing_root_and_bad_pretrained_are_clear_errors(
    synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--out", str(tmp_path / "a"), "--labeled-ratio", "0.1"]) == 2
    assert "--root is required" in capsys.readouterr().err
    code = train(
        synthetic_root, tmp_path / "b", "--labeled-ratio", "0.1", "--pretrained", "nope.pth"
    )
    assert code == 2
    assert "download.pytorch.org" in capsys.readouterr().err


def test_sigint_stops_at_an_iteration_boundary(synthetic_root: Path, tmp_path: Path) -> None:
    import signal
    import time

    run = tmp_path / "run"
    command = [sys.executable, "-m", "als4gan", "train", "--root", str(synthetic_root)]
    command += ["--out", str(run), *FAST, "--method", "supervised", "--labeled-ratio", "0.1"]
    command += ["--iterations", "200", "--val-every", "0"]
    env = {**os.environ, "ALS4GAN_NO_PROGRESS": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.is_file() and metrics.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err.decode()[-2000:]
    assert b"stop requested" in err
    status = read_json(run / "status.json")["train"]
    assert status["state"] == "stopped"
    step = load_checkpoint(run / "checkpoints" / "latest.pt")["step"]
    assert step == status["step"] >= 1
    assert [r["step"] for r in train_records(run)] == list(range(1, step + 1))


def test_s4gan_passes_labelled_and_unlabelled_batches_separately(
    synthetic_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One pass over cat[x_l, x_u] would normalise labelled crops with unlabelled BatchNorm
    # statistics, which measurably hurt (docs/training.md): G must see each batch on its own.
    from als4gan.models.deeplab import DeepLabV2

    seen: list[int] = []
    original = DeepLabV2.forward

    def recording_forward(self: DeepLabV2, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            seen.append(x.shape[0])
        return original(self, x)

    monkeypatch.setattr(DeepLabV2, "forward", recording_forward)
    assert (
        train(
            synthetic_root,
            tmp_path / "run",
            "--labeled-ratio",
            "0.2",
            "--iterations",
            "1",
            "--val-every",
            "0",
        )
        == 0
    )
    batch = int(FAST[FAST.index("--batch-size") + 1])
    assert seen == [batch, batch]


def test_kept_step_checkpoints_feed_evaluate_all_checkpoints(
    synthetic_root: Path, tmp_path: Path
) -> None:
    run = tmp_path / "keep"
    code = train(
        synthetic_root,
        run,
        "--method",
        "supervised",
        "--labeled-ratio",
        "0.2",
        "--iterations",
        "4",
        "--checkpoint-every",
        "2",
        "--val-every",
        "0",
        "--keep-checkpoints",
    )
    assert code == 0
    names = sorted(p.name for p in (run / "checkpoints").glob("*.pt"))
    assert names == ["latest.pt", "step_0000002.pt", "step_0000004.pt"]
    assert main(["evaluate", "--checkpoint", str(run), "--all-checkpoints", "--window", "0"]) == 0
    selection = read_json(run / "eval" / "test" / "checkpoint_selection.json")
    scored = {Path(r["checkpoint"]).name: r for r in selection["checkpoints"]}
    assert set(scored) == {"latest.pt", "step_0000002.pt", "step_0000004.pt"}
    assert Path(scored["latest.pt"]["same_as"]).name == "step_0000004.pt"  # scored once
    assert Path(selection["chosen"]).name in {"step_0000002.pt", "step_0000004.pt"}


def test_tensorboard_event_files_hold_the_metrics(synthetic_root: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="the optional tensorboard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "tb"
    code = train(
        synthetic_root,
        run,
        "--labeled-ratio",
        "0.2",
        "--iterations",
        "2",
        "--val-every",
        "2",
        "--val-window",
        "0",
        "--tensorboard",
        "on",
    )
    assert code == 0
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss_ce", "train/loss_fm", "train/accept_rate", "val/miou"} <= tags
    assert "val/iou_water" in tags
    assert [e.step for e in events.Scalars("train/loss_ce")] == [1, 2]
    logged = [r["loss_ce"] for r in train_records(run)]
    assert [e.value for e in events.Scalars("train/loss_ce")] == pytest.approx(logged, rel=1e-6)
