"""The training loop (stage 2 of docs/method.md) that every method shares, explicit throughout.

Read it top to bottom: :meth:`Trainer.__init__` builds the run in five steps (data, networks,
optimisers, the modules the step calls, progress state), :meth:`Trainer.fit` is the loop, and
:meth:`Trainer.train_iteration` one iteration of it. What one micro-batch computes is the
method's (:mod:`als4gan.train.methods`: s4GAN's steps 1-7, the supervised baseline's step 1,
UniMatch's weak-to-strong consistency); each iteration runs ``grad_accum`` micro-steps, then one
SGD step for G (and one Adam step for s4GAN's D), each with polynomial decay. Images are in
[0, 1] everywhere, so D sees them as they are (no per-batch min/max rescaling: defect 6 in
docs/method.md). Building blocks live next to this file: :mod:`~als4gan.train.builders` (data,
streams, DDP), :mod:`~als4gan.train.networks`, :mod:`~als4gan.train.schedules` and
:mod:`~als4gan.train.checkpointing`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from als4gan.checkpoint import CHECKPOINT_DIR, save_checkpoint
from als4gan.distributed import DistributedContext, all_reduce_sum
from als4gan.errors import TrainingDivergedError
from als4gan.regime import aspp_warning, training_regime
from als4gan.runtime import (
    configure_determinism,
    derive_seed,
    progress,
    resolve_amp,
    resolve_compile,
    use_channels_last,
)
from als4gan.train import checkpointing
from als4gan.train.builders import (
    LABELLED_FILE,
    UNLABELLED_FILE,
    build_data,
    build_streams,
    training_modules,
)
from als4gan.train.checkpointing import BEST, LATEST, STEP_CHECKPOINT
from als4gan.train.config import TrainConfig
from als4gan.train.methods import Method, build_method
from als4gan.train.methods.s4gan import S4GAN, SeparatePasses
from als4gan.train.networks import (
    BN_TRAINED_BACKBONES,
    backbone_batchnorms,
    batchnorm_frozen,
    build_generator,
    build_generator_with_weights,
    build_networks,
    move_network,
)
from als4gan.train.records import (
    METRICS_FILE,
    MetricsLog,
    check_tensorboard,
    progress_fields,
    truncate_records,
)
from als4gan.train.schedules import build_optimizers
from als4gan.train.state import capture_rng_state
from als4gan.train.stop import StopRequests
from als4gan.train.summary import describe_run
from als4gan.train.validate import validate

logger = logging.getLogger(__name__)

#: s4GAN's per-iteration statistics, summed over accumulation steps and processes (each
#: method's are its ``stat_keys`` followed by ``stop``).
STAT_KEYS = (*S4GAN.stat_keys, "stop")


def backward(loss: torch.Tensor) -> None:
    """``loss.backward()`` (a typed wrapper)."""
    loss.backward()  # type: ignore[no-untyped-call]


class Trainer:
    """Builds data, networks and optimisers from a :class:`TrainConfig` and runs the loop.

    Only the main process (rank 0) writes files; every process computes.

    Args:
        config: The resolved config (validated).
        run_dir: The run folder (checkpoints, metrics.jsonl).
        context: Distributed context (a single process by default).
        show_progress: Show progress bars on the main process.
        resume: Take the labelled ids recorded in ``RUN_DIR/train_labeled.txt`` (what the run
            started with) rather than resolving them again.

    Raises:
        ConfigError / DataError / DatasetNotFoundError: On unusable options or data.
    """

    def __init__(
        self,
        config: TrainConfig,
        run_dir: str | Path,
        context: DistributedContext,
        *,
        show_progress: bool = True,
        resume: bool = False,
    ) -> None:
        config.validate()
        self.config = config
        self.run_dir = Path(run_dir)
        self.context = context
        self.device = context.device
        self.show_progress = show_progress and context.is_main
        self.amp = resolve_amp(config.amp, self.device)
        self.channels_last = use_channels_last(config.channels_last, self.device)
        self.compiled = resolve_compile(config.compile, self.device)
        self.method: Method = build_method(config)
        if context.is_main:
            check_tensorboard(config.tensorboard)  # fail before any work when it is required
        configure_determinism(config.deterministic, self.device)
        self._build_data(resume)
        self._build_networks()
        self._build_optimizers()
        self.g_train, self.d_train = training_modules(
            self.method, self.generator, self.discriminator, context
        )
        # D's dropout draws from the global generator: seed it from the run seed, per process.
        torch.manual_seed(derive_seed(config.seed, "train", context.rank))
        self._reset_progress()

    # ------------------------------------------------------------------ building
    def _build_data(self, resume: bool) -> None:
        """The labelled / unlabelled split, the validation set and the data streams."""
        data = build_data(self.config, self.run_dir, self.context, self.method, resume=resume)
        self.train_set, self.split, self.val_set = data.train_set, data.split, data.val_set
        self.num_classes = self.train_set.num_classes
        self.data_fingerprint = data.fingerprint
        self.micro_batch = data.micro_batch
        self.streams = build_streams(self.config, data, self.method, self.context)

    def _build_networks(self) -> None:
        """G (pretrained weights, BatchNorm policy), D when the method uses it, on the device."""
        config = self.config
        networks = build_networks(
            config,
            self.num_classes,
            self.train_set.in_channels,
            self.context,
            with_discriminator=self.method.uses_discriminator,
            channels_last=self.channels_last,
            compiled=self.compiled,
        )
        self.generator: nn.Module = networks.generator
        self.discriminator = networks.discriminator
        self.model_spec = networks.spec
        self.pretrained_load = networks.pretrained_load
        self.bn_frozen = networks.bn_frozen
        # How validation segments images; recorded in the checkpoints so that 'als4gan
        # evaluate' scores the test split the same way by default.
        self.regime = training_regime(config.val_window, config.crop_size)
        if self.context.is_main:
            warning = aspp_warning(
                self.generator, config.crop_size, config.resolved_output_stride()
            )
            if warning:
                logger.warning(warning)

    def _build_optimizers(self) -> None:
        """The paper's optimisers: SGD for G with head multipliers, Adam for D; poly decay."""
        optimizers = build_optimizers(self.generator, self.discriminator, self.config)
        self.optimizer_g, self.scheduler_g, self.optimizer_d, self.scheduler_d = optimizers

    def _reset_progress(self) -> None:
        """Step 0, no validation yet, the clock at zero, no metrics log open."""
        self.step = 0
        self.best_miou = -math.inf
        self.best_step: int | None = None
        self.last_val: dict[str, Any] | None = None
        self.elapsed = 0.0
        self._clock_start = time.perf_counter()
        self.log: MetricsLog | None = None

    # ------------------------------------------------------------------ helpers for the methods
    @property
    def checkpoint_dir(self) -> Path:
        """RUN_DIR/checkpoints."""
        return self.run_dir / CHECKPOINT_DIR

    def set_train_mode(self) -> None:
        """Train mode, except frozen backbone BatchNorm, which keeps its running statistics."""
        self.generator.train()
        if self.bn_frozen:
            for layer in backbone_batchnorms(self.generator):
                layer.eval()
        if self.discriminator is not None:
            self.discriminator.train()

    def memory_format(self, image: torch.Tensor) -> torch.Tensor:
        """``image`` in the run's memory format (channels_last when enabled)."""
        if self.channels_last:
            return image.contiguous(memory_format=torch.channels_last)
        return image

    def to_device(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch's images (in the run's memory format) and masks on the device."""
        image = self.memory_format(batch["image"].to(self.device, non_blocking=True))
        return image, batch["mask"].to(self.device, non_blocking=True)

    def no_sync(
        self, module: nn.Module | None, sync: bool
    ) -> contextlib.AbstractContextManager[Any]:
        """DDP's no_sync on all but the last accumulation step (gradients reduced once)."""
        if not sync and isinstance(module, DistributedDataParallel):
            return module.no_sync()
        return contextlib.nullcontext()

    def elapsed_seconds(self) -> float:
        """Training wall-clock time so far, accumulated over resumed invocations."""
        return self.elapsed + time.perf_counter() - self._clock_start

    # ------------------------------------------------------------------ the loop
    def fit(self) -> dict[str, Any]:
        """Train until ``iterations`` (or ``stop_after`` / a stop signal), validating and saving.

        Returns:
            ``{"step", "finished", "stopped_by_signal", "best_miou", "best_step", "last_val"}``.

        Raises:
            TrainingDivergedError: On a non-finite loss (``latest.pt`` keeps the last good state).
        """
        config = self.config
        if self.context.is_main:
            self.log = MetricsLog(self.run_dir, config.tensorboard)
            truncate_records(self.run_dir / METRICS_FILE, self.step)
        end = config.iterations
        if config.stop_after is not None:
            end = min(end, self.step + config.stop_after)
        bar = progress(
            total=config.iterations,
            initial=self.step,
            desc=config.method,
            unit="it",
            disable=None if self.show_progress else True,
        )
        stopped_by_signal, saved = False, True
        self._clock_start = time.perf_counter()
        try:
            with StopRequests() as stop:
                while self.step < end and not stopped_by_signal:
                    record, stopped_by_signal = self.train_iteration(stop.requested)
                    if self.log is not None:
                        self.log.write(record)
                    bar.set_postfix(progress_fields(record), refresh=False)
                    bar.update(1)
                    saved = self._after_step()
                if not saved:
                    self.save_latest()  # a stop signal or --stop-after: a resumable pause
        finally:
            self._close(bar)
        return {
            "step": self.step,
            "finished": self.step >= config.iterations,
            "stopped_by_signal": stopped_by_signal,
            "best_miou": self.best_miou if math.isfinite(self.best_miou) else None,
            "best_step": self.best_step,
            "last_val": self.last_val,
        }

    def _close(self, bar: Any) -> None:
        """Close the progress bar, the metrics log and the data loaders."""
        bar.close()
        if self.log is not None:
            self.log.close()
        for data_stream in self.streams.values():
            data_stream.close()

    def train_iteration(self, stop_requested: bool = False) -> tuple[dict[str, Any], bool]:
        """One iteration: ``grad_accum`` micro-steps, then one update of G (and D).

        Args:
            stop_requested: This process received a stop signal (shared with the others).

        Returns:
            The metrics record of this step and whether any process asked to stop.

        Raises:
            TrainingDivergedError: If a loss is not finite (nothing is updated then).
        """
        config = self.config
        self.set_train_mode()
        self.optimizer_g.zero_grad(set_to_none=True)
        if self.optimizer_d is not None:
            self.optimizer_d.zero_grad(set_to_none=True)
        lr_g = self.scheduler_g.get_last_lr()[0]
        lr_d = self.scheduler_d.get_last_lr()[0] if self.scheduler_d is not None else None

        keys = (*self.method.stat_keys, "stop")
        stats = torch.zeros(len(keys), dtype=torch.float64, device=self.device)
        scale = 1.0 / config.grad_accum
        for index in range(config.grad_accum):
            sync = index == config.grad_accum - 1
            stats[:-1] += self.method.micro_step(self, index, sync, scale)
        stats[-1] = float(stop_requested)
        values = all_reduce_sum(stats, self.context).tolist()
        parts = config.grad_accum * self.context.world_size
        totals = dict(zip(keys, values, strict=True))

        record: dict[str, Any] = {"kind": "train", "step": self.step + 1}
        record.update(self.method.record(totals, parts))
        self._check_finite(record)
        self._update()
        record["lr_g"] = lr_g
        if lr_d is not None:
            record["lr_d"] = lr_d
        record["time"] = round(self.elapsed_seconds(), 3)
        return record, totals["stop"] > 0

    def _check_finite(self, record: dict[str, Any]) -> None:
        """Stop the run (before any update) when a loss is not finite."""
        for key in self.method.loss_keys:
            if not math.isfinite(record[key]):
                raise TrainingDivergedError(
                    f"{key} became {record[key]} at step {self.step + 1}; nothing was updated. "
                    f"The last good checkpoint is kept in {self.checkpoint_dir}. Lower --lr "
                    f"(now {self.config.lr}) or --lr-d, try --amp off, check the data, then "
                    "continue with --resume or restart with --force."
                )

    def _update(self) -> None:
        """Step the optimisers and schedules, move the data streams on, count the step."""
        self.optimizer_g.step()
        self.scheduler_g.step()
        if self.optimizer_d is not None and self.scheduler_d is not None:
            self.optimizer_d.step()
            self.scheduler_d.step()
        for data_stream in self.streams.values():
            data_stream.advance()
        self.step += 1

    def _after_step(self) -> bool:
        """Validate and write checkpoints when due; returns whether latest.pt was written."""
        config = self.config
        final = self.step >= config.iterations
        validate_now = self.val_set is not None and (
            final or (config.val_every > 0 and self.step % config.val_every == 0)
        )
        if validate_now:
            self._validate_and_keep_best()
        periodic = config.checkpoint_every > 0 and self.step % config.checkpoint_every == 0
        if config.keep_checkpoints and (periodic or final):
            self.save_step()
        if final or validate_now or periodic:
            self.save_latest()
            return True
        return False

    # ------------------------------------------------------------------ validation
    def _validate_and_keep_best(self) -> None:
        """Validate, log the result, and write ``best.pt`` when the mIoU improved."""
        metrics = self.run_validation()
        if self.log is not None:
            keys = ("miou", "pixel_accuracy", "mean_class_accuracy", "fwiou")
            self.log.write(
                {
                    "kind": "val",
                    "step": self.step,
                    **{key: metrics[key] for key in keys},
                    "per_class_iou": metrics["per_class_iou"],
                    "class_names": metrics["class_names"],
                    "time": round(self.elapsed_seconds(), 3),
                }
            )
        miou = metrics["miou"]
        if math.isfinite(miou) and miou > self.best_miou:
            self.best_miou = miou
            self.best_step = self.step
            self.save_best()
        if self.context.is_main:
            logger.info(
                "step %d: validation mIoU %.4f (best %.4f at step %s)",
                self.step,
                miou,
                self.best_miou,
                self.best_step,
            )

    def _sync_buffers(self) -> None:
        """Give every process rank 0's BatchNorm statistics (each saw different images)."""
        if self.context.enabled:
            for buffer in self.generator.buffers():
                dist.broadcast(buffer, src=0)

    def validation_window(self) -> int | None:
        """Sliding-window side for validation (None = whole images in one pass)."""
        return self.regime.window

    def run_validation(self) -> dict[str, Any]:
        """Validate the generator on the validation split and record the result."""
        assert self.val_set is not None
        self._sync_buffers()
        metrics = validate(
            self.generator,
            self.val_set,
            self.context,
            window=self.regime.window,
            overlap=self.regime.overlap,
            amp=self.amp,
            channels_last=self.channels_last,
            show_progress=self.show_progress,
        )
        self.set_train_mode()
        self.last_val = {"step": self.step, **metrics}
        return metrics

    # ------------------------------------------------------------------ checkpoints
    def _rng_states(self) -> list[dict[str, Any]]:
        """Every process's RNG state (collective: all processes must call it)."""
        state = capture_rng_state()
        if not self.context.enabled:
            return [state]
        gathered: list[Any] = [None] * self.context.world_size
        dist.all_gather_object(gathered, state)
        return gathered

    def model_payload(self) -> dict[str, Any]:
        """What ``best.pt`` holds (:func:`als4gan.train.checkpointing.model_payload`)."""
        return checkpointing.model_payload(self)

    def full_payload(self, rng_states: list[dict[str, Any]]) -> dict[str, Any]:
        """What ``latest.pt`` holds (:func:`als4gan.train.checkpointing.full_payload`)."""
        return checkpointing.full_payload(self, rng_states)

    def save_latest(self) -> None:
        """Write ``checkpoints/latest.pt`` (collective; the main process writes)."""
        self._sync_buffers()
        rng_states = self._rng_states()
        if self.context.is_main:
            save_checkpoint(self.checkpoint_dir / LATEST, self.full_payload(rng_states))

    def save_step(self) -> None:
        """Write ``checkpoints/step_<K>.pt``, the network at this step (main process)."""
        if self.context.is_main:
            save_checkpoint(
                self.checkpoint_dir / STEP_CHECKPOINT.format(step=self.step), self.model_payload()
            )

    def save_best(self) -> None:
        """Write ``checkpoints/best.pt`` (main process)."""
        if self.context.is_main:
            save_checkpoint(self.checkpoint_dir / BEST, self.model_payload())

    def load(self, path: str | Path) -> None:
        """Continue from a ``latest.pt`` written by :meth:`save_latest`.

        Raises:
            CheckpointError: If the file cannot be read or does not fit this run.
        """
        checkpointing.restore(self, path)

    # ------------------------------------------------------------------ the log
    def describe(self) -> str:
        """One paragraph on what is about to run (for the log)."""
        return describe_run(self)


__all__ = [
    "BEST",
    "BN_TRAINED_BACKBONES",
    "LABELLED_FILE",
    "LATEST",
    "STAT_KEYS",
    "STEP_CHECKPOINT",
    "UNLABELLED_FILE",
    "SeparatePasses",
    "StopRequests",
    "Trainer",
    "backbone_batchnorms",
    "batchnorm_frozen",
    "build_generator",
    "build_generator_with_weights",
    "move_network",
]
