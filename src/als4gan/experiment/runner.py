"""Run a grid: prepare -> select -> train -> evaluate per cell, then the tables and the report.

Each (strategy, ratio, seed) selection is computed once and shared by the methods trained on it
(the selection does not depend on the method); each cell (selection + method) is its own run
folder. Every cell's stage configs are built and checked before the first stage runs
(:mod:`als4gan.experiment.plan`); the stages are the functions of :mod:`als4gan.api`. Finished
stages are skipped (their run folders record completion) and an interrupted one resumes.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from als4gan.errors import Als4ganError, ConfigError
from als4gan.experiment.plan import CellPlan, cell_dir, plan_cells, selection_dir
from als4gan.experiment.results import (
    CellResult,
    comparisons_csv,
    is_finite,
    paired_comparisons,
    results_csv,
    results_markdown,
    summarize,
)
from als4gan.experiment.spec import (
    COMPARISONS_CSV,
    COMPARISONS_JSON,
    REPORT_HTML,
    RESULTS_CSV,
    RESULTS_MD,
    Cell,
    ExperimentSpec,
    _describe_change,
    _normalise,
    _spec_to_dict,
)
from als4gan.io import RunDir, atomic_write_text, read_json, read_yaml, write_json, write_yaml

LOGGER = logging.getLogger("als4gan.experiment")


class Stages:
    """The stage functions a runner calls; a test replaces them with fakes (same signatures)."""

    def prepare(self, config: Any) -> Any:
        """:func:`als4gan.api.prepare`."""
        from als4gan.stages.prepare import prepare

        return prepare(config)

    def select(self, config: Any, out: Path, **options: Any) -> Any:
        """:func:`als4gan.api.select`."""
        from als4gan.stages.select import select

        return select(config, out, **options)

    def train(self, config: Any, out: Path, *, resume: bool, force: bool) -> Any:
        """:func:`als4gan.api.train`."""
        from als4gan.stages.train import train

        return train(config, out, resume=resume, force=force)

    def resumed_config(self, out: Path, given: dict[str, Any]) -> Any:
        """:func:`als4gan.stages.train.resumed_config`."""
        from als4gan.stages.train import resumed_config

        return resumed_config(out, given)

    def evaluate(self, checkpoint: Path, config: Any, **options: Any) -> Any:
        """:func:`als4gan.api.evaluate`."""
        from als4gan.stages.evaluate import evaluate

        return evaluate(checkpoint, config, **options)

    def report(self, runs: list[str], out: Path, config: Any) -> Any:
        """:func:`als4gan.api.report`."""
        from als4gan.stages.report import report

        return report(runs, out, config)


@dataclass
class ExperimentResult:
    """A finished grid (also readable as a mapping: ``result["rows"]``).

    Attributes:
        rows: Summary rows (:func:`summarize`).
        comparisons: Paired comparisons (:func:`paired_comparisons`).
        markdown: Both as Markdown tables.
        results_md: ``results.md``.
        results_csv: ``results.csv``.
        report: ``report.html`` (``None`` when the config turns the report off).
        cells: Each cell's test mIoU and run folder.
    """

    rows: list[dict[str, Any]]
    comparisons: list[dict[str, Any]]
    markdown: str
    results_md: Path
    results_csv: Path
    report: Path | None
    cells: list[CellResult] = field(default_factory=list)

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)


class ExperimentRunner:
    """Runs the cells of an experiment in order, skipping finished stages.

    Args:
        spec: The experiment.
        stages: The stage functions (default: the real ones, :class:`Stages`).
        force: Redo finished stages.
        keep_checkpoints: Keep each cell's ``checkpoints/latest.pt`` (the resume state) after
            the cell is trained and evaluated; by default it is deleted then, since nothing
            later reads it (``best.pt``, which evaluation and the report use, stays).
        echo: Where each stage's one-line summary goes (default: printed).
    """

    def __init__(
        self,
        spec: ExperimentSpec,
        stages: Stages | None = None,
        force: bool = False,
        keep_checkpoints: bool = False,
        echo: Callable[[str], None] | None = print,
    ) -> None:
        self.spec = spec
        self.stages = stages or Stages()
        self.force = force
        self.keep_checkpoints = keep_checkpoints
        self.echo = echo
        self.out = spec.out_dir

    # ---------------------------------------------------------------- helpers
    def _stage(self, name: str, target: Path, call: Callable[[], Any]) -> Any:
        """Run one stage; a failure names the stage and its folder."""
        LOGGER.info("als4gan %s: %s", name, target)
        try:
            result = call()
        except Als4ganError as err:
            raise ConfigError(
                f"stage failed (als4gan {name} in {target}): {err}. Fix the cause and run the "
                "same 'als4gan run' again: finished stages are kept."
            ) from err
        message = getattr(result, "message", "")
        if message and self.echo is not None:
            self.echo(message)
        return result

    def selection_dir(self, cell: Cell) -> Path:
        """Run folder of the selection shared by ``cell``'s methods."""
        return selection_dir(self.spec, cell)

    def cell_dir(self, cell: Cell) -> Path:
        """Run folder of ``cell``."""
        return cell_dir(self.spec, cell)

    # ---------------------------------------------------------------- stages
    def prepare(self) -> None:
        """Prepare the dataset when its root has no split files yet."""
        from als4gan.stages.prepare import prepare_config

        root = self.spec.root_dir
        if (root / "splits" / "train.txt").is_file():
            return
        prepare = dict(self.spec.dataset.prepare or {})
        if not prepare:
            raise ConfigError(
                f"dataset root {root} has no splits/train.txt and the config has no "
                "dataset.prepare section: run 'als4gan prepare' first or add one."
            )
        prepare.setdefault("kind", self.spec.dataset.name)
        if "src" in prepare:
            prepare["src"] = str(self.spec.path(str(prepare["src"])))
            if not Path(prepare["src"]).exists():
                from als4gan.datapaths import missing_data_message

                raise ConfigError(
                    missing_data_message(
                        prepare["src"], "dataset.prepare.src", self.spec.dataset.variable_src
                    )
                )
        config = prepare_config({**prepare, "out": str(root)}, "dataset.prepare")
        self._stage("prepare", root, lambda: self.stages.prepare(config))

    def select(self, plan: CellPlan) -> Path:
        """Run (or reuse) the selection of ``plan``'s cell; returns its run folder."""
        run_dir = self.selection_dir(plan.cell)
        if RunDir(run_dir).is_done("select") and not self.force:
            return run_dir
        options = {"force": self.force, **plan.select_options}
        self._stage("select", run_dir, lambda: self.stages.select(plan.select, run_dir, **options))
        return run_dir

    def train(self, plan: CellPlan, selection: Path | None) -> Path:
        """Train ``plan``'s cell on its selection, resuming an interrupted run.

        ``selection`` is ``None`` for a reference cell, which is trained on every training
        image (labelled ratio 1) with the same training settings as the other cells.
        """
        run_dir = self.cell_dir(plan.cell)
        state = RunDir(run_dir)
        if state.is_done("train") and not self.force:
            return run_dir
        if selection is not None:
            # keep a copy of the selection inside the cell so the run folder is self-describing
            target = run_dir / "selection"
            if not target.is_dir() or self.force:
                shutil.copytree(selection / "selection", target, dirs_exist_ok=True)
        resume = (run_dir / "checkpoints" / "latest.pt").is_file() and not self.force

        def call() -> Any:
            config = self.stages.resumed_config(run_dir, plan.train_given) if resume else plan.train
            return self.stages.train(config, run_dir, resume=resume, force=self.force)

        self._stage("train", run_dir, call)
        if not state.is_done("train"):
            raise ConfigError(
                f"training in {run_dir} stopped before its last iteration; run the same "
                "'als4gan run' again to resume it"
            )
        return run_dir

    def evaluate(self, plan: CellPlan, run_dir: Path) -> dict[str, Any]:
        """Evaluate the run's best (validation-chosen) checkpoint on the test split."""
        config = plan.evaluate
        metrics_file = run_dir / "eval" / config.split_name / "metrics.json"
        done = RunDir(run_dir).is_done(f"evaluate:{config.split_name}") and metrics_file.is_file()
        if not done or self.force:
            options = {
                "dataset": self.spec.dataset.name,
                "root": str(self.spec.root_dir),
                "dataset_options": plan.evaluate_options,
                "force": self.force,
            }
            self._stage(
                "evaluate", run_dir, lambda: self.stages.evaluate(run_dir, config, **options)
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
    def run_cell(self, plan: CellPlan) -> CellResult:
        """Select (or reuse), train, evaluate and tidy one cell."""
        selection = None if plan.cell.is_reference else self.select(plan)
        run_dir = self.train(plan, selection)
        metrics = self.evaluate(plan, run_dir)
        self.tidy(run_dir)
        if not is_finite(metrics.get("miou")):
            raise ConfigError(f"{run_dir}: test mIoU is not a number ({metrics.get('miou')})")
        best_val = RunDir(run_dir).status().get("train", {}).get("best_miou")
        return CellResult(
            plan.cell,
            float(metrics["miou"]),
            metrics.get("pixel_accuracy"),
            str(run_dir),
            float(best_val) if is_finite(best_val) else None,
        )

    def cells(self) -> Iterator[CellPlan]:
        """The cells' plans, every config built and checked (nothing runs)."""
        yield from plan_cells(self.spec)

    def run(
        self, progress_callback: Callable[[int, int, Cell], None] | None = None
    ) -> ExperimentResult:
        """Check every cell's configs, run every cell, then write the tables and the report.

        Raises:
            ConfigError: For an invalid config (before anything runs), other settings than
                the output folder's finished cells, or a failed stage (naming it).
        """
        started = time.monotonic()
        plans = list(self.cells())  # checks every config; refuses repeated seeds
        self.out.mkdir(parents=True, exist_ok=True)
        if not self.force:
            self._check_same_settings()
        self.prepare()  # first: a missing dataset must not leave an experiment.yaml behind
        write_yaml(self.out / "experiment.yaml", _spec_to_dict(self.spec))
        results: list[CellResult] = []
        for index, plan in enumerate(plans):
            if progress_callback is not None:
                progress_callback(index, len(plans), plan.cell)
            results.append(self.run_cell(plan))
        outcome = self._write_results(results, time.monotonic() - started)
        if self.spec.report:
            from als4gan.stages.report import ReportConfig

            runs = [result.run_dir for result in results]
            config = ReportConfig(title=f"{self.spec.name}: {len(results)} runs")
            report = self.out / REPORT_HTML
            self._stage("report", report, lambda: self.stages.report(runs, report, config))
            outcome.report = report
        return outcome

    def _write_results(self, results: list[CellResult], seconds: float) -> ExperimentResult:
        """Write results.md/.csv/.json and comparisons.csv/.json."""
        rows = summarize(results)
        comparisons = paired_comparisons(results)
        markdown = results_markdown(rows, f"{self.spec.name}: test mIoU", comparisons)
        atomic_write_text(self.out / RESULTS_MD, markdown)
        atomic_write_text(self.out / RESULTS_CSV, results_csv(rows))
        atomic_write_text(self.out / COMPARISONS_CSV, comparisons_csv(comparisons))
        write_json(self.out / COMPARISONS_JSON, {"comparisons": comparisons})
        cells = [
            {
                **result.cell.__dict__,
                "miou": result.miou,
                "val_miou": result.val_miou,
                "run_dir": result.run_dir,
            }
            for result in results
        ]
        write_json(
            self.out / "results.json",
            {
                "rows": rows,
                "comparisons": comparisons,
                "cells": cells,
                "seconds": round(seconds, 1),
            },
        )
        return ExperimentResult(
            rows,
            comparisons,
            markdown,
            self.out / RESULTS_MD,
            self.out / RESULTS_CSV,
            None,
            results,
        )
