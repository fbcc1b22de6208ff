"""Experiment grids from one YAML config: prepare -> select -> train -> evaluate -> report.

A grid is strategies x labelled ratios x seeds x methods. Modules:

- :mod:`~als4gan.experiment.spec`: the YAML (dataset, grid, stage sections) and its cells;
- :mod:`~als4gan.experiment.plan`: every cell's typed stage configs, built and checked before
  the first stage runs;
- :mod:`~als4gan.experiment.runner`: runs the cells through the stage functions of
  :mod:`als4gan.api`, skipping finished stages and resuming an interrupted one;
- :mod:`~als4gan.experiment.results`: summaries over seeds, paired comparisons, tables.

``spec`` and ``results`` only read and summarise (the report uses them); ``plan`` and
``runner``, which drive the stages, are loaded on first use of one of their names, so that
reading results never imports the code that produces them.
"""

from typing import Any

from als4gan.errors import ConfigError
from als4gan.experiment.results import (
    ONE_SEED_NOTE,
    CellResult,
    comparison_label,
    comparison_sentence,
    comparisons_csv,
    comparisons_markdown,
    is_finite,
    paired_comparisons,
    results_csv,
    results_markdown,
    summarize,
)
from als4gan.experiment.spec import (
    CELLS_DIR,
    COMPARISONS_CSV,
    COMPARISONS_JSON,
    DEFAULT_METHODS,
    METHODS,
    REFERENCE_METHOD,
    REFERENCE_STRATEGY,
    REPORT_HTML,
    RESULTS_CSV,
    RESULTS_MD,
    SELECTIONS_DIR,
    Cell,
    DatasetSpec,
    ExperimentSpec,
    GridSpec,
    _normalise,
    _spec_to_dict,
    check_grid,
    expand_grid,
    parse_experiment,
    ratio_tag,
    read_experiment,
    reference_cell,
)

__all__ = [
    "CELLS_DIR",
    "COMPARISONS_CSV",
    "COMPARISONS_JSON",
    "DEFAULT_METHODS",
    "GRID_OWNED",
    "METHODS",
    "ONE_SEED_NOTE",
    "REFERENCE_METHOD",
    "REFERENCE_STRATEGY",
    "REPORT_HTML",
    "RESULTS_CSV",
    "RESULTS_MD",
    "SELECTIONS_DIR",
    "Cell",
    "CellPlan",
    "CellResult",
    "ConfigError",
    "DatasetSpec",
    "ExperimentResult",
    "ExperimentRunner",
    "ExperimentSpec",
    "GridSpec",
    "Stages",
    "_normalise",
    "_spec_to_dict",
    "check_grid",
    "check_stage_sections",
    "comparison_label",
    "comparison_sentence",
    "comparisons_csv",
    "comparisons_markdown",
    "expand_grid",
    "is_finite",
    "load_experiment",
    "paired_comparisons",
    "parse_experiment",
    "plan_cells",
    "ratio_tag",
    "read_experiment",
    "reference_cell",
    "results_csv",
    "results_markdown",
    "summarize",
]

#: Names of the modules that run stages, loaded lazily (see the module docstring).
_LAZY = {
    "GRID_OWNED": "plan",
    "CellPlan": "plan",
    "check_stage_sections": "plan",
    "plan_cells": "plan",
    "load_experiment": "plan",
    "ExperimentResult": "runner",
    "ExperimentRunner": "runner",
    "Stages": "runner",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f"als4gan.experiment.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'als4gan.experiment' has no attribute {name!r}")
