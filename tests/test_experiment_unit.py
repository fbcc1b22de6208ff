from pathlib import Path
from typing import Any

import pytest

from als4gan.errors import ConfigError
from als4gan.experiment import (
    Cell,
    CellResult,
    ExperimentRunner,
    GridSpec,
    expand_grid,
    parse_experiment,
    results_csv,
    results_markdown,
    summarize,
    to_flags,
)
from als4gan.io import RunDir, write_json


def test_expand_grid_is_complete_and_shares_selections() -> None:
    cells = expand_grid(
        GridSpec(["random", "entropy"], [0.02, 0.05], [0, 1], ["s4gan", "supervised"])
    )
    assert len(cells) == 16
    assert len({c.name for c in cells}) == 16
    assert len({c.selection_key for c in cells}) == 8  # the two methods share a selection
    # seed-major: the first seed's whole strategy x method comparison comes first
    assert [(c.seed, c.strategy, c.method) for c in cells[:4]] == [
        (0, "random", "s4gan"),
        (0, "random", "supervised"),
        (0, "entropy", "s4gan"),
        (0, "entropy", "supervised"),
    ]


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


def _result(
    strategy: str, miou: float, seed: int, method: str = "s4gan", val: float | None = 0.3
) -> CellResult:
    return CellResult(Cell(strategy, 0.05, seed, method), miou, val_miou=val)


def test_summary_mean_std_and_gain_over_random() -> None:
    rows = summarize(
        [
            _result("random", 0.40, 0),
            _result("random", 0.50, 1),
            _result("entropy", 0.54, 0),
            _result("entropy", 0.54, 1),
            _result("entropy", 0.30, 0, "supervised", val=None),
        ]
    )
    by = {(r["method"], r["strategy"]): r for r in rows}
    assert by[("s4gan", "random")]["miou_mean"] == pytest.approx(0.45)
    assert by[("s4gan", "random")]["miou_std"] == pytest.approx(0.0707107, rel=1e-5)
    assert by[("s4gan", "entropy")]["gain_vs_random"] == pytest.approx(0.54 / 0.45 - 1)
    assert by[("supervised", "entropy")]["gain_vs_random"] is None  # no random baseline there
    markdown = results_markdown(rows, "demo")
    assert by[("s4gan", "random")]["val_miou_mean"] == pytest.approx(0.3)
    assert by[("supervised", "entropy")]["val_miou_mean"] is None  # no validation
    assert "| 0.05 | s4gan | entropy | 2 | 54.0 ± 0.0 | +20.0% | 30.0 ± 0.0 |" in markdown
    assert "| 0.05 | supervised | entropy | 1 | 30.0 | — | — |" in markdown  # 1 seed: no spread
    csv_text = results_csv(rows)
    assert csv_text.splitlines()[0] == (
        "ratio,method,strategy,n,miou_mean,miou_std,gain_vs_random,val_miou_mean,val_miou_std"
    )
    assert "0.05,supervised,entropy,1,0.300000,0.000000,,," in csv_text
    assert len(csv_text.splitlines()) == 1 + len(rows)


def _config(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "t",
        "out": "out",
        "dataset": {"name": "synthetic", "root": "data"},
        "grid": {
            "strategies": ["random"],
            "ratios": [0.1],
            "seeds": [0],
            "methods": ["supervised"],
        },
    }
    data.update(overrides)
    return data


def test_parse_rejects_bad_configs(tmp_path: Path) -> None:
    spec = parse_experiment(_config(), "c.yaml", tmp_path)
    assert spec.root_dir == tmp_path / "data"
    with pytest.raises(ConfigError, match="unknown key"):
        parse_experiment(_config(trian={}), "c.yaml", tmp_path)
    with pytest.raises(ConfigError, match=r"grid\.methods"):
        parse_experiment(
            _config(grid={"strategies": ["random"], "ratios": [0.1], "methods": ["gan"]}),
            "c.yaml",
            tmp_path,
        )
    with pytest.raises(ConfigError, match=r"ratios must lie in \(0, 1\]"):
        parse_experiment(
            _config(grid={"strategies": ["random"], "ratios": [2]}), "c.yaml", tmp_path
        )
    with pytest.raises(ConfigError, match="missing required key 'dataset'"):
        parse_experiment({"grid": {}}, "c.yaml", tmp_path)


class FakeStages:
    """Stands in for the real commands: records calls and writes what each stage would."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str]) -> int:
        self.calls.append(argv)
        out = Path(argv[argv.index("--out") + 1]) if "--out" in argv else None
        if argv[0] == "select" and out is not None:
            (out / "selection").mkdir(parents=True, exist_ok=True)
            (out / "selection" / "labeled.txt").write_text("a\n")
            RunDir(out).mark_done("select")
        elif argv[0] == "train" and out is not None:
            RunDir(out).mark_done("train")
        elif argv[0] == "evaluate":
            run = Path(argv[argv.index("--checkpoint") + 1])
            write_json(run / "eval" / "test" / "metrics.json", {"miou": 0.5})
            RunDir(run).mark_done("evaluate:test")
        elif argv[0] == "report" and out is not None:
            out.write_text("<html></html>")
        return 0


def test_runner_skips_finished_stages(tmp_path: Path) -> None:
    (tmp_path / "data" / "splits").mkdir(parents=True)
    (tmp_path / "data" / "splits" / "train.txt").write_text("a\nb\n")
    spec = parse_experiment(
        _config(
            grid={
                "strategies": ["random", "entropy"],
                "ratios": [0.5],
                "seeds": [0],
                "methods": ["s4gan", "supervised"],
            }
        ),
        "c.yaml",
        tmp_path,
    )
    stages = FakeStages()
    outcome = ExperimentRunner(spec, stages).run()
    kinds = [call[0] for call in stages.calls]
    assert kinds.count("select") == 2  # shared by both methods
    assert kinds.count("train") == 4
    assert kinds.count("evaluate") == 4
    assert kinds[-1] == "report"
    assert (tmp_path / "out" / "results.md").is_file()
    assert len(outcome["rows"]) == 4
    # a second run redoes nothing but the summary and report
    stages.calls.clear()
    ExperimentRunner(spec, stages).run()
    assert [call[0] for call in stages.calls] == ["report"]


def test_failed_stage_stops_with_clear_message(tmp_path: Path) -> None:
    (tmp_path / "data" / "splits").mkdir(parents=True)
    (tmp_path / "data" / "splits" / "train.txt").write_text("a\n")
    spec = parse_experiment(_config(), "c.yaml", tmp_path)
    with pytest.raises(ConfigError, match=r"stage failed .*als4gan select"):
        ExperimentRunner(spec, lambda argv: 1).run()


def test_changed_settings_are_refused_but_a_grown_grid_is_not(tmp_path: Path) -> None:
    (tmp_path / "data" / "splits").mkdir(parents=True)
    (tmp_path / "data" / "splits" / "train.txt").write_text("a\nb\n")
    config = _config(train={"crop_size": 256, "iterations": 10})
    ExperimentRunner(parse_experiment(config, "c.yaml", tmp_path), FakeStages()).run()
    # more seeds and another ratio: finished cells stay valid
    grown = _config(
        train={"crop_size": 256, "iterations": 10},
        grid={
            "strategies": ["random"],
            "ratios": [0.1, 0.5],
            "seeds": [0, 1],
            "methods": ["supervised"],
        },
    )
    stages = FakeStages()
    ExperimentRunner(parse_experiment(grown, "c.yaml", tmp_path), stages).run()
    assert [call[0] for call in stages.calls].count("train") == 3
    # other training settings: refused, naming what changed
    changed = parse_experiment(
        _config(train={"crop_size": 128, "iterations": 10}), "c.yaml", tmp_path
    )
    with pytest.raises(ConfigError, match=r"train: crop_size 256 -> 128.*--force"):
        ExperimentRunner(changed, FakeStages()).run()
    # --force redoes every cell with the new settings
    stages = FakeStages()
    ExperimentRunner(changed, stages, force=True).run()
    assert [call[0] for call in stages.calls].count("train") == 1
