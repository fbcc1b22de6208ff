"""The shipped experiment configs stay valid: every option is a real flag of its command."""

from pathlib import Path

import pytest

from als4gan.cli import build_parser
from als4gan.commands.demo import demo_experiment
from als4gan.experiment import expand_grid, load_experiment, parse_experiment, plan_cells
from als4gan.stages.prepare import prepare_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml"))


def to_flags(options: dict) -> list[str]:
    """``{"crop_size": 256, "mirror": False, "rates": [6, 12]}`` as the command line's flags."""
    flags: list[str] = []
    for key, value in options.items():
        flag = "--" + str(key).replace("_", "-")
        if value is True:
            flags.append(flag)
        elif value is False:
            flags.append("--no-" + str(key).replace("_", "-"))
        elif value is None:
            flags += [flag, "none"]
        elif isinstance(value, list | tuple):
            flags += [flag, *(str(item) for item in value)]
        else:
            flags += [flag, str(value)]
    return flags


def test_to_flags() -> None:
    flags = to_flags({"crop_size": 256, "mirror": False, "amp": True, "rates": [6, 12], "x": None})
    assert flags == [
        "--crop-size",
        "256",
        "--no-mirror",
        "--amp",
        "--rates",
        "6",
        "12",
        "--x",
        "none",
    ]


def _check_stage_flags(spec_select: dict, spec_train: dict, spec_eval: dict, dataset: str) -> None:
    parser = build_parser()
    data = ["--dataset", dataset, "--root", "r"]
    parser.parse_args(["select", *data, "--out", "o", *to_flags(spec_select)])
    parser.parse_args(["train", *data, "--out", "o", *to_flags(spec_train)])
    parser.parse_args(["evaluate", "--checkpoint", "c", *data, *to_flags(spec_eval)])


def test_configs_are_shipped() -> None:
    root = Path(__file__).resolve().parents[1] / "configs"
    names = {path.relative_to(root).as_posix() for path in CONFIGS}
    assert {"paper/ucm.yaml", "paper/deepglobe.yaml", "deepglobe_mini.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_options_are_real_flags(path: Path) -> None:
    spec = load_experiment(path)
    assert expand_grid(spec.grid)
    _check_stage_flags(spec.select, spec.train, spec.evaluate, spec.dataset.name)
    # and they build the typed configs the grid runs with (what 'als4gan run' checks first)
    assert len(plan_cells(spec)) == len(expand_grid(spec.grid))
    if spec.dataset.prepare:
        prepare = dict(spec.dataset.prepare)
        assert prepare_config({**prepare, "out": "o"}).kind == prepare["kind"]
        kind = prepare.pop("kind")
        build_parser().parse_args(["prepare", kind, "--out", "o", *to_flags(prepare)])


def test_paper_configs_follow_spec() -> None:
    for name in ("ucm", "deepglobe"):
        spec = load_experiment(next(p for p in CONFIGS if p.name == f"{name}.yaml"))
        assert spec.grid.ratios == [0.02, 0.05, 0.125]
        assert {"random", "entropy", "margin"} <= set(spec.grid.strategies)
        assert spec.train["backbone"] == "resnet101"
        assert spec.train["iterations"] == 20000
        assert spec.train["batch_size"] == 10
        assert spec.train["crop_size"] == 320


def test_demo_experiment_is_valid(tmp_path: Path) -> None:
    config = demo_experiment(str(tmp_path), seeds=2)
    spec = parse_experiment(config, "demo.yaml", tmp_path)
    assert len(expand_grid(spec.grid)) == 3 * 2 * 2 + 2  # + one reference per seed
    _check_stage_flags(spec.select, spec.train, spec.evaluate, "synthetic")
    low = demo_experiment(str(tmp_path), strategies=["random", "typiclust", "probcover"])
    spec = parse_experiment(low, "demo.yaml", tmp_path)
    assert spec.grid.strategies == ["random", "typiclust", "probcover"]


def test_lowbudget_config_reuses_the_pretrained_grid() -> None:
    """deepglobe_lowbudget.yaml shares the settings and folder of deepglobe_pretrained.yaml."""
    from als4gan.experiment import _normalise, _spec_to_dict

    root = Path(__file__).resolve().parents[1] / "configs"
    low = load_experiment(root / "deepglobe_lowbudget.yaml")
    base = load_experiment(root / "deepglobe_pretrained.yaml")
    assert low.out_dir == base.out_dir
    low_dict, base_dict = _normalise(_spec_to_dict(low)), _normalise(_spec_to_dict(base))
    for section in ("dataset", "select", "train", "evaluate"):  # what the same-settings check reads
        assert low_dict[section] == base_dict[section], section
    assert {"typiclust", "probcover"} <= set(low.grid.strategies)
