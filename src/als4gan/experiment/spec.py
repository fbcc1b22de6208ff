"""An experiment's YAML: dataset, grid (strategies x ratios x seeds x methods), stage sections.

:func:`read_experiment` reads and checks the file; :func:`expand_grid` lists its cells. The
stage sections stay mappings here; :mod:`als4gan.experiment.plan` turns them into typed stage
configs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from als4gan.errors import ConfigError
from als4gan.io import read_yaml

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
    """A whole experiment: dataset, grid and the options of each stage.

    Attributes:
        name: Experiment name (shown in tables and the report).
        out: Output folder (relative to the current directory unless absolute).
        dataset: Data location and preparation.
        grid: Strategies x ratios x seeds x methods.
        select: Options of ``als4gan select`` (names as in ``--help``, ``-`` or ``_``).
        train: Options of ``als4gan train``.
        evaluate: Options of ``als4gan evaluate`` (``split`` defaults to ``test``).
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


def _unknown(keys: Mapping[str, Any], known: set[str], where: str) -> None:
    from als4gan.config import did_you_mean

    unknown = sorted(str(key) for key in set(keys) - known)
    if unknown:
        raise ConfigError(
            f"{where}{', '.join(unknown)}{did_you_mean(unknown[0], known)}; "
            f"valid: {', '.join(sorted(known))}"
        )


def _parse_dataset(data: Mapping[str, Any], source: str) -> DatasetSpec:
    where = f"{source}: dataset"
    prepare = data.get("prepare")
    options = data.get("options") or {}
    if prepare is not None and not isinstance(prepare, dict):
        raise ConfigError(f"{where}.prepare must be a mapping (kind: ..., src: ..., ...)")
    if not isinstance(options, dict):
        raise ConfigError(f"{where}.options must be a mapping (classes_file, bands)")
    return DatasetSpec(
        name=str(_require(data, "name", where)),
        root=str(_require(data, "root", where)),
        prepare=dict(prepare) if prepare is not None else None,
        options=dict(options),
    )


def _parse_grid(data: Mapping[str, Any], source: str) -> GridSpec:
    _unknown(
        data,
        {"strategies", "ratios", "seeds", "methods", "reference"},
        f"{source}: unknown grid key(s) ",
    )
    reference = data.get("reference", True)
    if not isinstance(reference, bool):
        raise ConfigError(f"{source}: grid.reference must be true or false, got {reference!r}")
    where = f"{source}: grid"
    grid = GridSpec(
        strategies=[str(s) for s in _as_list(_require(data, "strategies", where))],
        ratios=[float(r) for r in _as_list(_require(data, "ratios", where))],
        seeds=[int(s) for s in _as_list(data.get("seeds", [0]))],
        methods=[str(m) for m in _as_list(data.get("methods", list(DEFAULT_METHODS)))],
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
    return grid


def parse_experiment(data: Mapping[str, Any], source: str, base_dir: Path) -> ExperimentSpec:
    """Validate a loaded YAML mapping into an :class:`ExperimentSpec`.

    The stage sections are only checked to be mappings here;
    :func:`~als4gan.experiment.plan.load_experiment` and :meth:`ExperimentRunner.run` check
    their options (:func:`check_stage_sections`).

    Raises:
        ConfigError: On unknown or missing keys and invalid values (the message names them).
    """
    known = {"name", "out", "dataset", "grid", "select", "train", "evaluate", "report"}
    _unknown(data, known, f"{source}: unknown key(s) ")
    dataset_data = _require(data, "dataset", source)
    grid_data = _require(data, "grid", source)
    if not isinstance(dataset_data, dict) or not isinstance(grid_data, dict):
        raise ConfigError(f"{source}: 'dataset' and 'grid' must be mappings")
    dataset = _parse_dataset(dataset_data, source)
    grid = _parse_grid(grid_data, source)
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


def read_experiment(path: str | Path, data_root: str | None = None) -> ExperimentSpec:
    """Read an experiment YAML file and check its dataset and grid (not the stage sections).

    :func:`als4gan.experiment.plan.load_experiment` also checks the stage sections.

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
    return spec


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
