"""Experiment grids from one YAML config: prepare -> select -> train -> evaluate -> report.

A grid is strategies x labelled ratios x seeds x methods. Each (strategy, ratio, seed) selection is
computed once and shared by the methods trained on it (the selection does not depend on the
method); each cell (selection + method) is its own run folder. Stages are driven through the same
command-line interface a user types, so a grid runs exactly what the README documents. Finished
stages are skipped (their run folders record completion) and an interrupted one resumes.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import io
import logging
import math
import shutil
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from als4gan.errors import ConfigError
from als4gan.io import RunDir, atomic_write_text, read_json, read_yaml, write_json, write_yaml
from als4gan.stats import NO_INTERVAL, PairedDifference, paired_difference

LOGGER = logging.getLogger(__name__)

#: Methods a grid may list (every ``--method`` of 'als4gan train').
METHODS = ("s4gan", "supervised", "unimatch")
#: Methods of a grid that lists none (the paper's comparison).
DEFAULT_METHODS = ("s4gan", "supervised")
SELECTIONS_DIR = "selections"
CELLS_DIR = "cells"
RESULTS_MD = "results.md"
RESULTS_CSV = "results.csv"
COMPARISONS_CSV = "comparisons.csv"
COMPARISONS_JSON = "comparisons.json"
#: Strategy name of the fully supervised reference cells (every training image labelled).
REFERENCE_STRATEGY = "full"
#: Method of the reference cells.
REFERENCE_METHOD = "supervised"
REPORT_HTML = "report.html"


@dataclass
class DatasetSpec:
    """Where the data is and, optionally, how to prepare it when it is not there yet.

    Attributes:
        name: Dataset format (a key of ``als4gan.data.DATASETS``).
        root: Prepared dataset root (relative paths are relative to the current directory).
        prepare: Optional ``{"kind": ..., **flags}`` for ``als4gan prepare KIND`` when ``root``
            holds no ``splits/`` yet (e.g. ``{"kind": "deepglobe", "src": ..., "tile_size": 0}``).
        options: Dataset options passed to every stage (``classes_file``, ``bands``).
    """

    name: str
    root: str
    prepare: dict[str, Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    variable_src: bool = False


@dataclass
class GridSpec:
    """The grid of cells.

    Attributes:
        strategies: Selection strategies (``random`` is the baseline of the paired comparisons).
        ratios: Labelled ratios.
        seeds: Seeds (each one sets the selection's random part, initialisation, data order).
        methods: Training methods (``supervised`` is the baseline of the method comparisons).
        reference: Add, per seed, one supervised run on every training image (the fully
            supervised reference, cell ``full_r1_s<seed>_supervised``), the scale each cell is
            shown against ("share of full supervision").
    """

    strategies: list[str]
    ratios: list[float]
    seeds: list[int]
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    reference: bool = True


@dataclass
class ExperimentSpec:
    """A whole experiment: dataset, grid and the flags of each stage.

    Attributes:
        name: Experiment name (shown in tables and the report).
        out: Output folder (relative to the current directory unless absolute).
        dataset: Data location and preparation.
        grid: Strategies x ratios x seeds x methods.
        select: Flags of ``als4gan select`` (option names as in ``--help``, with ``_``).
        train: Flags of ``als4gan train``.
        evaluate: Flags of ``als4gan evaluate`` (``split`` defaults to ``test``).
        report: Whether to build the comparison report.
    """

    name: str
    out: str
    dataset: DatasetSpec
    grid: GridSpec
    select: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    evaluate: dict[str, Any] = field(default_factory=dict)
    report: bool = True
    base_dir: Path = field(default_factory=Path.cwd)

    def path(self, value: str) -> Path:
        """Resolve a path from the config (relative paths: from the directory run from)."""
        candidate = Path(value).expanduser()
        return candidate if candidate.is_absolute() else (self.base_dir / candidate)

    @property
    def out_dir(self) -> Path:
        """Absolute output folder."""
        return self.path(self.out)

    @property
    def root_dir(self) -> Path:
        """Absolute dataset root."""
        return self.path(self.dataset.root)


def _require(mapping: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in mapping:
        raise ConfigError(f"{where}: missing required key '{key}'")
    return mapping[key]


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def parse_experiment(data: Mapping[str, Any], source: str, base_dir: Path) -> ExperimentSpec:
    """Validate a loaded YAML mapping into an :class:`ExperimentSpec`.

    Raises:
        ConfigError: On unknown or missing keys and invalid values (the message names them).
    """
    known = {"name", "out", "dataset", "grid", "select", "train", "evaluate", "report"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}"
        )
    dataset_data = _require(data, "dataset", source)
    grid_data = _require(data, "grid", source)
    if not isinstance(dataset_data, dict) or not isinstance(grid_data, dict):
        raise ConfigError(f"{source}: 'dataset' and 'grid' must be mappings")
    dataset = DatasetSpec(
        name=str(_require(dataset_data, "name", f"{source}: dataset")),
        root=str(_require(dataset_data, "root", f"{source}: dataset")),
        prepare=dataset_data.get("prepare"),
        options=dict(dataset_data.get("options") or {}),
    )
    grid_known = {"strategies", "ratios", "seeds", "methods", "reference"}
    grid_unknown = sorted(set(grid_data) - grid_known)
    if grid_unknown:
        raise ConfigError(
            f"{source}: unknown grid key(s) {', '.join(grid_unknown)}; "
            f"valid: {', '.join(sorted(grid_known))}"
        )
    reference = grid_data.get("reference", True)
    if not isinstance(reference, bool):
        raise ConfigError(f"{source}: grid.reference must be true or false, got {reference!r}")
    grid = GridSpec(
        strategies=[str(s) for s in _as_list(_require(grid_data, "strategies", f"{source}: grid"))],
        ratios=[float(r) for r in _as_list(_require(grid_data, "ratios", f"{source}: grid"))],
        seeds=[int(s) for s in _as_list(grid_data.get("seeds", [0]))],
        methods=[str(m) for m in _as_list(grid_data.get("methods", list(DEFAULT_METHODS)))],
        reference=reference,
    )
    check_grid(grid, source)
    bad_methods = sorted(set(grid.methods) - set(METHODS))
    if bad_methods:
        raise ConfigError(
            f"{source}: grid.methods has {', '.join(bad_methods)}; choose from {', '.join(METHODS)}"
        )
    for ratio in grid.ratios:
        if not 0 < ratio <= 1:
            raise ConfigError(f"{source}: grid.ratios must lie in (0, 1], got {ratio}")
    if not grid.strategies or not grid.ratios or not grid.seeds or not grid.methods:
        raise ConfigError(f"{source}: every grid list must hold at least one value")
    if REFERENCE_STRATEGY in grid.strategies:
        raise ConfigError(
            f"{source}: '{REFERENCE_STRATEGY}' is the name of the fully supervised reference "
            "(grid.reference: true), not a selection strategy; remove it from grid.strategies"
        )
    for section in ("select", "train", "evaluate"):
        value = data.get(section) or {}
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: '{section}' must be a mapping of option: value")
    return ExperimentSpec(
        name=str(data.get("name") or Path(source).stem),
        out=str(data.get("out") or f"runs/{Path(source).stem}"),
        dataset=dataset,
        grid=grid,
        select=dict(data.get("select") or {}),
        train=dict(data.get("train") or {}),
        evaluate=dict(data.get("evaluate") or {}),
        report=bool(data.get("report", True)),
        base_dir=base_dir,
    )


def load_experiment(path: str | Path, data_root: str | None = None) -> ExperimentSpec:
    """Read and validate an experiment YAML file.

    ``dataset.root`` and ``dataset.prepare.src`` may use ``${ALS4GAN_DATA:-default}``-style
    variables (:mod:`als4gan.datapaths`); ``data_root`` (``--data-root``) overrides
    ``$ALS4GAN_DATA``.

    Raises:
        ConfigError: If the file is missing or invalid.
    """
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"experiment config {file} does not exist")
    data = read_yaml(file)
    if not isinstance(data, dict):
        raise ConfigError(f"{file} must hold a mapping (name, out, dataset, grid, ...)")
    spec = parse_experiment(data, str(file), Path.cwd())
    _expand_data_paths(spec, str(file), data_root)
    check_grid(spec.grid, str(file))
    check_stage_sections(spec, str(file))
    return spec


# ----------------------------------------------------------------------------- validation
#: Options of each stage that the grid and the dataset section set: a stage section may not.
GRID_OWNED: dict[str, frozenset[str]] = {
    "select": frozenset(
        {"dataset", "root", "split", "classes_file", "bands", "labeled_ratio", "budget"}
        | {"strategy", "seed", "out", "force", "resume", "config"}
    ),
    "train": frozenset(
        {"dataset", "root", "split", "classes_file", "bands", "labeled_ratio", "selection"}
        | {"method", "seed", "out", "force", "resume", "config"}
    ),
    "evaluate": frozenset(
        {"checkpoint", "dataset", "root", "classes_file", "bands", "out", "force", "config"}
    ),
}

#: Arguments a stage's parser requires, filled with placeholders while checking a section.
_REQUIRED_PLACEHOLDERS: dict[str, list[str]] = {
    "select": ["--out", "_"],
    "train": ["--out", "_"],
    "evaluate": ["--checkpoint", "_"],
}


class _CheckingParser(argparse.ArgumentParser):
    """A stage's real parser that raises instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def check_stage_sections(spec: ExperimentSpec, source: str) -> None:
    """Check every stage section against the real options of its stage, before any stage runs.

    Each section is parsed by the same argument parser as ``als4gan <stage>`` (names, types,
    choices), so a typo in ``train:`` is reported before hours of selections, not after.

    Raises:
        ConfigError: On an unknown option, a value of the wrong type, or an option the grid
            sets itself (the seed, strategy, ratio, method, data and output folders).
    """
    from als4gan.cli import COMMANDS

    for stage, options in (
        ("select", spec.select),
        ("train", spec.train),
        ("evaluate", spec.evaluate),
    ):
        where = f"{source}: section '{stage}'"
        names = {str(key): str(key).replace("-", "_") for key in options}  # crop-size = crop_size
        owned = sorted(key for key, name in names.items() if name in GRID_OWNED[stage])
        if owned:
            raise ConfigError(
                f"{where} sets {', '.join(owned)}, which the experiment sets for every cell "
                "(grid: strategies, ratios, seeds, methods; dataset: name, root, options; "
                "folders: out). Remove them from the section; change the grid or dataset instead."
            )
        parser = _CheckingParser(prog=f"als4gan {stage}", add_help=False)
        importlib.import_module(COMMANDS[stage]).add_arguments(parser)
        known = {action.dest for action in parser._actions}
        unknown = sorted(key for key, name in names.items() if name not in known)
        if unknown:
            valid = sorted(known - GRID_OWNED[stage] - {"help"})
            raise ConfigError(
                f"{where}: unknown option(s) {', '.join(unknown)}; valid: {', '.join(valid)}"
            )
        try:
            parser.parse_args([*_REQUIRED_PLACEHOLDERS[stage], *to_flags(options)])
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}") from None


def _expand_data_paths(spec: ExperimentSpec, source: str, data_root: str | None) -> None:
    """Expand ``${...}`` in the dataset paths; remember which ones came from ``$ALS4GAN_DATA``."""
    import os

    from als4gan.datapaths import DATA_ENV, expand_variables

    env = dict(os.environ)
    if data_root:
        env[DATA_ENV] = str(Path(data_root).expanduser().resolve())
    where = f"{source}: dataset"
    spec.dataset.root = expand_variables(spec.dataset.root, env, f"{where}.root")
    if spec.dataset.prepare and isinstance(spec.dataset.prepare.get("src"), str):
        src = spec.dataset.prepare["src"]
        if "${" in src:
            spec.dataset.variable_src = True
        spec.dataset.prepare["src"] = expand_variables(src, env, f"{where}.prepare.src")


def check_grid(grid: GridSpec, source: str = "grid") -> None:
    """Refuse a grid that lists a seed (or strategy, ratio, method) twice.

    A repeated seed would train the same cell twice and count it as two independent pairs in
    the paired comparisons.

    Raises:
        ConfigError: Naming the list and the repeated values.
    """
    lists: dict[str, Sequence[Any]] = {
        "seeds": grid.seeds,
        "strategies": grid.strategies,
        "ratios": grid.ratios,
        "methods": grid.methods,
    }
    for name, values in lists.items():
        repeated = sorted({value for value in values if list(values).count(value) > 1}, key=str)
        if repeated:
            shown = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in repeated)
            raise ConfigError(
                f"{source}: grid.{name} lists {shown} more than once ({list(values)}); list "
                "each value once (a repeated seed would run the same cell twice and count it "
                "as two independent results)"
            )


# ----------------------------------------------------------------------------- cells
def ratio_tag(ratio: float) -> str:
    """A folder-safe tag for a ratio: 0.05 -> 'r0.05'."""
    return f"r{ratio:g}"


@dataclass(frozen=True)
class Cell:
    """One run of the grid."""

    strategy: str
    ratio: float
    seed: int
    method: str

    @property
    def selection_key(self) -> str:
        """Folder name of the (shared) selection of this cell."""
        return f"{self.strategy}_{ratio_tag(self.ratio)}_s{self.seed}"

    @property
    def name(self) -> str:
        """Folder name of this cell's run."""
        return f"{self.selection_key}_{self.method}"

    @property
    def is_reference(self) -> bool:
        """Whether this is a fully supervised reference cell (every training image labelled)."""
        return self.strategy == REFERENCE_STRATEGY


def reference_cell(seed: int) -> Cell:
    """The fully supervised reference cell of ``seed``: ``full_r1_s<seed>_supervised``."""
    return Cell(REFERENCE_STRATEGY, 1.0, seed, REFERENCE_METHOD)


def expand_grid(grid: GridSpec) -> list[Cell]:
    """All cells in a stable order: ratio, seed, strategy, method.

    Seeds come before strategies so that a grid stopped part-way holds complete
    strategy x method comparisons for its first seeds rather than one strategy only. With
    ``grid.reference`` each seed's fully supervised reference comes just before that seed's
    cells of the first ratio.

    Raises:
        ConfigError: If a grid list repeats a value (see :func:`check_grid`).
    """
    check_grid(grid)
    cells: list[Cell] = []
    for index, ratio in enumerate(grid.ratios):
        for seed in grid.seeds:
            if grid.reference and index == 0:
                cells.append(reference_cell(seed))
            cells += [
                Cell(strategy, ratio, seed, method)
                for strategy in grid.strategies
                for method in grid.methods
            ]
    return cells


# ----------------------------------------------------------------------------- results
@dataclass
class CellResult:
    """Metrics of one finished cell: test mIoU and the best validation mIoU of training."""

    cell: Cell
    miou: float
    pixel_accuracy: float | None = None
    run_dir: str = ""
    val_miou: float | None = None


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return mean, std


def _check_unique(results: Sequence[CellResult]) -> None:
    seen: set[Cell] = set()
    for result in results:
        if result.cell in seen:
            raise ConfigError(
                f"cell {result.cell.name} appears twice in the results (a repeated seed?); "
                "each (strategy, ratio, seed, method) must be measured once"
            )
        seen.add(result.cell)


def summarize(results: Iterable[CellResult]) -> list[dict[str, Any]]:
    """Group results by (ratio, method, strategy): mean, std, n and gain over random.

    Test mIoU gives ``miou_mean``/``miou_std``; the best validation mIoU of each training run
    gives ``val_miou_mean``/``val_miou_std`` (``None`` when a run has no validation). The
    relative gain of a strategy is ``mean / mean_random - 1`` of test mIoU at the same ratio and
    method (``None`` when there is no random row). ``share_of_full`` is the mean test mIoU as a
    fraction of the fully supervised reference's mean (``None`` without reference cells). The
    reference row (``strategy`` ``full``, ``reference`` true) comes first.

    Raises:
        ConfigError: If a cell appears twice (e.g. a repeated seed).
    """
    results = list(results)
    _check_unique(results)
    groups: dict[tuple[float, str, str], list[CellResult]] = {}
    for result in results:
        key = (result.cell.ratio, result.cell.method, result.cell.strategy)
        groups.setdefault(key, []).append(result)
    rows: list[dict[str, Any]] = []
    ordered = sorted(groups.items(), key=lambda item: (item[0][2] != REFERENCE_STRATEGY, item[0]))
    for (ratio, method, strategy), members in ordered:
        mean, std = _mean_std([member.miou for member in members])
        val = [member.val_miou for member in members]
        val_mean, val_std = (
            _mean_std([v for v in val if v is not None]) if None not in val else (None, None)
        )
        rows.append(
            {
                "ratio": ratio,
                "method": method,
                "strategy": strategy,
                "reference": strategy == REFERENCE_STRATEGY,
                "n": len(members),
                "seeds": sorted(member.cell.seed for member in members),
                "miou_mean": mean,
                "miou_std": std,
                "share_of_full": None,
                "val_miou_mean": val_mean,
                "val_miou_std": val_std,
                "gain_vs_random": None,
            }
        )
    reference = next((row for row in rows if row["reference"]), None)
    for row in rows:
        if reference is not None and reference["miou_mean"] > 0:
            row["share_of_full"] = row["miou_mean"] / reference["miou_mean"]
        baseline = next(
            (
                other
                for other in rows
                if other["strategy"] == "random"
                and other["ratio"] == row["ratio"]
                and other["method"] == row["method"]
            ),
            None,
        )
        if (
            baseline is not None
            and row["strategy"] not in ("random", REFERENCE_STRATEGY)
            and baseline["miou_mean"] > 0
        ):
            row["gain_vs_random"] = row["miou_mean"] / baseline["miou_mean"] - 1
    return rows


def paired_comparisons(results: Iterable[CellResult]) -> list[dict[str, Any]]:
    """Paired per-seed differences of test mIoU against the baselines of the grid.

    Two kinds of comparison, each over the seeds both sides have (the same seed gives the same
    initialisation and data order, and for the method comparison the same labelled set):

    - ``strategy``: each strategy against ``random`` at the same ratio and method;
    - ``method``: each method against ``supervised`` with the same strategy and ratio.

    Returns:
        One mapping per comparison: ``kind``, ``ratio``, ``method``, ``strategy`` (the tested
        side), ``baseline_method``, ``baseline_strategy``, ``n``, ``seeds``, ``mean_diff``,
        ``sd``, ``ci_low``, ``ci_high`` (fractions of mIoU; ``None`` with one seed), ``wins``,
        ``losses``, ``ties``, ``significant`` (``None`` with one seed), ``verdict`` and
        ``sentence`` (the result in plain words).

    Raises:
        ConfigError: If a cell appears twice (e.g. a repeated seed).
    """
    results = [result for result in results if not result.cell.is_reference]
    _check_unique(results)
    by_group: dict[tuple[float, str, str], dict[int, float]] = {}
    for result in results:
        key = (result.cell.ratio, result.cell.method, result.cell.strategy)
        by_group.setdefault(key, {})[result.cell.seed] = result.miou
    comparisons: list[dict[str, Any]] = []
    for (ratio, method, strategy), values in sorted(by_group.items()):
        if strategy != "random" and (ratio, method, "random") in by_group:
            baseline = by_group[(ratio, method, "random")]
            if set(values) & set(baseline):
                difference = paired_difference(values, baseline)
                comparisons.append(
                    _comparison_row(
                        "strategy", ratio, method, strategy, method, "random", difference
                    )
                )
    for (ratio, method, strategy), values in sorted(by_group.items()):
        if method != "supervised" and (ratio, "supervised", strategy) in by_group:
            baseline = by_group[(ratio, "supervised", strategy)]
            if set(values) & set(baseline):
                difference = paired_difference(values, baseline)
                comparisons.append(
                    _comparison_row(
                        "method", ratio, method, strategy, "supervised", strategy, difference
                    )
                )
    return comparisons


def _comparison_row(
    kind: str,
    ratio: float,
    method: str,
    strategy: str,
    baseline_method: str,
    baseline_strategy: str,
    difference: PairedDifference,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "kind": kind,
        "ratio": ratio,
        "method": method,
        "strategy": strategy,
        "baseline_method": baseline_method,
        "baseline_strategy": baseline_strategy,
        "n": difference.n,
        "seeds": list(difference.seeds),
        "mean_diff": difference.mean,
        "sd": difference.sd,
        "ci_low": difference.ci_low,
        "ci_high": difference.ci_high,
        "wins": difference.wins,
        "losses": difference.losses,
        "ties": difference.ties,
        "significant": difference.significant,
        "verdict": difference.verdict,
    }
    row["sentence"] = comparison_sentence(row)
    return row


def comparison_label(row: Mapping[str, Any]) -> tuple[str, str, str]:
    """``(tested side, baseline, context)`` names of a comparison row.

    ``("entropy", "random", "s4gan")`` for a strategy comparison and
    ``("s4gan", "supervised", "entropy")`` for a method comparison.
    """
    if row["kind"] == "strategy":
        return str(row["strategy"]), str(row["baseline_strategy"]), str(row["method"])
    return str(row["method"]), str(row["baseline_method"]), str(row["strategy"])


def comparison_sentence(row: Mapping[str, Any]) -> str:
    """A comparison row in plain words, with test mIoU in points.

    E.g. ``"entropy beat random by 3.1 points (95 % CI 0.4..5.8, 4 of 5 seeds)"``,
    ``"entropy vs random: no significant difference (+1.0 points, 95 % CI -2.0..4.0, 3 of 5
    seeds)"`` or ``"entropy vs random: +1.0 points on one seed (n = 1, no interval)"``.
    """
    tested, baseline, _ = comparison_label(row)
    mean = float(row["mean_diff"]) * 100
    seeds = f"{row['wins']} of {row['n']} seeds"
    if row["significant"] is None:
        return f"{tested} vs {baseline}: {mean:+.1f} points on one seed ({NO_INTERVAL})"
    interval = f"95 % CI {float(row['ci_low']) * 100:.1f}..{float(row['ci_high']) * 100:.1f}"
    if not row["significant"]:
        return (
            f"{tested} vs {baseline}: no significant difference "
            f"({mean:+.1f} points, {interval}, {tested} ahead on {seeds})"
        )
    verb = "beat" if mean > 0 else "fell behind"
    return f"{tested} {verb} {baseline} by {abs(mean):.1f} points ({interval}, {seeds})"


def _fmt_gain(gain: float | None) -> str:
    return "—" if gain is None else f"{gain * 100:+.1f}%"


def _fmt_share(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.0f}%"


#: Printed under a table whose cells have one seed each.
ONE_SEED_NOTE = (
    "One seed per cell: differences of a few mIoU points between cells are within seed-to-seed "
    "variation (run several seeds for mean ± std and confidence intervals)."
)


def _fmt_miou(mean: float | None, std: float | None, n: int) -> str:
    if mean is None:
        return "—"
    text = f"{mean * 100:.1f}"
    if n > 1 and std is not None:  # one seed has no spread to show
        text += f" ± {std * 100:.1f}"
    return text


def _fmt_points(value: float | None, sign: bool = True) -> str:
    if value is None:
        return "—"
    return f"{value * 100:+.1f}" if sign else f"{value * 100:.1f}"


def comparisons_markdown(comparisons: Sequence[Mapping[str, Any]]) -> str:
    """The paired comparisons as a Markdown table (differences in mIoU points)."""
    lines = [
        "| comparison | labelled ratio | with | seeds | difference (points) | 95 % CI "
        "| wins | result |",
        "|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for row in comparisons:
        tested, baseline, context = comparison_label(row)
        interval = (
            NO_INTERVAL
            if row["ci_low"] is None
            else f"{_fmt_points(row['ci_low'])} .. {_fmt_points(row['ci_high'])}"
        )
        lines.append(
            f"| {tested} vs {baseline} | {row['ratio']:g} | {context} | {row['n']} | "
            f"{_fmt_points(row['mean_diff'])} | {interval} | {row['wins']}/{row['n']} | "
            f"{row['verdict']} |"
        )
    return "\n".join(lines) + "\n"


def results_markdown(
    rows: Sequence[dict[str, Any]],
    title: str = "",
    comparisons: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """The results table as Markdown (mIoU in %, mean ± std over seeds).

    With ``comparisons`` (from :func:`paired_comparisons`) a second table follows: the paired
    per-seed differences, their 95 % confidence intervals and whether they are significant.
    """
    lines = [f"### {title}", ""] if title else []
    lines += [
        "| labelled ratio | method | strategy | seeds | test mIoU (%) | share of full "
        "| gain vs random | best val mIoU (%) |",
        "|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        strategy = "all labels (reference)" if row.get("reference") else row["strategy"]
        lines.append(
            f"| {row['ratio']:g} | {row['method']} | {strategy} | {row['n']} | "
            f"{_fmt_miou(row['miou_mean'], row['miou_std'], row['n'])} | "
            f"{_fmt_share(row.get('share_of_full'))} | "
            f"{_fmt_gain(row['gain_vs_random'])} | "
            f"{_fmt_miou(row.get('val_miou_mean'), row.get('val_miou_std'), row['n'])} |"
        )
    if rows and all(row["n"] == 1 for row in rows):
        lines += ["", f"*{ONE_SEED_NOTE}*"]
    if comparisons:
        lines += [
            "",
            "Paired comparisons (test mIoU, same seeds; difference = tested - baseline):",
            "",
            comparisons_markdown(comparisons).rstrip("\n"),
        ]
    return "\n".join(lines) + "\n"


def _csv(rows: Sequence[Mapping[str, Any]], fields: Sequence[str], measured: set[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()

    def cell(key: str, value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, list):
            return " ".join(str(item) for item in value)
        return f"{value:.6f}" if key in measured else value

    for row in rows:
        writer.writerow({key: cell(key, row.get(key)) for key in fields})
    return buffer.getvalue()


def results_csv(rows: Sequence[dict[str, Any]]) -> str:
    """The results table as CSV (fractions, not percentages; empty where not applicable)."""
    fields = [
        "ratio",
        "method",
        "strategy",
        "n",
        "miou_mean",
        "miou_std",
        "gain_vs_random",
        "val_miou_mean",
        "val_miou_std",
        "share_of_full",
    ]
    return _csv(rows, fields, set(fields[4:]))


def comparisons_csv(comparisons: Sequence[Mapping[str, Any]]) -> str:
    """The paired comparisons as CSV (differences as fractions of mIoU; seeds space-separated)."""
    fields = [
        "kind",
        "ratio",
        "method",
        "strategy",
        "baseline_method",
        "baseline_strategy",
        "n",
        "seeds",
        "mean_diff",
        "sd",
        "ci_low",
        "ci_high",
        "wins",
        "losses",
        "ties",
        "significant",
        "verdict",
    ]
    return _csv(comparisons, fields, {"mean_diff", "sd", "ci_low", "ci_high"})


def is_finite(value: Any) -> bool:
    """Whether ``value`` is a finite number."""
    return isinstance(value, int | float) and math.isfinite(value)


# ----------------------------------------------------------------------------- running
CommandRunner = Callable[[list[str]], int]


def to_flags(options: Mapping[str, Any]) -> list[str]:
    """Turn ``{"crop_size": 256, "mirror": False, "rates": [6, 12]}`` into CLI flags.

    ``True`` -> ``--name``; ``False`` -> ``--no-name``; ``None`` -> ``--name none``; lists give
    one value each.
    """
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


def _cli_runner(argv: list[str]) -> int:
    from als4gan.cli import main

    return main(argv)


class ExperimentRunner:
    """Runs the cells of an experiment in order, skipping finished stages.

    Args:
        spec: The experiment.
        run_command: Executes one ``als4gan`` command line (default: in this process).
        force: Redo finished stages.
        keep_checkpoints: Keep each cell's ``checkpoints/latest.pt`` (the resume state) after
            the cell is trained and evaluated; by default it is deleted then, since nothing
            later reads it (``best.pt``, which evaluation and the report use, stays).
    """

    def __init__(
        self,
        spec: ExperimentSpec,
        run_command: CommandRunner | None = None,
        force: bool = False,
        keep_checkpoints: bool = False,
    ) -> None:
        self.spec = spec
        self.run_command = run_command or _cli_runner
        self.force = force
        self.keep_checkpoints = keep_checkpoints
        self.out = spec.out_dir

    # ---------------------------------------------------------------- helpers
    def _call(self, argv: list[str]) -> None:
        LOGGER.info("$ als4gan %s", " ".join(argv))
        code = self.run_command(argv)
        if code != 0:
            raise ConfigError(
                f"stage failed (exit code {code}): als4gan {' '.join(argv)}. Fix the cause shown "
                "above and run the same 'als4gan run' again: finished stages are kept."
            )

    def _dataset_flags(self) -> list[str]:
        dataset = ["--dataset", self.spec.dataset.name, "--root", str(self.spec.root_dir)]
        return [*dataset, *to_flags(self.spec.dataset.options)]

    def selection_dir(self, cell: Cell) -> Path:
        """Run folder of the selection shared by ``cell``'s methods."""
        return self.out / SELECTIONS_DIR / cell.selection_key

    def cell_dir(self, cell: Cell) -> Path:
        """Run folder of ``cell``."""
        return self.out / CELLS_DIR / cell.name

    # ---------------------------------------------------------------- stages
    def prepare(self) -> None:
        """Prepare the dataset when its root has no split files yet."""
        root = self.spec.root_dir
        if (root / "splits" / "train.txt").is_file():
            return
        prepare = dict(self.spec.dataset.prepare or {})
        if not prepare:
            raise ConfigError(
                f"dataset root {root} has no splits/train.txt and the config has no "
                "dataset.prepare section: run 'als4gan prepare' first or add one."
            )
        kind = str(prepare.pop("kind", self.spec.dataset.name))
        for key in ("src",):
            if key in prepare:
                prepare[key] = str(self.spec.path(str(prepare[key])))
                if not Path(prepare[key]).exists():
                    from als4gan.datapaths import missing_data_message

                    raise ConfigError(
                        missing_data_message(
                            prepare[key], "dataset.prepare.src", self.spec.dataset.variable_src
                        )
                    )
        self._call(["prepare", kind, "--out", str(root), *to_flags(prepare)])

    def select(self, cell: Cell) -> Path:
        """Run (or reuse) the selection of ``cell``; returns its run folder."""
        run_dir = self.selection_dir(cell)
        if RunDir(run_dir).is_done("select") and not self.force:
            return run_dir
        self._call(
            [
                "select",
                *self._dataset_flags(),
                "--split",
                "train",
                "--labeled-ratio",
                f"{cell.ratio:g}",
                "--strategy",
                cell.strategy,
                "--seed",
                str(cell.seed),
                "--out",
                str(run_dir),
                # pretrained embeddings (typiclust, probcover) computed once for all cells
                "--embedding-cache",
                str(self.out / "embeddings"),
                *to_flags(self.spec.select),
                *(["--force"] if self.force else []),
            ]
        )
        return run_dir

    def train(self, cell: Cell, selection: Path | None) -> Path:
        """Train ``cell`` on its selection, resuming an interrupted run.

        ``selection`` is ``None`` for a reference cell, which is trained on every training
        image (``--labeled-ratio 1``) with the same training settings as the other cells.
        """
        run_dir = self.cell_dir(cell)
        state = RunDir(run_dir)
        if state.is_done("train") and not self.force:
            return run_dir
        if selection is None:
            labelled = ["--labeled-ratio", "1"]
        else:
            # keep a copy of the selection inside the cell so the run folder is self-describing
            target = run_dir / "selection"
            if not target.is_dir() or self.force:
                shutil.copytree(selection / "selection", target, dirs_exist_ok=True)
            labelled = ["--selection", str(target)]
        resume = (run_dir / "checkpoints" / "latest.pt").is_file() and not self.force
        self._call(
            [
                "train",
                *self._dataset_flags(),
                "--method",
                cell.method,
                *labelled,
                "--seed",
                str(cell.seed),
                "--out",
                str(run_dir),
                *to_flags(self.spec.train),
                *(["--resume"] if resume else []),
                *(["--force"] if self.force else []),
            ]
        )
        if not state.is_done("train"):
            raise ConfigError(
                f"training in {run_dir} stopped before its last iteration; run the same "
                "'als4gan run' again to resume it"
            )
        return run_dir

    def evaluate(self, run_dir: Path) -> dict[str, Any]:
        """Evaluate the run's best (validation-chosen) checkpoint on the test split."""
        options = dict(self.spec.evaluate)
        split = str(options.pop("split", "test"))
        metrics_file = run_dir / "eval" / split / "metrics.json"
        if not (RunDir(run_dir).is_done(f"evaluate:{split}") and metrics_file.is_file()) or (
            self.force
        ):
            self._call(
                [
                    "evaluate",
                    "--checkpoint",
                    str(run_dir),
                    *self._dataset_flags(),
                    "--split",
                    split,
                    *to_flags(options),
                    *(["--force"] if self.force else []),
                ]
            )
        metrics = read_json(metrics_file)
        if not isinstance(metrics, dict):
            raise ConfigError(f"{metrics_file} is not a metrics mapping")
        return metrics

    def tidy(self, run_dir: Path) -> int:
        """Delete what no later stage reads from a trained and evaluated cell.

        That is ``checkpoints/latest.pt``: the resume state (network, discriminator and
        optimiser states), the largest file of a run. A finished cell is never resumed (it is
        skipped), and evaluation and the report read ``best.pt``. Nothing is deleted with
        ``keep_checkpoints`` or before the cell's training is marked done.

        Returns:
            The number of bytes freed.
        """
        if self.keep_checkpoints or not RunDir(run_dir).is_done("train"):
            return 0
        latest = run_dir / "checkpoints" / "latest.pt"
        if not (latest.is_file() and (run_dir / "checkpoints" / "best.pt").is_file()):
            return 0
        size = latest.stat().st_size
        latest.unlink()
        LOGGER.debug("removed %s (%.0f MB; --keep-checkpoints keeps it)", latest, size / 1e6)
        return size

    def _check_same_settings(self) -> None:
        """Refuse to mix cells made with other settings into this experiment's folder.

        Finished cells are reused as they are, so a change of the dataset, selection, training
        or evaluation settings would silently compare old and new cells. Growing or shrinking
        the grid (strategies, ratios, seeds, methods) is fine.

        Raises:
            ConfigError: If ``experiment.yaml`` in the output folder records other settings.
        """
        previous_file = self.out / "experiment.yaml"
        if not previous_file.is_file():
            return
        previous = read_yaml(previous_file)
        if not isinstance(previous, dict):
            return
        current = _normalise(_spec_to_dict(self.spec))
        changed = [
            f"{section}: {_describe_change(previous.get(section), current[section])}"
            for section in ("dataset", "select", "train", "evaluate")
            if previous.get(section) != current[section]
        ]
        if changed:
            raise ConfigError(
                f"{previous_file} records other settings than this config "
                f"({'; '.join(changed)}); its finished cells would be reused with the old "
                "settings. Use another 'out' folder, or --force to redo every cell."
            )

    # ---------------------------------------------------------------- whole grid
    def run(
        self, progress_callback: Callable[[int, int, Cell], None] | None = None
    ) -> dict[str, Any]:
        """Run every cell, then write the results table and the report.

        Returns:
            ``{"rows": summary rows, "comparisons": paired comparisons, "markdown": text,
            "results_md": path, "results_csv": path, "report": path}``.
        """
        started = time.monotonic()
        check_stage_sections(self.spec, self.spec.name)
        cells = expand_grid(self.spec.grid)  # refuses repeated seeds before anything runs
        self.out.mkdir(parents=True, exist_ok=True)
        if not self.force:
            self._check_same_settings()
        self.prepare()  # first: a missing dataset must not leave an experiment.yaml behind
        write_yaml(self.out / "experiment.yaml", _spec_to_dict(self.spec))
        results: list[CellResult] = []
        for index, cell in enumerate(cells):
            if progress_callback is not None:
                progress_callback(index, len(cells), cell)
            selection = None if cell.is_reference else self.select(cell)
            run_dir = self.train(cell, selection)
            metrics = self.evaluate(run_dir)
            self.tidy(run_dir)
            if not is_finite(metrics.get("miou")):
                raise ConfigError(f"{run_dir}: test mIoU is not a number ({metrics.get('miou')})")
            best_val = RunDir(run_dir).status().get("train", {}).get("best_miou")
            results.append(
                CellResult(
                    cell,
                    float(metrics["miou"]),
                    metrics.get("pixel_accuracy"),
                    str(run_dir),
                    float(best_val) if is_finite(best_val) else None,
                )
            )
        rows = summarize(results)
        comparisons = paired_comparisons(results)
        title = f"{self.spec.name}: test mIoU"
        markdown = results_markdown(rows, title, comparisons)
        atomic_write_text(self.out / RESULTS_MD, markdown)
        atomic_write_text(self.out / RESULTS_CSV, results_csv(rows))
        atomic_write_text(self.out / COMPARISONS_CSV, comparisons_csv(comparisons))
        write_json(self.out / COMPARISONS_JSON, {"comparisons": comparisons})
        write_json(
            self.out / "results.json",
            {
                "rows": rows,
                "comparisons": comparisons,
                "cells": [
                    {
                        **result.cell.__dict__,
                        "miou": result.miou,
                        "val_miou": result.val_miou,
                        "run_dir": result.run_dir,
                    }
                    for result in results
                ],
                "seconds": round(time.monotonic() - started, 1),
            },
        )
        report = self.out / REPORT_HTML
        if self.spec.report:
            self._call(
                [
                    "report",
                    *[r.run_dir for r in results],
                    "--out",
                    str(report),
                    "--title",
                    f"{self.spec.name}: {len(results)} runs",
                ]
            )
        return {
            "rows": rows,
            "comparisons": comparisons,
            "markdown": markdown,
            "results_md": self.out / RESULTS_MD,
            "results_csv": self.out / RESULTS_CSV,
            "report": report if self.spec.report else None,
        }


def _normalise(value: Any) -> Any:
    """``value`` as YAML gives it back (tuples become lists, paths strings)."""
    import yaml

    return yaml.safe_load(yaml.safe_dump(value, default_flow_style=False))


def _describe_change(old: Any, new: Any) -> str:
    """``"crop_size 256 -> 128"`` for the keys of two mappings that differ."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return f"{old!r} -> {new!r}"
    keys = sorted(set(old) | set(new), key=str)
    return ", ".join(
        f"{key} {old.get(key, '(unset)')} -> {new.get(key, '(unset)')}"
        for key in keys
        if old.get(key) != new.get(key)
    )


def _spec_to_dict(spec: ExperimentSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "out": str(spec.out_dir),
        "dataset": {
            "name": spec.dataset.name,
            "root": str(spec.root_dir),
            "prepare": spec.dataset.prepare,
            "options": spec.dataset.options,
        },
        "grid": {
            "strategies": spec.grid.strategies,
            "ratios": spec.grid.ratios,
            "seeds": spec.grid.seeds,
            "methods": spec.grid.methods,
            "reference": spec.grid.reference,
        },
        "select": spec.select,
        "train": spec.train,
        "evaluate": spec.evaluate,
        "report": spec.report,
    }


__all__ = [
    "Cell",
    "CellResult",
    "ExperimentRunner",
    "ExperimentSpec",
    "comparison_sentence",
    "comparisons_csv",
    "comparisons_markdown",
    "expand_grid",
    "load_experiment",
    "paired_comparisons",
    "reference_cell",
    "results_csv",
    "results_markdown",
    "summarize",
    "to_flags",
]
