"""The Python API: configs from mappings, the stage functions, and docs/api.md's example."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from als4gan import api
from als4gan.config import build_config
from als4gan.errors import ConfigError, RunExistsError

ROOT = Path(__file__).resolve().parents[1]


def test_import_is_light_and_names_are_reachable() -> None:
    probe = (
        "import sys, als4gan; from als4gan import api; "
        "assert als4gan.TrainConfig is api.TrainConfig; "
        "assert callable(api.train) and callable(api.run); "
        "print('torch' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "False"
    assert set(api.STAGES) <= set(api.__all__)


def test_build_config_checks_names_types_and_choices() -> None:
    config = api.build_config(
        api.TrainConfig, {"crop-size": 64, "scale_range": [0.5, 1.0], "mirror": False}
    )
    assert (config.crop_size, config.scale_range, config.mirror) == (64, (0.5, 1.0), False)
    with pytest.raises(ConfigError, match=r"unknown option\(s\) iteratons \(did you mean "):
        api.build_config(api.TrainConfig, {"iteratons": 3})
    with pytest.raises(ConfigError, match=r"argument --iterations: invalid int value: '4.5'"):
        api.build_config(api.TrainConfig, {"iterations": 4.5})
    with pytest.raises(ConfigError, match=r"--iterations: invalid int value: '4.0'"):
        api.build_config(api.TrainConfig, {"iterations": 4.0})  # as the CLI reads "4.0"
    with pytest.raises(ConfigError, match=r"--mirror: expected true or false"):
        api.build_config(api.TrainConfig, {"mirror": "yes"})
    with pytest.raises(ConfigError, match=r"--scale-range: expected 2 argument"):
        api.build_config(api.TrainConfig, {"scale_range": [0.5]})
    with pytest.raises(ConfigError, match=r"invalid choice: 'entropi' \(did you mean 'entropy'"):
        api.build_config(api.SelectConfig, {"strategy": "entropi"})
    # the config's own checks run too, naming where the values came from
    with pytest.raises(ConfigError, match=r"^train.yaml: --batch-size 3 must be divisible"):
        api.build_config(api.TrainConfig, {"batch_size": 3, "grad_accum": 2}, "train.yaml")
    assert api.build_config(api.EvaluateConfig, {"window": None}).window is None
    assert api.build_config(api.EvaluateConfig, {"window": "none"}).window is None
    with pytest.raises(ConfigError, match=r"--overlap must lie in \[0, 1\)"):
        api.build_config(api.EvaluateConfig, {"overlap": 1.5})


def test_base_values_come_first_and_are_checked() -> None:
    config = build_config(api.SelectConfig, {"epochs": 2}, base={"seed": "3", "budget": 5})
    assert (config.seed, config.budget, config.epochs) == (3, 5, 2)
    with pytest.raises(ConfigError, match="invalid int value"):
        build_config(api.SelectConfig, {}, base={"seed": "x"})


def test_prepare_config_takes_only_the_kinds_options(tmp_path: Path) -> None:
    config = api.prepare_config({"kind": "deepglobe", "src": "s", "out": "o", "tile-size": 0})
    assert (config.kind, config.tile, config.remainder) == ("deepglobe", 0, "overlap")
    assert api.prepare_config({"kind": "deepglobe", "src": "s", "out": "o"}).tile == 612
    with pytest.raises(ConfigError, match=r"\(synthetic\): unknown option\(s\) src"):
        api.prepare_config({"kind": "synthetic", "out": "o", "src": "x"})
    with pytest.raises(ConfigError, match=r"unknown kind 'deepglob' \(did you mean 'deepglobe'"):
        api.prepare_config({"kind": "deepglob", "out": "o"})
    with pytest.raises(ConfigError, match="must leave some training images"):
        api.prepare(api.PrepareConfig(out=str(tmp_path / "d"), val_fraction=0.5, test_fraction=0.5))
    assert not (tmp_path / "d").exists()  # checked before anything is written
    with pytest.raises(ConfigError, match="--remainder must be one of overlap, drop"):
        api.prepare(api.PrepareConfig(kind="folder", src="s", out="o", remainder="pad"))


def test_stage_functions_return_results_and_refuse_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "data"
    config = api.PrepareConfig(out=str(out), num_images=12, image_size=32)
    result = api.prepare(config)
    assert result.meta["num_images"] == 12
    assert result.message.startswith("wrote 12 synthetic scenes of 32px")
    assert (out / "splits" / "train.txt").is_file()
    with pytest.raises(RunExistsError):
        api.prepare(api.PrepareConfig(out=str(out), num_images=14, image_size=32))
    selection = api.select(
        api.build_config(api.SelectConfig, {"root": str(out), "budget": 2, "strategy": "random"}),
        tmp_path / "run",
    )
    assert len(selection.labelled) == 2 and not selection.waiting
    assert (selection.folder / "labeled.txt").read_text().split() == selection.labelled
    again = api.SelectConfig(root=str(out), budget=2, strategy="random")
    with pytest.raises(RunExistsError):  # a finished selection is kept unless force=True
        api.select(again, tmp_path / "run")


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_docs_api_example_runs(tmp_path: Path) -> None:
    """Every python block of docs/api.md, in order, in one fresh interpreter."""
    blocks = _python_blocks((ROOT / "docs" / "api.md").read_text(encoding="utf-8"))
    assert len(blocks) >= 5
    script = tmp_path / "example.py"
    script.write_text("\n".join(blocks))
    env: dict[str, Any] = {
        **__import__("os").environ,
        "ALS4GAN_THREADS": "1",
        "TMPDIR": str(tmp_path),
        "PYTHONPATH": str(ROOT / "src"),
    }
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=600, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "wrote 30 synthetic scenes" in out
    assert re.search(r"selected 6 of \d+ images", out)
    assert "done 4" in out
    assert "test mIoU 0." in out
    assert "report of 1 run(s)" in out
    assert "did you mean 'iterations'?" in out
    reports = list(tmp_path.rglob("report.html"))
    assert len(reports) == 1


def test_run_checks_every_cell_before_the_first_stage(tmp_path: Path) -> None:
    experiment = {
        "name": "t",
        "out": str(tmp_path / "out"),
        "dataset": {"name": "synthetic", "root": str(tmp_path / "data")},
        "grid": {"strategies": ["random"], "ratios": [0.1], "seeds": [0, 1]},
        "train": {"iteratons": 5},
    }
    with pytest.raises(ConfigError, match=r"section 'train': unknown option\(s\) iteratons"):
        api.run(experiment)
    assert not (tmp_path / "out").exists() and not (tmp_path / "data").exists()
    experiment["train"] = {"batch_size": 3, "grad_accum": 2}  # valid types, invalid together
    with pytest.raises(ConfigError, match=r"section 'train': --batch-size 3 must be divisible"):
        api.run(experiment)
    assert not (tmp_path / "out").exists()


def test_a_stage_function_releases_the_folders_it_claimed(tmp_path: Path) -> None:
    from als4gan.runlock import claim_folder, held_folders, release_folders

    kept = claim_folder(tmp_path / "mine")  # held before the call: stays held
    try:
        api.prepare(api.PrepareConfig(out=str(tmp_path / "data"), num_images=12, image_size=32))
        assert held_folders() == {kept}
    finally:
        release_folders()


def test_a_typo_in_the_prepare_section_fails_before_anything_runs(tmp_path: Path) -> None:
    experiment = {
        "name": "t",
        "out": str(tmp_path / "out"),
        "dataset": {
            "name": "synthetic",
            "root": str(tmp_path / "data"),
            "prepare": {"kind": "synthetic", "num_imags": 20},
        },
        "grid": {"strategies": ["random"], "ratios": [0.1]},
    }
    with pytest.raises(ConfigError, match=r"unknown option\(s\) num_imags \(did you mean 'num_"):
        api.run(experiment)
    assert not (tmp_path / "out").exists() and not (tmp_path / "data").exists()
