"""The rounds of a model-based selection: round 0 (the initial set), then refit -> score -> pick.

:class:`SelectionRounds` holds what a selection needs between rounds (pool state, budget plan,
strategy, acquisition model, oracle, wall times) and saves it after every round, so an
interrupted or waiting (``--oracle human``) selection continues from its last finished round.
:func:`als4gan.active.loop.run_selection` prepares it and calls :meth:`SelectionRounds.run`.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from als4gan.active.acquisition import AcquisitionModel
from als4gan.active.budget import BudgetPlan
from als4gan.active.config import RESUME_FREE_OPTIONS, SelectConfig
from als4gan.active.oracle import HumanOracle, MaskOracle, Oracle
from als4gan.active.outputs import (
    CONFIG_FILE,
    MODEL_STATE,
    SELECTION_DIR,
    STAGE,
    SelectionResult,
    clear_state,
    finish,
    images,
)
from als4gan.active.package import TO_LABEL_FILE, masks_folder, next_steps, write_round_package
from als4gan.active.parallel import PoolScorer
from als4gan.active.pool import PoolState
from als4gan.active.sheet import add_histograms, class_histogram
from als4gan.active.strategies import PoolScores, QueryStrategy, class_balance_weights
from als4gan.config import config_to_dict
from als4gan.data.base import SegmentationDataset
from als4gan.errors import ConfigError, DataError
from als4gan.io import RunDir, atomic_write_bytes, write_yaml
from als4gan.runtime import derive_seed

log = logging.getLogger(__name__)


def refit_epochs(config: SelectConfig, round_index: int) -> int:
    """Epochs of the acquisition model's training in query round ``round_index`` (1-based)."""
    if config.refit != "incremental" or round_index == 1:
        return config.epochs
    if config.refit_epochs is not None:
        return config.refit_epochs
    return max(1, -(-config.epochs // 10))


def config_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``key: saved -> current`` for each option that differs and may not change on resume."""
    keys = sorted((set(saved) | set(current)) - RESUME_FREE_OPTIONS)
    return [
        f"{key}: {saved.get(key)!r} -> {current.get(key)!r}"
        for key in keys
        if saved.get(key) != current.get(key)
    ]


def update_class_weights(
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


@dataclass
class SelectionRounds:
    """One invocation of a model-based selection (see the module docstring).

    Attributes:
        config: Resolved options.
        run_dir: The run folder.
        dataset: The pool's dataset.
        pool: Labelled / unlabelled state (restored by :meth:`restore`).
        plan: The budget arithmetic.
        strategy: The query strategy.
        choice: What ``--strategy auto`` decided (``None`` otherwise).
        initial_ids: The initial set given by ``--initial`` (``None``: drawn or chosen).
        command: The command that continues a waiting selection.
        human: Whether a person labels (``--oracle human``).
        scorer: Scores the pool (in this process, or sharded over ``torchrun`` processes).
        started: ``time.perf_counter()`` when the invocation started.
    """

    config: SelectConfig
    run_dir: RunDir
    dataset: SegmentationDataset
    pool: PoolState
    plan: BudgetPlan
    strategy: QueryStrategy
    choice: dict[str, Any] | None
    initial_ids: list[str] | None
    command: str | None
    human: bool
    scorer: PoolScorer
    started: float
    model: AcquisitionModel | None = None
    resumed_from: int = 0
    timing_rounds: list[dict[str, Any]] = field(default_factory=list)
    saved: dict[str, Any] | None = None
    pending: dict[str, Any] | None = None
    packages: list[Path] = field(default_factory=list)
    labelled_histogram: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.folder = self.run_dir / SELECTION_DIR
        self.config_dict = config_to_dict(self.config)
        self.labeller: Oracle | None = None

    # ------------------------------------------------------------------ state
    def restore(self, force: bool, resume: bool) -> None:
        """Start over (``force`` or not ``resume``), or load the state an earlier run saved.

        Raises:
            ConfigError: If the saved selection used other options or another ``--initial``.
        """
        folder = self.folder
        self.saved = saved = PoolState.read(folder)
        if force or not resume:  # a finished stage only gets here with force (checked before)
            clear_state(folder)
        elif saved is not None:
            self._check_resumable(saved)
            self.pool.load_state_dict(saved)
            self.resumed_from = self.pool.completed_rounds
            self.timing_rounds = list(saved.get("timing", []))
            self.pending = saved.get("pending")
            if self.resumed_from:
                log.info(
                    "resuming the selection in %s after round %d", folder, self.resumed_from - 1
                )
            else:
                log.info("continuing the selection in %s (round 0 waits for masks)", folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_yaml(folder / CONFIG_FILE, self.config_dict)
        self.run_dir.mark_running(STAGE, strategy=self.config.strategy, budget=self.plan.budget)
        log.info(
            "%s: pool of %d images; %s",
            self.config.strategy,
            self.plan.pool_size,
            self.plan.describe(),
        )

    def start(self, model: AcquisitionModel | None) -> None:
        """Set the acquisition model (``None``: the strategy needs none) and the oracle."""
        self.model = model
        self.labeller = (
            HumanOracle(self.dataset, self.pool.pool_ids, self._on_waiting)
            if self.human
            else MaskOracle(self.dataset)
        )

    def _check_resumable(self, saved: dict[str, Any]) -> None:
        differences = config_differences(saved.get("config", {}), self.config_dict)
        if differences:
            raise ConfigError(
                f"{self.folder} holds an interrupted selection made with other options "
                f"({'; '.join(differences)}). Re-run with the same options to resume it, or "
                "pass --no-resume to start over."
            )
        if saved.get("initial") != self.initial_ids:
            raise ConfigError(
                f"{self.folder} holds a selection started "
                + ("with another --initial list" if saved.get("initial") else "without --initial")
                + ". Re-run with the same options to resume it, or pass --no-resume to start over."
            )

    def save_state(self, model_round: int | None, waiting: dict[str, Any] | None = None) -> None:
        """Write ``state.json`` (``waiting``: a round chosen but not labelled yet)."""
        extra: dict[str, Any] = {} if waiting is None else {"pending": waiting}
        if self.initial_ids is not None:
            extra["initial"] = self.initial_ids
        self.pool.save(
            self.folder,
            config=self.config_dict,
            plan=self.plan.to_dict(),
            model_round=model_round,
            timing=self.timing_rounds,
            **extra,
        )

    # ------------------------------------------------------------------ the oracle
    def _on_waiting(
        self, round_index: int, ids: list[str], missing: list[str], scores: Any
    ) -> None:
        self.packages.append(
            write_round_package(
                self.folder, self.dataset, round_index, ids, missing, scores, self.command
            )
        )

    def settle(
        self,
        ids: list[str],
        record: dict[str, Any],
        model_round: int | None,
        timing: dict[str, Any],
    ) -> list[str]:
        """Have the oracle label ``ids``; add the round, or save it as pending.

        Returns:
            The ids still waiting for a mask (empty: the round is added and saved).
        """
        pool = self.pool
        assert self.labeller is not None, "call start() first"
        answer = self.labeller.reveal(ids, pool.labelled, pool.completed_rounds, record["scores"])
        if not answer.ready:
            self.save_state(model_round, {"ids": ids, "record": record, "timing": timing})
            return answer.waiting
        extra = answer.extra
        record["histogram"] = class_histogram(self.dataset, [*ids, *extra])
        if extra:
            record["volunteered"] = extra
        pool.add_round([*ids, *extra], record)
        self.timing_rounds.append(timing)
        self.save_state(model_round)
        (self.folder / TO_LABEL_FILE).unlink(missing_ok=True)
        return []

    def waiting_result(self, missing: list[str], requested: int) -> SelectionResult:
        """The result of a selection that waits for masks (``--oracle human``)."""
        pool = self.pool
        self.run_dir.mark(STAGE, "waiting", round=pool.completed_rounds, missing=len(missing))
        log.info(
            "round %d waits for %s (%d/%d labelled)",
            pool.completed_rounds,
            images(len(missing)),
            len(pool.labelled),
            self.plan.budget,
        )
        package = self.packages[-1] if self.packages else None
        return SelectionResult(
            folder=self.folder,
            labelled=list(pool.labelled),
            unlabelled=pool.unlabelled(),
            plan=self.plan,
            resumed_from=self.resumed_from,
            waiting_round=pool.completed_rounds,
            waiting_for=missing,
            package=package,
            next_steps=next_steps(
                pool.completed_rounds,
                requested,
                missing,
                masks_folder(self.dataset),
                package or self.folder,
                self.command,
            ),
        )

    # ------------------------------------------------------------------ the rounds
    def run(self) -> SelectionResult:
        """The pending round, round 0, then every query round; the finished selection."""
        if self.pending is not None:  # chosen by an earlier invocation, waiting for its masks
            assert self.saved is not None
            pending = self.pending
            ids = list(pending["ids"])
            missing = self.settle(
                ids, dict(pending["record"]), self.saved.get("model_round"),
                dict(pending["timing"]),
            )  # fmt: skip
            if missing:
                return self.waiting_result(missing, len(ids))
        for finished in self.pool.rounds:
            histogram = finished["histogram"]
            self.labelled_histogram = (
                histogram
                if self.labelled_histogram is None
                else add_histograms(self.labelled_histogram, histogram)
            )
        if self.pool.completed_rounds == 0:
            waiting = self.initial_round()
            if waiting is not None:
                return waiting
        for round_index in range(self.pool.completed_rounds, self.plan.num_rounds + 1):
            waiting = self.query_round(round_index)
            if waiting is not None:
                return waiting
        return finish(
            self.run_dir, self.folder, self.dataset, self.config, self.config_dict, self.plan,
            self.pool, self.strategy, self.model, self.labelled_histogram, self.timing_rounds,
            self.resumed_from, self.started,
        )  # fmt: skip

    def initial_round(self) -> SelectionResult | None:
        """Round 0: the initial set; the waiting result, if it waits for masks.

        The initial set (docs/method.md, stage 1) is kept in the final selection (defect 1 of
        the reference code).
        """
        config, initial_ids = self.config, self.initial_ids
        initial_seed = derive_seed(config.seed, "initial")
        record: dict[str, Any] = {
            "kind": "initial",
            "strategy": "random" if initial_ids is None else "given",
            "seed": initial_seed if initial_ids is None else None,
            "model": None,
            "scores": None,
            **({"auto": self.choice} if self.choice else {}),
        }
        if initial_ids is not None:
            first = list(initial_ids)
            how = "given by --initial"
        elif config.initial_strategy != "random":  # pretrained embeddings: active/lowbudget.py
            from als4gan.active.lowbudget import initial_set

            first, more = initial_set(
                config, self.dataset, self.pool.pool_ids, self.plan.initial_size, initial_seed,
                self.folder,
            )  # fmt: skip
            record["strategy"] = config.initial_strategy
            record.update(more)
            how = f"chosen by {config.initial_strategy}"
        else:
            order = np.random.default_rng(initial_seed).permutation(self.plan.pool_size)
            first = [self.pool.pool_ids[int(i)] for i in order[: self.plan.initial_size]]
            how = "drawn at random"
        log.info("round 0: %s %s", images(len(first)), how)
        missing = self.settle(first, record, None, {"round": 0, "train": 0.0, "score": 0.0})
        if missing:
            return self.waiting_result(missing, len(first))
        self.labelled_histogram = record["histogram"]
        return None

    def query_round(self, round_index: int) -> SelectionResult | None:
        """Refit, score the unlabelled pool, pick and label; the waiting result, if it waits."""
        size = self.plan.round_sizes[round_index - 1]
        unlabelled = self.pool.unlabelled()
        model = self.model
        record: dict[str, Any] = {
            "kind": "query",
            "strategy": self.strategy.name,
            "seed": derive_seed(self.config.seed, "query", round_index),
            "model": model.describe() if model is not None else None,
        }
        timing = {"round": round_index, "train": 0.0, "score": 0.0}
        pool_scores = PoolScores(size=len(unlabelled))
        if model is not None:
            timing["train"] = self._refit(model, round_index, record)
            timing["score"] = self._score(model, round_index, unlabelled, record, pool_scores)
        selection = self.strategy.select(pool_scores, size, seed=int(record["seed"]))
        chosen = [unlabelled[int(i)] for i in selection.indices]
        if len(chosen) != size:
            raise RuntimeError(
                f"strategy '{self.strategy.name}' chose {len(chosen)} of {size} images"
            )
        record["scores"] = [float(s) for s in selection.scores]
        carried = model is not None and self.config.refit != "reinit"
        if carried:
            assert model is not None
            buffer = io.BytesIO()
            torch.save(model.state_dict(), buffer)
            model_file = self.folder / MODEL_STATE.format(round=round_index)
            atomic_write_bytes(model_file, buffer.getvalue())
        missing = self.settle(chosen, record, round_index if carried else None, timing)
        (self.folder / MODEL_STATE.format(round=round_index - 1)).unlink(missing_ok=True)
        if missing:
            return self.waiting_result(missing, len(chosen))
        assert self.labelled_histogram is not None
        self.labelled_histogram = add_histograms(self.labelled_histogram, record["histogram"])
        log.info(
            "round %d/%d: %s chosen (%d/%d labelled; fit %.1fs, score %.1fs)",
            round_index, self.plan.num_rounds, images(len(chosen)), len(self.pool.labelled),
            self.plan.budget, timing["train"], timing["score"],
        )  # fmt: skip
        return None

    def _refit(self, model: AcquisitionModel, round_index: int, record: dict[str, Any]) -> float:
        """Set class weights, restore or reset the network, train; the training seconds."""
        config, folder = self.config, self.folder
        assert self.labelled_histogram is not None
        weights = update_class_weights(self.strategy, config, self.dataset, self.labelled_histogram)
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
        model.check_trainable(self.pool.labelled)
        train = model.fit(self.pool.labelled, round_index, refit_epochs(config, round_index))
        seconds = float(train.pop("seconds"))
        record["train"] = train
        return seconds

    def _score(
        self,
        model: AcquisitionModel,
        round_index: int,
        unlabelled: list[str],
        record: dict[str, Any],
        pool_scores: PoolScores,
    ) -> float:
        """Score the unlabelled pool (and embed the labelled set); the scoring seconds."""
        strategy = self.strategy
        outputs = self.scorer.score(
            model,
            unlabelled,
            round_index,
            with_scores=strategy.needs_scores,
            with_embeddings=strategy.needs_embeddings,
            with_labels=self.config.eval_pool and self.config.acquisition == "classifier",
        )
        seconds = outputs.seconds
        pool_scores.scores = outputs.scores
        pool_scores.embeddings = outputs.embeddings
        if outputs.accuracy is not None:
            record["pool_accuracy"] = outputs.accuracy
        if strategy.needs_embeddings:
            labelled_outputs = self.scorer.score(
                model,
                self.pool.labelled,
                round_index,
                with_scores=False,
                with_embeddings=True,
                desc="embed labelled",
            )
            pool_scores.labelled_embeddings = labelled_outputs.embeddings
            seconds += labelled_outputs.seconds
        return seconds
