import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from als4gan.errors import ConfigError, DataError
from als4gan.experiment import (
    Cell,
    CellResult,
    ExperimentRunner,
    GridSpec,
    Stages,
    comparisons_csv,
    expand_grid,
    paired_comparisons,
    parse_experiment,
    reference_cell,
    results_csv,
    results_markdown,
    summarize,
)
from als4gan.io import RunDir, read_json, write_json


def test_expand_grid_is_complete_and_shares_selections() -> None:
    cells = expand_grid(
        GridSpec(
            ["random", "entropy"], [0.02, 0.05], [0, 1], ["s4gan", "supervised"], reference=False
        )
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


def test_expand_grid_adds_one_reference_cell_per_seed() -> None:
    cells = expand_grid(GridSpec(["random", "entropy"], [0.02, 0.05], [0, 1], ["s4gan"]))
    references = [c for c in cells if c.is_reference]
    assert references == [reference_cell(0), reference_cell(1)]
    assert [c.name for c in references] == ["full_r1_s0_supervised", "full_r1_s1_supervised"]
    assert len(cells) == 8 + 2
    # each seed's reference comes just before that seed's cells of the first ratio
    assert cells[0] == reference_cell(0)
    assert cells[3] == reference_cell(1)
    assert all(not c.is_reference for c in cells[6:])


def test_repeated_seeds_are_refused_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"grid\.seeds lists 0 more than once"):
        parse_experiment(
            _config(grid={"strategies": ["random"], "ratios": [0.1], "seeds": [0, 1, 0]}),
            "c.yaml",
            tmp_path,
        )
    with pytest.raises(ConfigError, match=r"grid\.ratios lists 0\.1 more than once"):
        parse_experiment(
            _config(grid={"strategies": ["random"], "ratios": [0.1, 0.1]}), "c.yaml", tmp_path
        )
    # a spec built in code is checked by the runner before it calls any stage
    spec = parse_experiment(_config(), "c.yaml", tmp_path)
    spec.grid.seeds = [3, 3]
    stages = FakeStages()
    with pytest.raises(ConfigError, match="seeds lists 3 more than once"):
        ExperimentRunner(spec, stages).run()
    assert stages.calls == []
    assert not (tmp_path / "out").exists()
    # and so are results that hold one cell twice
    twice = [_result("random", 0.4, 0), _result("random", 0.5, 0)]
    with pytest.raises(ConfigError, match="appears twice"):
        summarize(twice)
    with pytest.raises(ConfigError, match="appears twice"):
        paired_comparisons(twice)


def test_grid_reference_option(tmp_path: Path) -> None:
    grid = {"strategies": ["random"], "ratios": [0.1], "seeds": [0]}
    assert parse_experiment(_config(grid=grid), "c.yaml", tmp_path).grid.reference is True
    off = parse_experiment(_config(grid={**grid, "reference": False}), "c.yaml", tmp_path)
    assert off.grid.reference is False
    with pytest.raises(ConfigError, match=r"grid\.reference must be true or false"):
        parse_experiment(_config(grid={**grid, "reference": "yes"}), "c.yaml", tmp_path)
    with pytest.raises(ConfigError, match="unknown grid key"):
        parse_experiment(_config(grid={**grid, "refrence": True}), "c.yaml", tmp_path)
    with pytest.raises(ConfigError, match="name of the fully supervised reference"):
        parse_experiment(_config(grid={**grid, "strategies": ["full"]}), "c.yaml", tmp_path)


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
    assert "| 0.05 | s4gan | entropy | 2 | 54.0 ± 0.0 | — | +20.0% | 30.0 ± 0.0 |" in markdown
    assert "| 0.05 | supervised | entropy | 1 | 30.0 | — | — | — |" in markdown  # no spread
    assert "Paired comparisons" not in markdown  # none passed
    csv_text = results_csv(rows)
    assert csv_text.splitlines()[0] == (
        "ratio,method,strategy,n,miou_mean,miou_std,gain_vs_random,val_miou_mean,val_miou_std,"
        "share_of_full"
    )
    assert "0.05,supervised,entropy,1,0.300000,0.000000,,,," in csv_text
    assert len(csv_text.splitlines()) == 1 + len(rows)


def _grid_results() -> list[CellResult]:
    """Five seeds: entropy beats random by 2-4 points with s4gan; hybrid is a coin toss."""
    random_ = [0.40, 0.42, 0.38, 0.45, 0.41]
    entropy = [0.43, 0.45, 0.40, 0.49, 0.43]  # differences 3, 3, 2, 4, 2 points
    hybrid = [0.42, 0.40, 0.39, 0.44, 0.42]  # differences 2, -2, 1, -1, 1 points
    supervised = [0.39, 0.43, 0.37, 0.44, 0.40]  # random with supervised-only
    results = []
    for seed in range(5):
        results += [
            _result("random", random_[seed], seed),
            _result("entropy", entropy[seed], seed),
            _result("hybrid", hybrid[seed], seed),
            _result("random", supervised[seed], seed, "supervised"),
            CellResult(reference_cell(seed), 0.80, val_miou=0.8),
        ]
    return results


def test_paired_comparisons_against_random_and_supervised() -> None:
    results = _grid_results()
    comparisons = paired_comparisons(results)
    by = {(c["kind"], c["method"], c["strategy"]): c for c in comparisons}
    assert set(by) == {
        ("strategy", "s4gan", "entropy"),
        ("strategy", "s4gan", "hybrid"),
        ("method", "s4gan", "random"),
    }
    entropy = by[("strategy", "s4gan", "entropy")]
    # differences 0.03, 0.03, 0.02, 0.04, 0.02: mean 0.028, sd 0.008367, t(0.975, 4) = 2.7764
    assert entropy["mean_diff"] == pytest.approx(0.028)
    assert entropy["sd"] == pytest.approx(0.0083666, rel=1e-4)
    half = 2.776445 * 0.0083666 / 5**0.5
    assert entropy["ci_low"] == pytest.approx(0.028 - half, rel=1e-4)
    assert entropy["ci_high"] == pytest.approx(0.028 + half, rel=1e-4)
    assert (entropy["wins"], entropy["n"], entropy["significant"]) == (5, 5, True)
    assert (
        entropy["sentence"] == "entropy beat random by 2.8 points (95 % CI 1.8..3.8, 5 of 5 seeds)"
    )
    hybrid = by[("strategy", "s4gan", "hybrid")]
    assert hybrid["mean_diff"] == pytest.approx(0.002)
    assert hybrid["significant"] is False
    assert hybrid["sentence"].startswith("hybrid vs random: no significant difference (+0.2 points")
    method = by[("method", "s4gan", "random")]  # s4gan - supervised on the same random sets
    assert method["baseline_method"] == "supervised"
    assert method["mean_diff"] == pytest.approx(0.006)
    assert (method["wins"], method["losses"]) == (4, 1)

    rows = summarize(results)
    assert rows[0]["reference"] is True and rows[0]["strategy"] == "full"  # reference first
    by_row = {(r["method"], r["strategy"]): r for r in rows}
    assert by_row[("s4gan", "entropy")]["share_of_full"] == pytest.approx(0.44 / 0.80)
    assert by_row[("supervised", "full")]["gain_vs_random"] is None
    markdown = results_markdown(rows, "t", comparisons)
    assert "| 1 | supervised | all labels (reference) | 5 | 80.0 ± 0.0 | 100% |" in markdown
    assert "| 0.05 | s4gan | entropy | 5 | 44.0 ± 3.3 | 55% | +6.8% |" in markdown
    assert "| entropy vs random | 0.05 | s4gan | 5 | +2.8 | +1.8 .. +3.8 | 5/5 | significant |" in (
        markdown
    )
    assert "| hybrid vs random | 0.05 | s4gan | 5 | +0.2 |" in markdown
    assert "not significant |" in markdown
    assert "| s4gan vs supervised | 0.05 | random | 5 | +0.6 |" in markdown
    csv_lines = comparisons_csv(comparisons).splitlines()
    assert csv_lines[0].startswith("kind,ratio,method,strategy,baseline_method,baseline_strategy,n")
    assert csv_lines[1].startswith("strategy,0.05,s4gan,entropy,s4gan,random,5,0 1 2 3 4,0.028000")
    assert len(csv_lines) == 1 + 3


def test_one_seed_comparisons_say_there_is_no_interval() -> None:
    results = [_result("random", 0.40, 0), _result("entropy", 0.45, 0)]
    (comparison,) = paired_comparisons(results)
    assert comparison["verdict"] == "n = 1, no interval"
    assert comparison["ci_low"] is None
    assert "+5.0 points on one seed (n = 1, no interval)" in comparison["sentence"]
    markdown = results_markdown(summarize(results), "", paired_comparisons(results))
    assert "| 1 | +5.0 | n = 1, no interval | 1/1 | n = 1, no interval |" in markdown
    assert "One seed per cell" in markdown


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


@dataclass
class StageCall:
    """One call of a fake stage: its name, run folder (or output), config and options."""

    stage: str
    out: Path
    config: Any = None
    options: dict[str, Any] = field(default_factory=dict)


class FakeStages(Stages):
    """Stands in for the real stage functions: records calls and writes what each stage would."""

    def __init__(self) -> None:
        self.calls: list[StageCall] = []

    def prepare(self, config: Any) -> Any:
        self.calls.append(StageCall("prepare", Path(config.out), config))

    def select(self, config: Any, out: Path, **options: Any) -> Any:
        self.calls.append(StageCall("select", out, config, options))
        (out / "selection").mkdir(parents=True, exist_ok=True)
        (out / "selection" / "labeled.txt").write_text("a\n")
        RunDir(out).mark_done("select")

    def train(self, config: Any, out: Path, *, resume: bool, force: bool) -> Any:
        self.calls.append(StageCall("train", out, config, {"resume": resume, "force": force}))
        RunDir(out).mark_done("train")

    def evaluate(self, checkpoint: Path, config: Any, **options: Any) -> Any:
        self.calls.append(StageCall("evaluate", checkpoint, config, options))
        write_json(checkpoint / "eval" / "test" / "metrics.json", {"miou": 0.5})
        RunDir(checkpoint).mark_done("evaluate:test")

    def report(self, runs: list[str], out: Path, config: Any) -> Any:
        self.calls.append(StageCall("report", out, config, {"runs": runs}))
        out.write_text("<html></html>")


class FailingTraining(FakeStages):
    """Fake stages whose training fails as a real stage does: with an error."""

    def train(self, config: Any, out: Path, *, resume: bool, force: bool) -> Any:
        raise DataError("no labelled image has a mask")


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
    kinds = [call.stage for call in stages.calls]
    assert kinds.count("select") == 2  # shared by both methods; none for the reference
    assert kinds.count("train") == 5  # 4 cells + the fully supervised reference
    assert kinds.count("evaluate") == 5
    assert kinds[-1] == "report"
    reference = next(call for call in stages.calls if call.stage == "train")
    assert "full_r1_s0_supervised" in str(reference.out)
    assert reference.config.labeled_ratio == 1
    assert reference.config.selection is None
    assert reference.config.method == "supervised"
    assert (tmp_path / "out" / "results.md").is_file()
    assert len(outcome["rows"]) == 5
    assert "Paired comparisons" in outcome["markdown"]
    # entropy vs random for both methods; s4gan vs supervised for both strategies
    assert len(outcome["comparisons"]) == 4
    assert (tmp_path / "out" / "comparisons.csv").is_file()
    saved = read_json(tmp_path / "out" / "comparisons.json")
    assert saved["comparisons"] == json.loads(json.dumps(outcome["comparisons"]))
    # a second run redoes nothing but the summary and report
    stages.calls.clear()
    ExperimentRunner(spec, stages).run()
    assert [call.stage for call in stages.calls] == ["report"]


def test_failed_stage_stops_with_clear_message(tmp_path: Path) -> None:
    (tmp_path / "data" / "splits").mkdir(parents=True)
    (tmp_path / "data" / "splits" / "train.txt").write_text("a\n")
    spec = parse_experiment(_config(), "c.yaml", tmp_path)
    with pytest.raises(ConfigError, match=r"stage failed .*als4gan train .*full_r1_s0"):
        ExperimentRunner(spec, FailingTraining()).run()


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
    assert [call.stage for call in stages.calls].count("train") == 4  # 3 cells + seed 1 reference
    # other training settings: refused, naming what changed
    changed = parse_experiment(
        _config(train={"crop_size": 128, "iterations": 10}), "c.yaml", tmp_path
    )
    with pytest.raises(ConfigError, match=r"train: crop_size 256 -> 128.*--force"):
        ExperimentRunner(changed, FakeStages()).run()
    # --force redoes every cell with the new settings
    stages = FakeStages()
    ExperimentRunner(changed, stages, force=True).run()
    assert [call.stage for call in stages.calls].count("train") == 2  # the cell and its reference


def test_a_finished_grid_can_add_the_reference(tmp_path: Path) -> None:
    (tmp_path / "data" / "splits").mkdir(parents=True)
    (tmp_path / "data" / "splits" / "train.txt").write_text("a\nb\n")
    grid = {"strategies": ["random"], "ratios": [0.5], "seeds": [0, 1], "methods": ["s4gan"]}
    without = _config(train={"iterations": 10}, grid={**grid, "reference": False})
    stages = FakeStages()
    outcome = ExperimentRunner(parse_experiment(without, "c.yaml", tmp_path), stages).run()
    assert [call.stage for call in stages.calls].count("train") == 2
    assert all(row["share_of_full"] is None for row in outcome["rows"])
    # turning the reference on trains only the two reference cells; nothing else is redone
    with_reference = _config(train={"iterations": 10}, grid={**grid, "reference": True})
    stages = FakeStages()
    outcome = ExperimentRunner(parse_experiment(with_reference, "c.yaml", tmp_path), stages).run()
    trained = [call for call in stages.calls if call.stage == "train"]
    assert [Path(call.out).name for call in trained] == [
        "full_r1_s0_supervised",
        "full_r1_s1_supervised",
    ]
    assert [call.stage for call in stages.calls].count("select") == 0
    assert [row["share_of_full"] for row in outcome["rows"]] == [1.0, 1.0]
