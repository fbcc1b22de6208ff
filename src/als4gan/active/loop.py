"""The selection loop: initial random set, then rounds of refit -> score the pool -> label the top.

Everything a later stage or a user needs is written to ``RUN_DIR/selection/``:

* ``labeled.txt`` / ``unlabeled.txt``: ids, one per line (labelled in selection order: the
  initial set, then each round's picks by rank; unlabelled in pool order);
* ``selection.json``: budget arithmetic, config, and per round the ids chosen, their scores,
  strategy, seed, model and class histogram (deterministic: no wall times in it);
* ``config.yaml``: the resolved options (usable with ``--config``);
* ``contact_sheet.png``: the chosen images beside their colourised masks;
* ``labeled_names.npy``: the reference code's list of names (numpy unicode array);
* ``state.json`` (+ ``acquisition_round<r>.pt`` while running): resume state, saved
  atomically after every round; ``timing.json``: wall times.

The oracle that labels the chosen images is the only difference between simulation
(``--oracle masks``: the pool's masks are read) and annotation by a person (``--oracle human``:
the run stops with status ``waiting`` and an annotation package, see
:mod:`als4gan.active.package`, and continues from the saved state when run again).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from als4gan.active.acquisition import ACQUISITION_MODELS, AcquisitionModel
from als4gan.active.budget import BudgetPlan, exact_fraction, plan_budget
from als4gan.active.config import SelectConfig, resolve_select_config
from als4gan.active.oracle import ORACLES
from als4gan.active.outputs import (
    CONFIG_FILE,
    LABELED_FILE,
    MODEL_STATE,
    NAMES_FILE,
    SELECTION_DIR,
    SELECTION_FILE,
    SHEET_FILE,
    STAGE,
    TIMING_FILE,
    UNLABELED_FILE,
    SelectionResult,
    clear_state,
    finish,
)
from als4gan.active.parallel import (
    ModelBuilder,
    PoolScorer,
    launched_on_several_processes,
    run_processes,
)
from als4gan.active.pool import PoolState
from als4gan.active.rounds import SelectionRounds, refit_epochs
from als4gan.active.strategies import LOW_BUDGET_STRATEGIES, QueryStrategy, build_strategy
from als4gan.data import build_dataset, dataset_options
from als4gan.data.base import SegmentationDataset
from als4gan.errors import ConfigError
from als4gan.io import RunDir
from als4gan.runtime import (
    default_num_workers,
    resolve_amp,
    resolve_compile,
    resolve_device,
    use_channels_last,
)

__all__ = [
    "CONFIG_FILE",
    "LABELED_FILE",
    "MODEL_STATE",
    "NAMES_FILE",
    "SELECTION_DIR",
    "SELECTION_FILE",
    "SHEET_FILE",
    "STAGE",
    "TIMING_FILE",
    "UNLABELED_FILE",
    "SelectionResult",
    "plan_with_initial",
    "refit_epochs",
    "resolve_select_config",
    "run_selection",
]

AcquisitionFactory = Callable[..., AcquisitionModel]

#: Earlier names, used by :mod:`als4gan.active.lowbudget`.
_clear_state = clear_state
_finish = finish


def _build_dataset(config: SelectConfig) -> SegmentationDataset:
    assert config.root is not None
    return build_dataset(
        config.dataset,
        config.root,
        config.split,
        **dataset_options(classes_file=config.classes_file, bands=config.bands),
    )


def build_acquisition_model(
    factory: AcquisitionFactory,
    dataset: SegmentationDataset,
    config: SelectConfig,
    device: torch.device,
    strategy: QueryStrategy,
) -> AcquisitionModel:
    """The acquisition model on ``device``, with the numeric settings ``config`` asks for."""
    return factory(
        dataset=dataset,
        config=config,
        device=device,
        amp=resolve_amp(config.amp, device),
        channels_last=use_channels_last(config.channels_last, device),
        compiled=resolve_compile(config.compile, device),
        num_workers=config.num_workers if config.num_workers is not None else default_num_workers(),
        strategy=strategy,
    )


def plan_with_initial(plan: BudgetPlan, pool: PoolState, ids: list[str]) -> BudgetPlan:
    """The budget plan with a given initial set: ``n0 = len(ids)``, then the same arithmetic.

    Raises:
        ConfigError: If an id is not in the pool or repeated, or there are more than ``B``.
    """
    known = set(pool.pool_ids)
    unknown = [sample_id for sample_id in ids if sample_id not in known]
    if unknown:
        raise ConfigError(
            f"--initial lists {len(unknown)} id(s) that are not in the pool (e.g. "
            f"'{unknown[0]}'); list ids of the --split images, one per line"
        )
    if len(set(ids)) != len(ids) or not ids:
        raise ConfigError("--initial must list at least one id, each once")
    if len(ids) > plan.budget:
        raise ConfigError(
            f"--initial lists {len(ids)} ids, more than the budget B = {plan.budget}; raise "
            "--budget or shorten the list"
        )
    beta = exact_fraction(plan.beta, "beta")
    query = max(1, math.ceil(beta * len(ids)))
    full_rounds, last = divmod(plan.budget - len(ids), query)
    sizes = (query,) * full_rounds + ((last,) if last else ())
    return replace(plan, initial_size=len(ids), query_size=query, round_sizes=sizes)


def run_selection(
    config: SelectConfig,
    out: str | Path,
    *,
    force: bool = False,
    resume: bool = True,
    dataset: SegmentationDataset | None = None,
    acquisition_factory: AcquisitionFactory | None = None,
    oracle: str = "masks",
    command: str | None = None,
    initial_ids: list[str] | None = None,
) -> SelectionResult:
    """Choose the images to label under a budget and write ``out/selection/``.

    Under ``torchrun``, rank 0 selects and writes; every process scores its shard of the pool
    (:mod:`als4gan.active.parallel`); the others return rank 0's result, ``is_main`` false.

    Args:
        config: Options (checked and completed by :func:`resolve_select_config`).
        out: Run folder.
        force: Redo a finished selection in ``out``.
        resume: Continue an interrupted selection in ``out`` (else start over).
        dataset: The pool's dataset (default: built from ``config``).
        acquisition_factory: Builds the acquisition model (default: by ``config.acquisition``);
            used by benchmarks to emulate the reference implementation.
        oracle: Who labels the chosen images: ``"masks"`` (simulation: the pool's masks are
            read) or ``"human"`` (stop and wait for masks to be saved; see
            :mod:`als4gan.active.oracle`).
        command: The command that continues a waiting selection (shown to the user).
        initial_ids: The initial set, instead of a random draw (``--initial FILE``); its size
            replaces ``n0`` in the budget arithmetic.

    Returns:
        The selection, or with ``oracle="human"`` possibly a waiting one (``result.waiting``).

    Raises:
        RunExistsError: If ``out`` holds a finished selection and ``force`` is false.
        BudgetError, ConfigError: On an impossible budget or invalid options.
    """
    started = time.perf_counter()
    config = resolve_select_config(config)
    factory = acquisition_factory or ACQUISITION_MODELS[config.acquisition]
    options = _Options(force, resume, dataset, factory, oracle, command, initial_ids)

    def select(scorer: PoolScorer) -> SelectionResult:
        return _select(config, out, scorer, started, options)

    if not launched_on_several_processes():
        return select(PoolScorer())

    def builder(context: Any) -> ModelBuilder:  # the other processes: dataset, then models
        pool = dataset if dataset is not None else _build_dataset(config)
        return lambda rank0_config, strategy: build_acquisition_model(
            factory, pool, rank0_config, context.device, strategy
        )

    result, is_main = run_processes(config.device, select, builder)
    assert isinstance(result, SelectionResult)
    return result if is_main else replace(result, is_main=False)


@dataclass(frozen=True)
class _Options:
    """The keyword arguments of :func:`run_selection` (see there)."""

    force: bool
    resume: bool
    dataset: SegmentationDataset | None
    factory: AcquisitionFactory
    oracle: str
    command: str | None
    initial_ids: list[str] | None


def _select(
    config: SelectConfig, out: str | Path, scorer: PoolScorer, started: float, options: _Options
) -> SelectionResult:
    """The selection in this process (rank 0 under ``torchrun``); see :func:`run_selection`."""
    run_dir = RunDir(out)
    run_dir.check_can_start(STAGE, options.force)
    dataset = options.dataset if options.dataset is not None else _build_dataset(config)
    initial_ids = options.initial_ids
    human = _check_oracle(options.oracle, config)
    from als4gan.data.preflight import require_readable_samples

    require_readable_samples(dataset, f"the pool (split '{config.split}')", masks_optional=human)
    pool = PoolState(dataset.ids)
    plan = _plan(config, pool, initial_ids)
    from als4gan.active.lowbudget import resolve_strategy_choice

    strategy_name, choice = resolve_strategy_choice(config, plan)
    if strategy_name in LOW_BUDGET_STRATEGIES:  # no model, no rounds: active/lowbudget.py
        if human:
            raise ConfigError(
                f"--strategy {strategy_name} picks the whole budget at once from pretrained "
                "embeddings; with '--oracle human' use it as the initial set instead "
                f"(--initial-strategy {strategy_name} with an uncertainty --strategy)"
            )
        from als4gan.active.lowbudget import run_lowbudget_selection

        result: SelectionResult = run_lowbudget_selection(
            config, run_dir, dataset, pool, plan, strategy_name, choice, started
        )
        return result
    strategy = build_strategy(
        strategy_name,
        reduction=config.reduction,
        uncertainty=config.hybrid_uncertainty,
        factor=config.hybrid_factor,
    )
    rounds = SelectionRounds(
        config, run_dir, dataset, pool, plan, strategy, choice, initial_ids, options.command,
        human, scorer, started,
    )  # fmt: skip
    rounds.restore(options.force, options.resume)
    model: AcquisitionModel | None = None
    if strategy.needs_model and plan.num_rounds > 0:
        context = scorer.context
        device = resolve_device(config.device) if context is None else context.device
        model = build_acquisition_model(options.factory, dataset, config, device, strategy)
    rounds.start(model)
    return rounds.run()


def _check_oracle(oracle: str, config: SelectConfig) -> bool:
    """Whether a person labels (``--oracle human``).

    Raises:
        ConfigError: On an unknown oracle, or ``--eval-pool`` with ``human``.
    """
    if oracle not in ORACLES:
        raise ConfigError(f"--oracle must be one of {', '.join(ORACLES)}, got '{oracle}'")
    human = oracle == "human"
    if human and config.eval_pool:
        raise ConfigError(
            "--eval-pool reads the mask of every pool image, which '--oracle human' does not "
            "have; drop --eval-pool"
        )
    return human


def _plan(config: SelectConfig, pool: PoolState, initial_ids: list[str] | None) -> BudgetPlan:
    """The budget arithmetic (with ``--initial``: its size as ``n0``)."""
    plan = plan_budget(
        len(pool.pool_ids),
        labeled_ratio=config.labeled_ratio if config.budget is None else None,
        budget=config.budget,
        alpha=config.alpha,
        beta=config.beta,
    )
    if initial_ids is not None:
        plan = plan_with_initial(plan, pool, initial_ids)
    return plan
