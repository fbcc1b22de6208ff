"""Experiment configs: data root from --data-root / $ALS4GAN_DATA; finished cells kept small."""

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from als4gan.cli import main
from als4gan.datapaths import expand_variables
from als4gan.errors import ConfigError
from als4gan.experiment import ExperimentRunner, ExperimentSpec, load_experiment, parse_experiment
from als4gan.io import RunDir
from tests.test_experiment_unit import FakeStages, _config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_expand_variables() -> None:
    env = {"ALS4GAN_DATA": "/d", "EMPTY": ""}
    assert expand_variables("${ALS4GAN_DATA}/x", env) == "/d/x"
    assert expand_variables("${ALS4GAN_DATA:-data}/x", env) == "/d/x"
    assert expand_variables("${EMPTY:-data}/x", env) == "data/x"
    assert expand_variables("${UNSET:-}x", env) == "x"
    assert expand_variables("plain/$HOME", env) == "plain/$HOME"
    with pytest.raises(ConfigError, match=r"ALS4GAN_DATA=DIR or pass --data-root"):
        expand_variables("${ALS4GAN_DATA}/x", {}, "c.yaml: dataset.prepare.src")


def test_shipped_configs_take_the_data_root_from_outside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ALS4GAN_DATA", raising=False)
    for path in [CONFIGS / "deepglobe_mini.yaml", *sorted((CONFIGS / "paper").glob("*.yaml"))]:
        raw = path.read_text()
        assert "shared" not in raw, path
        assert "${ALS4GAN_DATA:-data}" in raw, path
        default = load_experiment(path)
        assert default.dataset.prepare is not None
        assert str(default.dataset.prepare["src"]).startswith("data/")
        monkeypatch.setenv("ALS4GAN_DATA", "/from/env")
        assert str(load_experiment(path).dataset.prepare["src"]).startswith("/from/env/")
        flag = load_experiment(path, data_root=str(tmp_path))
        assert str(flag.dataset.prepare["src"]).startswith(str(tmp_path) + "/")
        monkeypatch.delenv("ALS4GAN_DATA")


def test_missing_data_names_the_flag_and_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ALS4GAN_DATA", raising=False)
    config = _config(
        dataset={
            "name": "deepglobe",
            "root": "prepared",
            "prepare": {"kind": "deepglobe", "src": "${ALS4GAN_DATA:-data}/deepglobe_512"},
        }
    )
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    assert main(["run", "c.yaml", "--data-root", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path}/nowhere/deepglobe_512 does not exist" in err
    assert "--data-root" in err
    assert "ALS4GAN_DATA" in err
    assert "docs/data.md" in err
    # nothing recorded: the same command with the right folder is not refused as "changed"
    assert not (tmp_path / "out" / "experiment.yaml").exists()


def test_dry_run_shows_where_the_data_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code = main(["run", str(CONFIGS / "deepglobe_mini.yaml"), "--data-root", "/srv/d", "--dry-run"])
    assert code == 0
    assert "prepared from /srv/d/deepglobe_512" in capsys.readouterr().out


class _StagesWithCheckpoints(FakeStages):
    """Fake stages whose training writes best.pt and latest.pt like the trainer."""

    def train(self, config: Any, out: Path, *, resume: bool, force: bool) -> Any:
        checkpoints = out / "checkpoints"
        checkpoints.mkdir(parents=True, exist_ok=True)
        (checkpoints / "best.pt").write_bytes(b"b" * 10)
        (checkpoints / "latest.pt").write_bytes(b"l" * 1000)
        return super().train(config, out, resume=resume, force=force)


def _spec(tmp_path: Path) -> ExperimentSpec:
    (tmp_path / "data" / "splits").mkdir(parents=True)
    (tmp_path / "data" / "splits" / "train.txt").write_text("a\nb\n")
    grid = {"strategies": ["random"], "ratios": [0.5], "seeds": [0], "methods": ["s4gan"]}
    return parse_experiment(_config(grid=grid), "c.yaml", tmp_path)


def test_finished_cells_drop_the_resume_state_but_keep_best(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    stages = _StagesWithCheckpoints()
    ExperimentRunner(spec, stages).run()
    cell = tmp_path / "out" / "cells" / "random_r0.5_s0_s4gan"
    assert (cell / "checkpoints" / "best.pt").is_file()
    assert not (cell / "checkpoints" / "latest.pt").exists()
    # a rerun still skips the finished cell (no training, no evaluation)
    stages.calls.clear()
    ExperimentRunner(spec, stages).run()
    assert [call.stage for call in stages.calls] == ["report"]
    assert RunDir(cell).is_done("train")


def test_keep_checkpoints_keeps_the_resume_state(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    ExperimentRunner(spec, _StagesWithCheckpoints(), keep_checkpoints=True).run()
    cell = tmp_path / "out" / "cells" / "random_r0.5_s0_s4gan"
    assert (cell / "checkpoints" / "latest.pt").is_file()


def test_unfinished_training_keeps_its_resume_state(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    runner = ExperimentRunner(spec, _StagesWithCheckpoints())
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "best.pt").write_bytes(b"b")
    (run_dir / "checkpoints" / "latest.pt").write_bytes(b"l")
    assert runner.tidy(run_dir) == 0
    assert (run_dir / "checkpoints" / "latest.pt").is_file()
    RunDir(run_dir).mark_done("train")
    assert runner.tidy(run_dir) == 1
    assert not (run_dir / "checkpoints" / "latest.pt").exists()
    assert os.listdir(run_dir / "checkpoints") == ["best.pt"]
