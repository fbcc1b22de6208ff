"""Run folders are never destroyed or shared by accident: overwrite guards, locks, clean starts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from als4gan.cli import main
from als4gan.io import RunDir, read_json
from als4gan.runlock import LOCK_FILE, claim_folder, release_folders
from tests.fake_runs import make_run


@pytest.fixture(autouse=True)
def _release_locks() -> object:
    yield
    release_folders()


# ------------------------------------------------------------------ 1. report never destroys
def test_report_refuses_to_write_over_run_artefacts(
    synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = make_run(tmp_path / "run", synthetic_root, steps=(2,))
    latest = run / "checkpoints" / "latest.pt"
    before = latest.read_bytes()
    for target in (latest, run / "metrics.jsonl", run / "config.yaml"):
        original = target.read_bytes()
        for force in ([], ["--force"]):
            code = main(["report", str(run), "--examples", "0", "--out", str(target), *force])
            assert code == 2
            assert target.read_bytes() == original
    assert latest.read_bytes() == before
    assert "must end in .html" in capsys.readouterr().err

    # an existing folder: a message, not a traceback
    assert main(["report", str(run), "--examples", "0", "--out", str(run)]) == 2
    assert "is a folder" in capsys.readouterr().err

    # another HTML file needs --force; an earlier report is replaced freely
    page = tmp_path / "notes.html"
    page.write_text("<html>my notes</html>")
    assert main(["report", str(run), "--examples", "0", "--out", str(page)]) == 2
    assert page.read_text() == "<html>my notes</html>"
    assert main(["report", str(run), "--examples", "0", "--out", str(page), "--force"]) == 0
    assert main(["report", str(run), "--examples", "0", "--out", str(page)]) == 0
    assert "als4gan" in page.read_text()


# ------------------------------------------------------------------ 2. one process per folder
_HOLDER = textwrap.dedent(
    """
    import sys, time
    from als4gan.runlock import claim_folder
    claim_folder(sys.argv[1])
    print("locked", flush=True)
    time.sleep(60)
    """
)


def _hold_in_subprocess(folder: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(folder)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_second_process_is_refused_with_the_holders_pid_and_host(
    synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    holder = _hold_in_subprocess(run)
    try:
        for argv in (
            ["train", "--root", str(synthetic_root), "--out", str(run), "--labeled-ratio", "0.2"],
            ["select", "--root", str(synthetic_root), "--out", str(run), "--budget", "2"],
            ["prepare", "synthetic", "--out", str(run), "--num-images", "5"],
        ):
            assert main(argv) == 2
            err = capsys.readouterr().err
            assert f"is in use by pid {holder.pid} on host {socket.gethostname()}" in err
        assert not (run / "status.json").exists()
        assert not (run / "config.yaml").exists()
    finally:
        holder.kill()
        holder.wait()
    # the OS released the lock of the killed process: the folder can be claimed again
    assert claim_folder(run) == run.resolve()
    assert (run / LOCK_FILE).read_text().split() == [str(os.getpid()), socket.gethostname()]


def test_claiming_is_reentrant_and_released_after_a_command(tmp_path: Path) -> None:
    claim_folder(tmp_path / "a")
    claim_folder(tmp_path / "a")  # the same process: no refusal
    release_folders()
    holder = _hold_in_subprocess(tmp_path / "a")  # released: another process may take it
    holder.kill()
    holder.wait()


# ------------------------------------------------------------------ 3. starting over is clean
TRAIN_FAST = [
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
    "--iterations",
    "1",
    "--val-every",
    "0",
    "--method",
    "supervised",
    "--labeled-ratio",
    "0.2",
]


def _fake_evaluated_run(run: Path, root: Path) -> None:
    """A finished, evaluated run: checkpoints, eval/test/metrics.json, a report, status."""
    make_run(run, root, steps=(2, 4), selection=False)
    (run / "eval" / "test").mkdir(parents=True)
    (run / "eval" / "test" / "metrics.json").write_text('{"miou": 0.99}')
    (run / "report.html").write_text('<meta name="generator" content="als4gan 0">old model')
    state = RunDir(run)
    state.mark_done("train", step=4, best_miou=0.9)
    state.mark_done("evaluate:test", miou=0.99)


def test_train_force_clears_everything_computed_from_the_old_model(
    synthetic_root: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    _fake_evaluated_run(run, synthetic_root)
    assert (run / "checkpoints" / "step_000002.pt").is_file()
    assert main(["train", "--root", str(synthetic_root), "--out", str(run), *TRAIN_FAST]) == 2
    assert (run / "eval" / "test" / "metrics.json").is_file()  # refused: nothing touched

    assert (
        main(["train", "--root", str(synthetic_root), "--out", str(run), *TRAIN_FAST, "--force"])
        == 0
    )
    assert not (run / "eval").exists()
    assert not (run / "report.html").exists()
    assert not (run / "checkpoints" / "step_000002.pt").exists()  # the old run's kept checkpoints
    status = read_json(run / "status.json")
    assert sorted(status) == ["train"] and status["train"]["step"] == 1
    # the new model can be evaluated without --force
    argv = ["evaluate", "--checkpoint", str(run), "--split", "val", "--window", "0"]
    assert main(argv) == 0


# ------------------------------------------------------------------ 5. the data under a model
def test_select_refuses_to_change_the_labelled_set_under_a_trained_model(
    synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    _fake_evaluated_run(run, synthetic_root)
    select = ["select", "--root", str(synthetic_root), "--out", str(run), "--budget", "3"]
    assert main([*select, "--strategy", "random"]) == 2
    assert "holds a training run" in capsys.readouterr().err
    assert not (run / "selection").exists()
    assert (run / "checkpoints" / "latest.pt").is_file()

    assert main([*select, "--strategy", "random", "--force"]) == 0
    assert (run / "selection" / "labeled.txt").is_file()
    assert not (run / "checkpoints" / "latest.pt").exists()
    assert not (run / "eval").exists()
    assert sorted(read_json(run / "status.json")) == ["select"]


# ------------------------------------------------------------------ 4. prepare
def _scene_sizes(root: Path) -> set[tuple[int, int]]:
    from PIL import Image

    return {Image.open(file).size for file in (root / "images").glob("*.png")}


def test_prepare_synthetic_refuses_other_options_and_force_leaves_no_stale_scenes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "syn"
    first = ["prepare", "synthetic", "--out", str(out), "--num-images", "6", "--image-size", "32"]
    assert main(first) == 0
    assert main(first) == 0  # same options: nothing to do
    other = ["prepare", "synthetic", "--out", str(out), "--num-images", "4", "--image-size", "40"]
    assert main(other) == 2
    assert "--force" in capsys.readouterr().err
    assert len(list((out / "images").glob("*.png"))) == 6 and _scene_sizes(out) == {(32, 32)}
    assert read_json(out / "dataset.json")["num_images"] == 6

    # an interrupted forced regeneration must not resume among scenes of the old size
    assert main([*other, "--force"]) == 0
    assert len(list((out / "images").glob("*.png"))) == 4 and _scene_sizes(out) == {(40, 40)}
    assert len(list((out / "masks").glob("*.png"))) == 4
    assert read_json(out / "dataset.json")["complete"] is True


def test_prepare_refuses_another_dataset_and_writes_nothing_for_a_bad_option(
    tmp_path: Path,
) -> None:
    from tests.data.folder.data import write_folder

    src = tmp_path / "mine"
    write_folder(src, image_format="png", num_images=6)
    assert main(["prepare", "folder", "--src", str(src), "--out", str(src)]) == 0
    meta = (src / "dataset.json").read_text()
    splits = (src / "splits" / "train.txt").read_text()
    assert main(["prepare", "synthetic", "--out", str(src), "--num-images", "3"]) == 2
    assert (src / "dataset.json").read_text() == meta
    assert (src / "splits" / "train.txt").read_text() == splits
    assert not list((src / "images").glob("syn_*"))

    # an invalid option fails before OUT is touched, so the corrected command then runs
    out = tmp_path / "split"
    bad = ["prepare", "folder", "--src", str(src), "--out", str(out), "--val-fraction", "0.9"]
    assert main(bad) == 2
    assert not (out / "dataset.json").exists()
    assert main(["prepare", "folder", "--src", str(src), "--out", str(out)]) == 0
    never = tmp_path / "never"
    assert main(["prepare", "synthetic", "--out", str(never), "--num-images", "1"]) == 2
    assert main(["prepare", "synthetic", "--out", str(never), "--test-fraction", "0"]) == 2
    assert not never.exists()


def test_resume_refuses_other_data(
    synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from als4gan.data.synthetic import SyntheticConfig, write_synthetic

    other = tmp_path / "other"  # same ids and split, other scenes
    write_synthetic(other, SyntheticConfig(num_images=30, image_size=72, seed=3), False)
    run = tmp_path / "run"
    argv = ["train", "--root", str(synthetic_root), "--out", str(run), *TRAIN_FAST]
    assert main([*argv, "--iterations", "2", "--stop-after", "1"]) == 0
    assert (run / "dataset_fingerprint.json").is_file()
    capsys.readouterr()
    assert main(["train", "--out", str(run), "--resume", "--root", str(other)]) == 2
    assert "differs" in capsys.readouterr().err
    assert main(["train", "--out", str(run), "--resume"]) == 0  # the original data: fine
    assert RunDir(run).is_done("train")


# ------------------------------------------------------------------ 6. stale temporaries
def test_stale_temporaries_of_killed_writes_are_removed_at_start(
    synthetic_root: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    _fake_evaluated_run(run, synthetic_root)
    stale = [
        run / "checkpoints" / ".latest.pt.k2j4_x9q.tmp",
        run / ".status.json.abcdefgh.tmp",
    ]
    for file in stale:
        file.write_bytes(b"x" * 1000)
    mine = run / ".notes.tmp"  # not an atomic-write temporary: kept
    mine.write_text("mine")
    assert main(["train", "--out", str(run), "--resume"]) == 0  # finished: nothing to do
    assert not any(file.exists() for file in stale)
    assert mine.read_text() == "mine"


# ------------------------------------------------------------------ 12. bad samples up front
def test_bad_samples_are_all_listed_before_train_or_select_starts(
    synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    from PIL import Image

    root = tmp_path / "data"
    shutil.copytree(synthetic_root, root)
    train_ids = (root / "splits" / "train.txt").read_text().split()
    (root / "images" / f"{train_ids[0]}.png").write_bytes(b"not a png at all")
    png = (root / "images" / f"{train_ids[1]}.png").read_bytes()
    (root / "images" / f"{train_ids[1]}.png").write_bytes(png[: len(png) // 2])  # truncated
    Image.new("L", (10, 10)).save(root / "masks" / f"{train_ids[2]}.png")  # other size

    for argv in (
        [
            "train",
            "--root",
            str(root),
            "--out",
            str(tmp_path / "t"),
            *TRAIN_FAST,
            "--num-workers",
            "1",
        ],
        [
            "select",
            "--root",
            str(root),
            "--out",
            str(tmp_path / "s"),
            "--budget",
            "3",
            "--strategy",
            "random",
        ],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "3 of 22 samples" in err and "Traceback" not in err
        for sample_id in train_ids[:3]:
            assert sample_id in err
        assert "10x10" in err
    assert not (tmp_path / "t" / "checkpoints").exists()


def test_sample_checks_are_cached_by_size_and_mtime(
    synthetic_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from als4gan.data import build_dataset, preflight

    dataset = build_dataset("synthetic", synthetic_root, "val")
    first = preflight.check_samples(dataset)
    calls: list[Path] = []
    monkeypatch.setattr(preflight, "read_size", lambda path: calls.append(path) or (0, 0))
    again = preflight.check_samples(dataset)
    assert calls == [] and again.fingerprint == first.fingerprint and not again.problems


# ------------------------------------------------------------------ 13. disk full
def _disk_full_for(monkeypatch: pytest.MonkeyPatch, suffix: str) -> None:
    """Make every atomic write of a file ending in ``suffix`` fail as on a full disk."""
    import contextlib
    import errno

    from als4gan import io

    original = io.atomic_open

    @contextlib.contextmanager
    def full(path: object, mode: str = "wb") -> object:
        with original(path, mode) as handle:  # type: ignore[arg-type]
            yield handle
            if str(path).endswith(suffix):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(io, "atomic_open", full)


def test_disk_full_is_a_message_and_a_failed_stage_with_earlier_files_intact(
    synthetic_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = tmp_path / "run"
    argv = ["train", "--root", str(synthetic_root), "--out", str(run), *TRAIN_FAST]
    assert main([*argv, "--iterations", "2", "--stop-after", "1"]) == 0
    latest = (run / "checkpoints" / "latest.pt").read_bytes()
    capsys.readouterr()

    _disk_full_for(monkeypatch, ".pt")
    assert main(["train", "--out", str(run), "--resume"]) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "latest.pt" in err and "disk is full" in err
    assert "Traceback" not in err
    assert read_json(run / "status.json")["train"]["state"] == "failed"
    assert (run / "checkpoints" / "latest.pt").read_bytes() == latest
    assert not list((run / "checkpoints").glob(".*.tmp"))

    select = ["select", "--root", str(synthetic_root), "--out", str(tmp_path / "s")]
    _disk_full_for(monkeypatch, "labeled.txt")
    assert main([*select, "--budget", "3", "--strategy", "random"]) == 1
    assert read_json(tmp_path / "s" / "status.json")["select"]["state"] == "failed"


# ------------------------------------------------------------------ 14. messages, not tracebacks
def test_malformed_or_tagged_yaml_and_corrupt_run_files_are_messages(
    synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tagged = tmp_path / "tagged.yaml"
    tagged.write_text("iterations: !!python/object/apply:os.system ['echo pwned']\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("iterations: [1, 2\nlr: 0.1\n")
    train = ["train", "--root", str(synthetic_root), "--out", str(tmp_path / "r"), *TRAIN_FAST]
    for config in (tagged, broken):
        assert main([*train, "--config", str(config)]) == 2
        assert main(["run", str(config)]) == 2
        err = capsys.readouterr().err
        assert str(config) in err and "YAML" in err and "Traceback" not in err
    assert "pwned" not in capsys.readouterr().out

    run = tmp_path / "run"
    assert main([*train[:4], str(run), *train[5:], "--iterations", "2", "--stop-after", "1"]) == 0
    capsys.readouterr()
    config = run / "config.yaml"
    text = config.read_text()
    # Truncated mid-file, mid-line, at a fixed place: halfway through the file the cut depends
    # on the length of the temporary path and can leave text that is not YAML at all.
    config.write_text(text[: text.index("\nlr: ") + len("\nlr: 0.0")])
    assert main(["train", "--out", str(run), "--resume"]) == 2
    assert "incomplete" in capsys.readouterr().err
    config.write_text(text)

    (run / "status.json").write_text('{"train": {"state": "runn')
    assert main(["train", "--out", str(run), "--resume"]) == 2
    assert "status.json is corrupt" in capsys.readouterr().err


def test_out_naming_an_existing_file_or_folder_is_a_message(
    synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = make_run(tmp_path / "run", synthetic_root, steps=(2,))
    a_file = tmp_path / "file.txt"
    a_file.write_text("keep")
    evaluate = ["evaluate", "--checkpoint", str(run), "--split", "val", "--window", "0"]
    assert main([*evaluate, "--out", str(a_file)]) == 2
    assert "is a file" in capsys.readouterr().err
    image = synthetic_root / "images" / "syn_00000.png"
    assert main(["predict", "--checkpoint", str(run), str(image), "--out", str(a_file)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert a_file.read_text() == "keep"
    stats = ["data", "stats", "--root", str(synthetic_root), "--split", "val", "--workers", "0"]
    assert main([*stats, "--json", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


# ------------------------------------------------------------------ 15. whole-config validation
def _experiment(tmp_path: Path, **sections: object) -> Path:
    import yaml

    data = {
        "name": "t",
        "out": str(tmp_path / "out"),
        "dataset": {"name": "synthetic", "root": str(tmp_path / "data")},
        "grid": {"strategies": ["random"], "ratios": [0.1], "seeds": [0, 1]},
        **sections,
    }
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"train": {"iterationz": 5}}, "section 'train': unknown option(s) iterationz"),
        ({"train": {"iterations": "many"}}, "section 'train': argument --iterations"),
        ({"select": {"strategy_x": 1}}, "section 'select': unknown option(s) strategy_x"),
        ({"evaluate": {"overlap": "wide"}}, "section 'evaluate': argument --overlap"),
        ({"train": {"seed": 5}}, "section 'train' sets seed"),
        ({"select": {"labeled-ratio": 0.5}}, "section 'select' sets labeled-ratio"),
        ({"select": {"labeled_ratio": 0.5}}, "section 'select' sets labeled_ratio"),
        ({"train": {"method": "supervised"}}, "section 'train' sets method"),
        (
            {"grid": {"strategies": ["random"], "ratios": [0.1], "seeds": [0, 0]}},
            "lists 0 more than once",
        ),
    ],
)
def test_run_checks_the_whole_config_before_the_first_stage(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    sections: dict[str, object],
    message: str,
) -> None:
    from als4gan import experiment

    calls: list[str] = []
    for stage in ("prepare", "select", "train", "evaluate", "report"):
        monkeypatch.setattr(
            experiment.Stages, stage, lambda self, *a, _s=stage, **k: calls.append(_s)
        )
    config = _experiment(tmp_path, **sections)
    assert main(["run", str(config)]) == 2
    assert message in capsys.readouterr().err
    assert main(["run", str(config), "--dry-run"]) == 2
    assert calls == [] and not (tmp_path / "out").exists()
    # the runner itself checks too (a spec built in code)
    import yaml

    def parse_and_run() -> None:
        spec = experiment.parse_experiment(yaml.safe_load(config.read_text()), "x", tmp_path)
        experiment.ExperimentRunner(spec, experiment.Stages()).run()

    with pytest.raises(experiment.ConfigError):
        parse_and_run()  # repeated grid values are refused while parsing, the rest by run()


def test_valid_sections_pass_the_check(tmp_path: Path) -> None:
    from als4gan.experiment import load_experiment

    config = _experiment(
        tmp_path,
        select={"model": "resnet18", "epochs": 1, "alpha": 0.5},
        train={"backbone": "resnet18", "iterations": 4, "mirror": False, "scale_range": [0.5, 1.5]},
        evaluate={"split": "test", "window": None, "batch-size": 2},
    )
    assert load_experiment(config).train["iterations"] == 4


# ------------------------------------------------------------------ 16. --deterministic on CUDA
def test_deterministic_on_cuda_sets_cublas_workspace_and_warns_for_ops_without_kernels(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import torch

    from als4gan.runtime import CUBLAS_WORKSPACE, configure_determinism

    calls: list[tuple[bool, dict[str, object]]] = []
    monkeypatch.setattr(
        torch, "use_deterministic_algorithms", lambda mode, **kw: calls.append((mode, kw))
    )
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)

    configure_determinism(True, torch.device("cuda"))
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == CUBLAS_WORKSPACE
    assert calls == [(True, {"warn_only": True})]
    assert torch.backends.cudnn.benchmark is False and torch.backends.cudnn.deterministic is True
    assert "adaptive average pooling" in caplog.text and "docs/training.md" in caplog.text

    # a workspace the user chose is kept; CPU is strict; off changes nothing
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    calls.clear()
    configure_determinism(True, torch.device("cuda"))
    configure_determinism(True, torch.device("cpu"))
    configure_determinism(False, torch.device("cpu"))
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"
    assert calls == [(True, {"warn_only": True}), (True, {})]


def test_trainer_uses_the_determinism_setup(
    synthetic_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from als4gan.train import trainer

    seen: list[tuple[bool, str]] = []
    monkeypatch.setattr(
        trainer, "configure_determinism", lambda on, device: seen.append((on, device.type))
    )
    argv = ["train", "--root", str(synthetic_root), "--out", str(tmp_path / "r"), *TRAIN_FAST]
    assert main([*argv, "--deterministic", "--device", "cpu"]) == 0
    assert seen == [(True, "cpu")]
