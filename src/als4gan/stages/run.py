"""The whole-grid stage: an experiment YAML (or mapping) run cell by cell."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from als4gan.config import option
from als4gan.stages import releasing_folders

if TYPE_CHECKING:
    from als4gan.experiment import Cell, ExperimentResult, ExperimentSpec


@dataclass
class RunConfig:
    """Options of ``als4gan run`` (besides the experiment itself)."""

    out: str | None = option(None, "output folder (overrides the experiment's 'out')")
    force: bool = option(False, "redo finished stages instead of skipping them")
    keep_checkpoints: bool = option(
        False, "keep every cell's checkpoints/latest.pt (resume state) after it is evaluated"
    )
    data_root: str | None = option(None, "folder holding the datasets: the value of ALS4GAN_DATA")


def load_spec(
    experiment: str | Path | Mapping[str, Any] | ExperimentSpec, config: RunConfig
) -> ExperimentSpec:
    """The experiment as a checked :class:`ExperimentSpec` (a file, a mapping, or a spec).

    Raises:
        ConfigError: If the experiment is invalid (any stage section included).
    """
    from als4gan.experiment import (
        ExperimentSpec,
        check_stage_sections,
        load_experiment,
        parse_experiment,
    )

    if isinstance(experiment, ExperimentSpec):
        spec = experiment
    elif isinstance(experiment, Mapping):
        spec = parse_experiment(experiment, "experiment", Path.cwd())
    else:
        spec = load_experiment(experiment, data_root=config.data_root)
    if config.out:
        spec.out = str(Path(config.out).resolve())
    check_stage_sections(spec, spec.name)
    return spec


@releasing_folders()
def run(
    experiment: str | Path | Mapping[str, Any] | ExperimentSpec,
    config: RunConfig | None = None,
    *,
    on_cell: Callable[[int, int, Cell], None] | None = None,
    echo: Callable[[str], None] | None = print,
) -> ExperimentResult:
    """Run a whole grid: prepare (when needed), then select, train, evaluate, report per cell.

    Every cell's stage configs are built and checked before the first stage runs. Finished
    stages are skipped and an interrupted one resumes, so the same call can be repeated.

    Args:
        experiment: An experiment YAML file, the same as a mapping, or a parsed spec.
        config: Output folder, ``force``, ``keep_checkpoints``, ``data_root``.
        on_cell: Called as ``on_cell(index, total, cell)`` before each cell.
        echo: Where each stage's one-line summary goes (``None``: nowhere).

    Returns:
        The summary rows, paired comparisons, tables and report path.

    Raises:
        ConfigError: For an invalid experiment (before anything runs), another experiment's
            settings in the output folder, or a failed stage (naming it and its folder).
    """
    from als4gan.experiment import ExperimentRunner
    from als4gan.runlock import claim_folder

    config = config or RunConfig()
    spec = load_spec(experiment, config)
    claim_folder(spec.out_dir)
    runner = ExperimentRunner(
        spec, force=config.force, keep_checkpoints=config.keep_checkpoints, echo=echo
    )
    return runner.run(on_cell)
