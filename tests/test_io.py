from pathlib import Path

import pytest

from als4gan.errors import RunExistsError
from als4gan.io import (
    RunDir,
    append_jsonl,
    atomic_open,
    atomic_write_text,
    read_ids,
    read_json,
    read_jsonl,
    write_ids,
    write_json,
)


def test_atomic_write_keeps_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    atomic_write_text(target, "old")

    def crash() -> None:
        with atomic_open(target, "w") as handle:
            handle.write("half-written")
            raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        crash()
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.txt"]  # no temp files left


def test_ids_round_trip_and_comments(tmp_path: Path) -> None:
    write_ids(tmp_path / "ids.txt", ["a", "b"])
    (tmp_path / "more.txt").write_text("# header\na\n\n b \n")
    assert read_ids(tmp_path / "ids.txt") == ["a", "b"]
    assert read_ids(tmp_path / "more.txt") == ["a", "b"]


def test_json_writes_nan_as_null(tmp_path: Path) -> None:
    write_json(tmp_path / "m.json", {"miou": float("nan"), "per_class": [1.0, float("nan")]})
    assert read_json(tmp_path / "m.json") == {"miou": None, "per_class": [1.0, None]}


def test_jsonl_skips_truncated_last_line(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    append_jsonl(path, {"step": 1})
    with open(path, "a") as handle:
        handle.write('{"step": 2, "lo')
    assert read_jsonl(path) == [{"step": 1}]


def test_run_dir_refuses_to_redo_finished_stage(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    run.check_can_start("train", force=False)
    run.mark_running("train")
    run.check_can_start("train", force=False)  # an interrupted stage may be resumed
    run.mark_done("train", best_miou=0.5)
    with pytest.raises(RunExistsError, match="--force"):
        run.check_can_start("train", force=False)
    run.check_can_start("train", force=True)
    assert run.status()["train"]["best_miou"] == 0.5


def test_atomic_files_get_umask_permissions_not_private(tmp_path: Path) -> None:
    import os

    mask = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "shared.txt", "x")
    finally:
        os.umask(mask)
    assert (tmp_path / "shared.txt").stat().st_mode & 0o777 == 0o644
