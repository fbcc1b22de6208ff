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

import io
import logging
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from als4gan.active.acquisition import ACQUISITION_MODELS, AcquisitionModel
from als4gan.active.budget import BudgetPlan, exact_fraction, plan_budget
from als4gan.active.config import DEFAULT_LABELED_RATIO, RESUME_FREE_OPTIONS, SelectConfig
from als4gan.active.oracle import ORACLES, HumanOracle, MaskOracle, Oracle
from als4gan.active.package import (
    TO_LABEL_FILE,
    masks_folder,
    next_steps,
    write_round_package,
)
from als4gan.active.pool import STATE_FILE, PoolState
from als4gan.active.sheet import add_histograms, class_histogram, write_contact_sheet
from als4gan.active.strategies import (
    LOW_BUDGET_STRATEGIES,
    PoolScores,
    QueryStrategy,
    build_strategy,
    class_balance_weights,
)
from als4gan.config import config_to_dict
from als4gan.data import build_dataset
from als4gan.data.base import SegmentationDataset
from als4gan.errors import ConfigError, DataError
from als4gan.io import RunDir, atomic_write_bytes, write_ids, write_json, write_yaml
from als4gan.runtime import (
    default_num_workers,
    derive_seed,
    resolve_amp,
    resolve_device,
    use_channels_last,
)

log = logging.getLogger(__name__)

STAGE = "select"
SELECTION_DIR = "selection"
LABELED_FILE = "labeled.txt"
UNLABELED_FILE = "unlabeled.txt"
SELECTION_FILE = "selection.json"
CONFIG_FILE = "config.yaml"
SHEET_FILE = "contact_sheet.png"
NAMES_FILE = "labeled_names.npy"
TIMING_FILE = "timing.json"
MODEL_STATE = "acquisition_round{round}.pt"

AcquisitionFactory = Callable[..., AcquisitionModel]


@dataclass
class SelectionResult:
    """What :func:`run_selection` produced.

    Attributes:
        folder: ``RUN_DIR/selection``.
        labelled: Labelled ids in selection order (exactly the budget).
        unlabelled: The rest of the pool, in pool order.
        plan: The budget arithmetic.
        resumed_from: Rounds found finished on start (0 = fresh start).
        timing: Wall times (seconds): total, and per round train / score.
        waiting_round: With ``--oracle human``: the round waiting for masks (``None`` when the
            selection is finished; ``labelled``/``unlabelled`` are then the state so far).
        waiting_for: Ids of that round still without a mask.
        package: That round's annotation package folder.
        next_steps: What to do next, for a waiting selection (printed by the command).
        strategy: The strategy that ran (for ``--strategy auto``, the one it chose).
    """

    folder: Path
    labelled: list[str]
    unlabelled: list[str]
    plan: BudgetPlan
    resumed_from: int
    timing: dict[str, Any] = field(default_factory=dict)
    waiting_round: int | None = None
    waiting_for: list[str] = field(default_factory=list)
    package: Path | None = None
    next_steps: str = ""

    @property
    def waiting(self) -> bool:
        """Whether the selection waits for masks (``--oracle human``)."""
        return self.waiting_round is not None

    strategy: str = ""


def resolve_select_config(config: SelectConfig) -> SelectConfig:
    """Check option values and fill the labelled-ratio default.

    Raises:
        ConfigError: On an invalid value (the message names the flag).
    """
    if not config.root:
        raise ConfigError(
            "--root is required: the dataset folder written by 'als4gan prepare' "
            "(e.g. 'als4gan prepare synthetic --out data/synthetic', then --root data/synthetic)"
        )
    if config.labeled_ratio is not None and config.budget is not None:
        raise ConfigError(
            "give either --labeled-ratio or --budget, not both "
            f"(got --labeled-ratio {config.labeled_ratio} and --budget {config.budget})"
        )
    if config.labeled_ratio is None and config.budget is None:
        config.labeled_ratio = DEFAULT_LABELED_RATIO
    checks: list[tuple[bool, str]] = [
        (config.epochs >= 1, f"--epochs must be >= 1, got {config.epochs}"),
        (config.batch_size >= 1, f"--batch-size must be >= 1, got {config.batch_size}"),
        (config.image_size >= 32, f"--image-size must be >= 32 pixels, got {config.image_size}"),
        (config.lr > 0, f"--lr must be > 0, got {config.lr}"),
        (config.momentum >= 0, f"--momentum must be >= 0, got {config.momentum}"),
        (config.weight_decay >= 0, f"--weight-decay must be >= 0, got {config.weight_decay}"),
        (
            len(config.scale_range) == 2 and 0 < config.scale_range[0] <= config.scale_range[1],
            f"--scale-range takes two numbers 0 < LOW <= HIGH, got {config.scale_range}",
        ),
        (
            config.refit_epochs is None or config.refit_epochs >= 1,
            f"--refit-epochs must be >= 1, got {config.refit_epochs}",
        ),
        (config.mc_samples >= 2, f"--mc-samples must be >= 2, got {config.mc_samples}"),
        (
            0 < config.mc_dropout < 1,
            f"--mc-dropout must lie in (0, 1), got {config.mc_dropout}",
        ),
        (config.hybrid_factor >= 1, f"--hybrid-factor must be >= 1, got {config.hybrid_factor}"),
        (
            config.class_balance_power >= 0,
            f"--class-balance-power must be >= 0, got {config.class_balance_power}",
        ),
        (
            config.score_batch_size >= 1,
            f"--score-batch-size must be >= 1, got {config.score_batch_size}",
        ),
        (
            config.num_workers is None or config.num_workers >= 0,
            f"--num-workers must be >= 0, got {config.num_workers}",
        ),
        (config.sheet_max >= 0, f"--sheet-max must be >= 0, got {config.sheet_max}"),
        (
            0 < config.auto_threshold <= 1,
            f"--auto-threshold must lie in (0, 1], got {config.auto_threshold}",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    return config


def refit_epochs(config: SelectConfig, round_index: int) -> int:
    """Epochs of the acquisition model's training in query round ``round_index`` (1-based)."""
    if config.refit != "incremental" or round_index == 1:
        return config.epochs
    if config.refit_epochs is not None:
        return config.refit_epochs
    return max(1, -(-config.epochs // 10))


def _dataset_options(config: SelectConfig) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if config.classes_file:
        options["classes_file"] = config.classes_file
    if config.bands:
        options["bands"] = list(config.bands)
    return options


def _config_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    keys = sorted((set(saved) | set(current)) - RESUME_FREE_OPTIONS)
    return [
        f"{key}: {saved.get(key)!r} -> {current.get(key)!r}"
        for key in keys
        if saved.get(key) != current.get(key)
    ]


def _clear_state(folder: Path) -> None:
    """Remove resume state and the outputs of an earlier selection (a fresh start)."""
    outputs = (
        LABELED_FILE, UNLABELED_FILE, SELECTION_FILE, SHEET_FILE, NAMES_FILE, TIMING_FILE,
        "embedding_map.png",
    )  # fmt: skip
    for file in [
        folder / STATE_FILE,
        *folder.glob("acquisition_round*.pt"),
        *(folder / name for name in (*outputs, TO_LABEL_FILE)),
    ]:
        file.unlink(missing_ok=True)
    for package in folder.glob("round_*"):
        if package.is_dir():
            shutil.rmtree(package)


def _save_npy(path: Path, names: list[str]) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(names, dtype=np.str_), allow_pickle=False)
    atomic_write_bytes(path, buffer.getvalue())


def _update_class_weights(
    strategy: QueryStrategy,
    config: SelectConfig,
    dataset: SegmentationDataset,
    histogram: dict[str, Any],
) -> list[float] | None:
    """Set class-balanced weights from the labelled set's class counts (pixels or labels)."""
    if config.reduction != "class-balanced":
        return None
    segmentation = config.acquisition == "segmentation"
    counts = histogram.get("pixels" if segmentation else "labels")
    if counts is None:
        log.warning("class-balanced reduction: class counts unknown, using uniform weights")
        values = np.ones(dataset.num_classes if segmentation else len(dataset.label_names))
    else:
        values = np.asarray(list(counts.values()), dtype=np.float64)
    weights = class_balance_weights(values, power=config.class_balance_power)
    strategy.set_class_weights(weights)
    return [float(w) for w in weights]


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
    run_dir = RunDir(out)
    run_dir.check_can_start(STAGE, force)
    if dataset is None:
        assert config.root is not None
        dataset = build_dataset(
            config.dataset, config.root, config.split, **_dataset_options(config)
        )
    if oracle not in ORACLES:
        raise ConfigError(f"--oracle must be one of {', '.join(ORACLES)}, got '{oracle}'")
    human = oracle == "human"
    if human and config.eval_pool:
        raise ConfigError(
            "--eval-pool reads the mask of every pool image, which '--oracle human' does not "
            "have; drop --eval-pool"
        )
    from als4gan.data.preflight import require_readable_samples

    require_readable_samples(dataset, f"the pool (split '{config.split}')", masks_optional=human)
    pool = PoolState(dataset.ids)
    plan = plan_budget(
        len(pool.pool_ids),
        labeled_ratio=config.labeled_ratio if config.budget is None else None,
        budget=config.budget,
        alpha=config.alpha,
        beta=config.beta,
    )
    if initial_ids is not None:
        plan = plan_with_initial(plan, pool, initial_ids)
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
    folder = run_dir / SELECTION_DIR
    config_dict = config_to_dict(config)
    saved = PoolState.read(folder)
    resumed_from = 0
    timing_rounds: list[dict[str, Any]] = []
    pending: dict[str, Any] | None = None
    if force or not resume:  # a finished stage only gets here with force (checked above)
        _clear_state(folder)
    elif saved is not None:
        differences = _config_differences(saved.get("config", {}), config_dict)
        if differences:
            raise ConfigError(
                f"{folder} holds an interrupted selection made with other options "
                f"({'; '.join(differences)}). Re-run with the same options to resume it, or "
                "pass --no-resume to start over."
            )
        if saved.get("initial") != initial_ids:
            raise ConfigError(
                f"{folder} holds a selection started "
                + ("with another --initial list" if saved.get("initial") else "without --initial")
                + ". Re-run with the same options to resume it, or pass --no-resume to start over."
            )
        pool.load_state_dict(saved)
        resumed_from = pool.completed_rounds
        timing_rounds = list(saved.get("timing", []))
        pending = saved.get("pending")
        if resumed_from:
            log.info("resuming the selection in %s after round %d", folder, resumed_from - 1)
        else:
            log.info("continuing the selection in %s (round 0 waits for masks)", folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_yaml(folder / CONFIG_FILE, config_dict)
    run_dir.mark_running(STAGE, strategy=config.strategy, budget=plan.budget)
    log.info("%s: pool of %d images; %s", config.strategy, plan.pool_size, plan.describe())

    device = resolve_device(config.device)
    amp = resolve_amp(config.amp, device)
    channels_last = use_channels_last(config.channels_last, device)
    num_workers = config.num_workers if config.num_workers is not None else default_num_workers()
    model: AcquisitionModel | None = None
    if strategy.needs_model and plan.num_rounds > 0:
        factory = acquisition_factory or ACQUISITION_MODELS[config.acquisition]
        model = factory(
            dataset=dataset,
            config=config,
            device=device,
            amp=amp,
            channels_last=channels_last,
            num_workers=num_workers,
            strategy=strategy,
        )

    def save_state(model_round: int | None, waiting: dict[str, Any] | None = None) -> None:
        extra: dict[str, Any] = {} if waiting is None else {"pending": waiting}
        if initial_ids is not None:
            extra["initial"] = initial_ids
        pool.save(
            folder,
            config=config_dict,
            plan=plan.to_dict(),
            model_round=model_round,
            timing=timing_rounds,
            **extra,
        )

    def on_waiting(round_index: int, ids: list[str], missing: list[str], scores: Any) -> None:
        packages.append(
            write_round_package(folder, dataset, round_index, ids, missing, scores, command)
        )

    packages: list[Path] = []
    labeller: Oracle = (
        HumanOracle(dataset, pool.pool_ids, on_waiting) if human else MaskOracle(dataset)
    )

    def settle(
        ids: list[str], record: dict[str, Any], model_round: int | None, timing: dict[str, Any]
    ) -> list[str]:
        """Have the oracle label ``ids``; add the round, or save it as pending.

        Returns:
            The ids still waiting for a mask (empty: the round is added and saved).
        """
        answer = labeller.reveal(ids, pool.labelled, pool.completed_rounds, record["scores"])
        if not answer.ready:
            save_state(model_round, {"ids": ids, "record": record, "timing": timing})
            return answer.waiting
        extra = answer.extra
        record["histogram"] = class_histogram(dataset, [*ids, *extra])
        if extra:
            record["volunteered"] = extra
        pool.add_round([*ids, *extra], record)
        timing_rounds.append(timing)
        save_state(model_round)
        (folder / TO_LABEL_FILE).unlink(missing_ok=True)
        return []

    def waiting_result(missing: list[str], requested: int) -> SelectionResult:
        run_dir.mark(STAGE, "waiting", round=pool.completed_rounds, missing=len(missing))
        log.info(
            "round %d waits for %s (%d/%d labelled)",
            pool.completed_rounds,
            _images(len(missing)),
            len(pool.labelled),
            plan.budget,
        )
        return SelectionResult(
            folder=folder,
            labelled=list(pool.labelled),
            unlabelled=pool.unlabelled(),
            plan=plan,
            resumed_from=resumed_from,
            waiting_round=pool.completed_rounds,
            waiting_for=missing,
            package=packages[-1] if packages else None,
            next_steps=next_steps(
                pool.completed_rounds,
                requested,
                missing,
                masks_folder(dataset),
                packages[-1] if packages else folder,
                command,
            ),
        )

    # A round chosen by an earlier invocation waits for its masks: label it first.
    if pending is not None:
        assert saved is not None
        pending_ids = list(pending["ids"])
        missing = settle(
            pending_ids, dict(pending["record"]), saved.get("model_round"),
            dict(pending["timing"]),
        )  # fmt: skip
        if missing:
            return waiting_result(missing, len(pending_ids))

    labelled_histogram: dict[str, Any] | None = None
    for finished in pool.rounds:
        histogram = finished["histogram"]
        labelled_histogram = (
            histogram
            if labelled_histogram is None
            else add_histograms(labelled_histogram, histogram)
        )

    # Round 0: the initial random set (docs/method.md, stage 1); kept in the final selection
    # (defect 1 of the reference code).
    if pool.completed_rounds == 0:
        initial_seed = derive_seed(config.seed, "initial")
        initial: dict[str, Any] = {
            "kind": "initial",
            "strategy": "random" if initial_ids is None else "given",
            "seed": initial_seed if initial_ids is None else None,
            "model": None,
            "scores": None,
            **({"auto": choice} if choice else {}),
        }
        if initial_ids is not None:
            first = list(initial_ids)
            how = "given by --initial"
        elif config.initial_strategy != "random":  # pretrained embeddings: active/lowbudget.py
            from als4gan.active.lowbudget import initial_set

            first, more = initial_set(
                config, dataset, pool.pool_ids, plan.initial_size, initial_seed, folder
            )
            initial["strategy"] = config.initial_strategy
            initial.update(more)
            how = f"chosen by {config.initial_strategy}"
        else:
            order = np.random.default_rng(initial_seed).permutation(plan.pool_size)
            first = [pool.pool_ids[int(i)] for i in order[: plan.initial_size]]
            how = "drawn at random"
        log.info("round 0: %s %s", _images(len(first)), how)
        missing = settle(first, initial, None, {"round": 0, "train": 0.0, "score": 0.0})
        if missing:
            return waiting_result(missing, len(first))
        labelled_histogram = initial["histogram"]

    for round_index in range(pool.completed_rounds, plan.num_rounds + 1):
        size = plan.round_sizes[round_index - 1]
        unlabelled = pool.unlabelled()
        record: dict[str, Any] = {
            "kind": "query",
            "strategy": strategy.name,
            "seed": derive_seed(config.seed, "query", round_index),
            "model": model.describe() if model is not None else None,
        }
        train_seconds = score_seconds = 0.0
        pool_scores = PoolScores(size=len(unlabelled))
        if model is not None:
            assert labelled_histogram is not None
            weights = _update_class_weights(strategy, config, dataset, labelled_histogram)
            if weights is not None:
                record["class_weights"] = weights
            if config.refit == "reinit" or round_index == 1:
                model.reset()
            elif model.network is None:
                model_file = folder / MODEL_STATE.format(round=round_index - 1)
                if not model_file.is_file():
                    raise DataError(
                        f"{model_file} is missing, so the interrupted selection in {folder} "
                        "cannot resume; pass --no-resume to start over"
                    )
                model.load_state_dict(torch.load(model_file, map_location="cpu", weights_only=True))
            model.check_trainable(pool.labelled)
            train = model.fit(pool.labelled, round_index, refit_epochs(config, round_index))
            train_seconds = float(train.pop("seconds"))
            record["train"] = train
            outputs = model.score_pool(
                unlabelled,
                round_index,
                with_scores=strategy.needs_scores,
                with_embeddings=strategy.needs_embeddings,
                with_labels=config.eval_pool and config.acquisition == "classifier",
            )
            score_seconds = outputs.seconds
            pool_scores.scores = outputs.scores
            pool_scores.embeddings = outputs.embeddings
            if outputs.accuracy is not None:
                record["pool_accuracy"] = outputs.accuracy
            if strategy.needs_embeddings:
                labelled_outputs = model.score_pool(
                    pool.labelled,
                    round_index,
                    with_scores=False,
                    with_embeddings=True,
                    desc="embed labelled",
                )
                pool_scores.labelled_embeddings = labelled_outputs.embeddings
                score_seconds += labelled_outputs.seconds
        selection = strategy.select(pool_scores, size, seed=int(record["seed"]))
        chosen = [unlabelled[int(i)] for i in selection.indices]
        if len(chosen) != size:
            raise RuntimeError(f"strategy '{strategy.name}' chose {len(chosen)} of {size} images")
        record["scores"] = [float(s) for s in selection.scores]
        carried = model is not None and config.refit != "reinit"
        if carried:
            assert model is not None
            buffer = io.BytesIO()
            torch.save(model.state_dict(), buffer)
            atomic_write_bytes(folder / MODEL_STATE.format(round=round_index), buffer.getvalue())
        timing = {"round": round_index, "train": train_seconds, "score": score_seconds}
        missing = settle(chosen, record, round_index if carried else None, timing)
        (folder / MODEL_STATE.format(round=round_index - 1)).unlink(missing_ok=True)
        if missing:
            return waiting_result(missing, len(chosen))
        assert labelled_histogram is not None
        labelled_histogram = add_histograms(labelled_histogram, record["histogram"])
        log.info(
            "round %d/%d: %s chosen (%d/%d labelled; fit %.1fs, score %.1fs)",
            round_index,
            plan.num_rounds,
            _images(len(chosen)),
            len(pool.labelled),
            plan.budget,
            train_seconds,
            score_seconds,
        )

    return _finish(
        run_dir, folder, dataset, config, config_dict, plan, pool, strategy, model,
        labelled_histogram, timing_rounds, resumed_from, started,
    )  # fmt: skip


def _finish(
    run_dir: RunDir,
    folder: Path,
    dataset: SegmentationDataset,
    config: SelectConfig,
    config_dict: dict[str, Any],
    plan: BudgetPlan,
    pool: PoolState,
    strategy: QueryStrategy,
    model: AcquisitionModel | None,
    labelled_histogram: dict[str, Any] | None,
    timing_rounds: list[dict[str, Any]],
    resumed_from: int,
    started: float,
) -> SelectionResult:
    """Check the invariants and write the selection files."""
    labelled = list(pool.labelled)
    unlabelled = pool.unlabelled()
    # Masks saved for images not asked for (--oracle human) are labelled beyond the budget.
    volunteered = sum(len(record.get("volunteered", [])) for record in pool.rounds)
    if len(labelled) != plan.budget + volunteered or len(set(labelled)) != len(labelled):
        raise RuntimeError(
            f"selection invariant broken: {len(labelled)} labelled ids "
            f"({len(set(labelled))} distinct) for a budget of {plan.budget}"
        )
    if len(labelled) + len(unlabelled) != plan.pool_size:
        raise RuntimeError("selection invariant broken: labelled + unlabelled != pool")
    write_ids(folder / LABELED_FILE, labelled)
    write_ids(folder / UNLABELED_FILE, unlabelled)
    _save_npy(folder / NAMES_FILE, labelled)
    rounds_of = [record["round"] for record in pool.rounds for _ in record["ids"]]
    write_contact_sheet(
        folder / SHEET_FILE,
        dataset,
        labelled,
        rounds_of,
        title=(
            f"{dataset.name} {config.split}: {config.strategy} selection of {plan.budget} of "
            f"{plan.pool_size} images (seed {config.seed}; r0 = {pool.rounds[0]['strategy']} set)"
        ),
        max_images=config.sheet_max,
    )
    write_json(
        folder / SELECTION_FILE,
        {
            "format": "als4gan-selection",
            "version": 1,
            "dataset": dataset.describe(),
            "strategy": strategy.name,
            "seed": config.seed,
            "acquisition": model.describe() if model is not None else None,
            "budget": {**plan.to_dict(), "formula": plan.describe()},
            "config": config_dict,
            "labelled": {"count": len(labelled), "histogram": labelled_histogram},
            "rounds": pool.rounds,
            "files": {
                "labeled": LABELED_FILE,
                "unlabeled": UNLABELED_FILE,
                "names_npy": NAMES_FILE,
                "contact_sheet": SHEET_FILE,
            },
        },
    )
    total = time.perf_counter() - started
    timing = {
        "total_seconds_this_invocation": total,
        "resumed_from_round": resumed_from - 1 if resumed_from else None,
        "train_seconds": sum(r["train"] for r in timing_rounds),
        "score_seconds": sum(r["score"] for r in timing_rounds),
        "rounds": timing_rounds,
    }
    write_json(folder / TIMING_FILE, timing)
    pool.save(
        folder, config=config_dict, plan=plan.to_dict(), model_round=None, timing=timing_rounds
    )
    for file in folder.glob("acquisition_round*.pt"):
        file.unlink()
    run_dir.mark_done(STAGE, labelled=len(labelled), strategy=strategy.name, folder=str(folder))
    log.info(
        "selection written to %s (%d labelled, %d unlabelled)",
        folder,
        len(labelled),
        len(unlabelled),
    )
    return SelectionResult(
        folder=folder,
        labelled=labelled,
        unlabelled=unlabelled,
        plan=plan,
        resumed_from=resumed_from,
        timing=timing,
        strategy=strategy.name,
    )


def _images(count: int) -> str:
    """``"1 image"``, ``"3 images"``."""
    return f"{count} image" if count == 1 else f"{count} images"
