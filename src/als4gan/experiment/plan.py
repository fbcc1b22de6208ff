"""Typed stage configs of every cell of a grid, built (and so checked) before any stage runs.

A grid's ``select``, ``train`` and ``evaluate`` sections hold the options of those stages; the
grid and the dataset section set the rest per cell (seed, strategy, ratio, method, data and
run folders). :func:`plan_cells` combines them into a :class:`SelectConfig`,
:class:`TrainConfig` and :class:`EvaluateConfig` per cell with
:func:`als4gan.config.build_config`, which checks names, types, choices and each config's
``validate()`` the way the command line does, so a typo in ``train:`` fails in a second, not
after hours of selections.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from als4gan.errors import ConfigError
from als4gan.experiment.spec import (
    CELLS_DIR,
    SELECTIONS_DIR,
    Cell,
    ExperimentSpec,
    expand_grid,
    read_experiment,
)

if TYPE_CHECKING:
    from als4gan.active.config import SelectConfig
    from als4gan.stages.evaluate import EvaluateConfig
    from als4gan.train.config import TrainConfig

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

#: Options of a stage section that are not fields of the stage's config (run-folder options).
SECTION_EXTRAS: dict[str, frozenset[str]] = {
    "select": frozenset({"oracle", "initial"}),
    "train": frozenset(),
    "evaluate": frozenset({"image_max"}),
}

#: Dataset options (``dataset.options``) every stage takes.
DATASET_OPTIONS = ("classes_file", "bands")


@dataclass
class CellPlan:
    """The stage configs of one cell.

    Attributes:
        cell: The cell.
        select: Selection config (``None`` for a reference cell: no selection).
        select_options: ``oracle``/``initial`` of the ``select`` section.
        train: Training config of a fresh run.
        train_given: The training options the grid gives (what a resumed run may not change,
            but for the allowed ones).
        evaluate: Evaluation config.
        evaluate_options: Dataset options of the evaluation.
    """

    cell: Cell
    select: SelectConfig | None
    train: TrainConfig
    train_given: dict[str, Any]
    evaluate: EvaluateConfig
    select_options: dict[str, Any] = field(default_factory=dict)
    evaluate_options: dict[str, Any] = field(default_factory=dict)


def _names(options: Mapping[str, Any]) -> dict[str, str]:
    """Section key -> option name (``crop-size`` = ``crop_size``)."""
    return {str(key): str(key).replace("-", "_") for key in options}


def _split_section(
    stage: str, options: Mapping[str, Any], fields: set[str], where: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``options`` as (config fields, run-folder extras); refuses options the grid sets."""
    from als4gan.config import check_keys

    names = _names(options)
    owned = sorted(key for key, name in names.items() if name in GRID_OWNED[stage])
    if owned:
        raise ConfigError(
            f"{where} sets {', '.join(owned)}, which the experiment sets for every cell "
            "(grid: strategies, ratios, seeds, methods; dataset: name, root, options; "
            "folders: out). Remove them from the section; change the grid or dataset instead."
        )
    extras = SECTION_EXTRAS[stage]
    check_keys(names.values(), (fields | extras) - GRID_OWNED[stage], where)
    config = {names[key]: value for key, value in options.items() if names[key] not in extras}
    extra = {names[key]: value for key, value in options.items() if names[key] in extras}
    return config, extra


def _dataset_base(spec: ExperimentSpec, where: str) -> dict[str, Any]:
    from als4gan.config import check_keys

    options = {key.replace("-", "_"): value for key, value in spec.dataset.options.items()}
    check_keys(options, DATASET_OPTIONS, f"{where}: dataset.options")
    return {"dataset": spec.dataset.name, "root": str(spec.root_dir), **options}


def _fields(config_cls: type[Any]) -> set[str]:
    import dataclasses

    return {item.name for item in dataclasses.fields(config_cls)}


def plan_cells(spec: ExperimentSpec, source: str | None = None) -> list[CellPlan]:
    """Every cell's stage configs, in the order the cells run.

    Raises:
        ConfigError: On the first invalid option, naming the section, the option and what is
            allowed (before any stage runs).
    """
    from als4gan.active.config import SelectConfig
    from als4gan.config import build_config
    from als4gan.stages.evaluate import EvaluateConfig
    from als4gan.train.config import TrainConfig

    source = source or spec.name
    select_section, select_extra = _split_section(
        "select", spec.select, _fields(SelectConfig), f"{source}: section 'select'"
    )
    train_section, _ = _split_section(
        "train", spec.train, _fields(TrainConfig), f"{source}: section 'train'"
    )
    evaluate_section, evaluate_extra = _split_section(
        "evaluate", spec.evaluate, _fields(EvaluateConfig), f"{source}: section 'evaluate'"
    )
    _check_extras(select_extra, evaluate_extra, source)
    data = _dataset_base(spec, source)
    evaluate = build_config(EvaluateConfig, evaluate_section, f"{source}: section 'evaluate'")
    evaluate_options = {k: v for k, v in data.items() if k in DATASET_OPTIONS}
    evaluate_options.update(evaluate_extra)
    out = spec.out_dir
    plans = []
    for cell in expand_grid(spec.grid):
        select = None
        if not cell.is_reference:
            select_base = {
                **data,
                "split": "train",
                "labeled_ratio": float(f"{cell.ratio:g}"),  # as the command line read it
                "strategy": cell.strategy,
                "seed": cell.seed,
                # pretrained embeddings (typiclust, probcover) computed once for all cells
                "embedding_cache": str(out / "embeddings"),
            }
            where = f"{source}: section 'select'"
            select = build_config(SelectConfig, select_section, where, base=select_base)
        labelled: dict[str, Any] = (
            {"labeled_ratio": 1.0}
            if cell.is_reference
            else {"selection": str(out / CELLS_DIR / cell.name / "selection")}
        )
        base = {**data, "method": cell.method, **labelled, "seed": cell.seed}
        where = f"{source}: section 'train'"
        train = build_config(TrainConfig, train_section, where, base=base)
        given = {name: getattr(train, name) for name in {**base, **train_section}}
        plans.append(CellPlan(cell, select, train, given, evaluate, select_extra, evaluate_options))
    return plans


def _check_extras(select: Mapping[str, Any], evaluate: Mapping[str, Any], source: str) -> None:
    """Check the run-folder options of the sections (``oracle``, ``image_max``)."""
    from als4gan.argtypes import check_image_max
    from als4gan.stages.select import ORACLES

    oracle = select.get("oracle", "masks")
    if oracle not in ORACLES:
        raise ConfigError(
            f"{source}: section 'select': argument --oracle: invalid choice: {oracle!r}; "
            f"choose from {', '.join(ORACLES)}"
        )
    if "image_max" in evaluate:
        check_image_max(evaluate["image_max"], f"{source}: section 'evaluate': image_max")


def check_stage_sections(spec: ExperimentSpec, source: str) -> None:
    """Check every stage section against the real options of its stage, before any stage runs.

    Each cell's configs are built as the run builds them (names, types, choices, and each
    config's own checks), so a typo in ``train:`` is reported before hours of selections.

    Raises:
        ConfigError: On an unknown option, a value of the wrong type, or an option the grid
            sets itself (the seed, strategy, ratio, method, data and output folders).
    """
    from als4gan.stages.prepare import prepare_config

    if spec.dataset.prepare:
        prepare = {"kind": spec.dataset.name, **spec.dataset.prepare, "out": str(spec.root_dir)}
        prepare_config(prepare, f"{source}: dataset.prepare")
    plan_cells(spec, source)


def selection_dir(spec: ExperimentSpec, cell: Cell) -> Path:
    """Run folder of the selection shared by ``cell``'s methods."""
    return spec.out_dir / SELECTIONS_DIR / cell.selection_key


def cell_dir(spec: ExperimentSpec, cell: Cell) -> Path:
    """Run folder of ``cell``."""
    return spec.out_dir / CELLS_DIR / cell.name


def load_experiment(path: str | Path, data_root: str | None = None) -> ExperimentSpec:
    """Read and validate an experiment YAML file, its stage sections included.

    ``dataset.root`` and ``dataset.prepare.src`` may use ``${ALS4GAN_DATA:-default}``-style
    variables (:mod:`als4gan.datapaths`); ``data_root`` (``--data-root``) overrides
    ``$ALS4GAN_DATA``.

    Raises:
        ConfigError: If the file is missing or invalid.
    """
    spec = read_experiment(path, data_root)
    check_stage_sections(spec, str(path))
    return spec
