"""The training loop (stage 2 of docs/method.md) that every method shares, explicit throughout.

The trainer owns data, networks, optimisers, checkpoints, validation, DDP and gradient
accumulation. What one micro-batch computes is the method's (:mod:`als4gan.train.methods`:
s4GAN's steps 1-7, the supervised baseline's step 1, UniMatch's weak-to-strong consistency);
each iteration runs ``grad_accum`` micro-steps, then one SGD step for G (and one Adam step for
s4GAN's D), each with polynomial decay. Images are in [0, 1] everywhere, so D sees them as they
are (no per-batch min/max rescaling: defect 6 in docs/method.md).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import time
from pathlib import Path
from types import FrameType
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from als4gan.checkpoint import (
    CHECKPOINT_DIR,
    load_checkpoint,
    preprocessing_record,
    save_checkpoint,
)
from als4gan.config import config_to_dict
from als4gan.errors import ConfigError, DataError, DatasetNotFoundError, TrainingDivergedError
from als4gan.models import S4GANDiscriminator, build_segmentation_model
from als4gan.models.weights import (
    MIN_LOADED_FRACTION,
    PretrainedLoad,
    find_backbone,
    load_pretrained,
)
from als4gan.regime import aspp_warning, training_regime
from als4gan.runtime import (
    configure_determinism,
    default_num_workers,
    derive_seed,
    progress,
    resolve_amp,
    use_channels_last,
)
from als4gan.train.config import TrainConfig
from als4gan.train.data import (
    DataStream,
    UnlabelledImages,
    build_split,
    check_batch_fits,
    make_augment,
    resolve_labelled_split,
)
from als4gan.train.distributed import DistributedContext, all_reduce_sum
from als4gan.train.methods import Method, build_method
from als4gan.train.methods.s4gan import S4GAN, SeparatePasses
from als4gan.train.records import (
    METRICS_FILE,
    MetricsLog,
    check_tensorboard,
    truncate_records,
)
from als4gan.train.samplers import InfiniteSeededSampler
from als4gan.train.schedules import (
    PolyLR,
    build_discriminator_optimizer,
    build_generator_optimizer,
)
from als4gan.train.state import capture_rng_state, restore_rng_state
from als4gan.train.validate import validate

logger = logging.getLogger(__name__)

LATEST = "latest.pt"
BEST = "best.pt"
#: Name of the per-step network kept with ``--keep-checkpoints``.
STEP_CHECKPOINT = "step_{step:07d}.pt"
#: The labelled / unlabelled ids a run uses, written when it starts.
LABELLED_FILE = "train_labeled.txt"
UNLABELLED_FILE = "train_unlabeled.txt"

#: s4GAN's per-iteration statistics, summed over accumulation steps and processes (each
#: method's are its ``stat_keys`` followed by ``stop``).
STAT_KEYS = (*S4GAN.stat_keys, "stop")


#: Backbones whose BatchNorm ``--freeze-bn auto`` trains even with pretrained weights.
BN_TRAINED_BACKBONES = frozenset({"mobilenet_v2"})


def batchnorm_frozen(config: TrainConfig, loaded: PretrainedLoad | bool | None = True) -> bool:
    """Resolve ``--freeze-bn``: auto freezes only when pretrained ResNet weights were loaded.

    MobileNetV2 keeps training its BatchNorm under ``auto``: without normalisation its
    depthwise layers fine-tuned unstably (on DeepGlobe with 9 labelled images, frozen BatchNorm
    diverged at lr 0.0025 and reached validation mIoU 0.29 at lr 0.0005, where trained
    BatchNorm reached 0.36 at lr 0.0025 in 100 iterations; docs/training.md).

    Args:
        config: The run's options.
        loaded: What the load of ``--pretrained`` did (None: nothing loaded); ``True`` when not
            known yet (then ``--pretrained`` decides).
    """
    if config.freeze_bn == "auto":
        if config.backbone in BN_TRAINED_BACKBONES:
            return False
        if loaded is None or loaded is False:
            return False
        if isinstance(loaded, PretrainedLoad):
            return loaded.fraction >= MIN_LOADED_FRACTION
        return str(config.pretrained).lower() not in ("none", "", "random")
    return config.freeze_bn == "on"


def backbone_batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers of the model's backbone (the pretrained part)."""
    backbone = getattr(model, "backbone", model)
    return [m for m in backbone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def build_generator(
    config: TrainConfig, num_classes: int, in_channels: int
) -> tuple[nn.Module, dict[str, Any]]:
    """The segmentation network G and its ``model_spec`` (what checkpoints record).

    Initialisation draws from a generator seeded by the run seed, without touching the global
    random state. See :func:`build_generator_with_weights` for what the pretrained load did.
    """
    model, spec, _ = build_generator_with_weights(config, num_classes, in_channels)
    return model, spec


def build_generator_with_weights(
    config: TrainConfig, num_classes: int, in_channels: int
) -> tuple[nn.Module, dict[str, Any], PretrainedLoad | None]:
    """:func:`build_generator` plus what loading ``--pretrained`` did (None: random init).

    BatchNorm of the backbone is frozen according to ``--freeze-bn`` and what actually loaded.
    """
    spec: dict[str, Any] = {
        "arch": config.arch,
        "backbone": config.backbone,
        "num_classes": num_classes,
        "in_channels": in_channels,
        **config.model_options(),
    }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(config.seed, "init", "generator"))
        model = build_segmentation_model(**spec)
    loaded = load_pretrained(find_backbone(model), config.pretrained, config.backbone)
    if batchnorm_frozen(config, loaded):
        for layer in backbone_batchnorms(model):
            layer.requires_grad_(False)
    return model, spec, loaded


def move_network(network: nn.Module, device: torch.device, channels_last: bool) -> None:
    """Move ``network`` to ``device``, in channels_last memory format when asked."""
    network.to(device)
    if channels_last:
        network.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


def backward(loss: torch.Tensor) -> None:
    """``loss.backward()`` (a typed wrapper)."""
    loss.backward()  # type: ignore[no-untyped-call]


class StopRequests:
    """SIGINT/SIGTERM set a flag that the loop checks between iterations (a second SIGINT aborts).

    Stopping at an iteration boundary lets the trainer write a consistent ``latest.pt`` that
    ``--resume`` continues exactly. Handlers are only installed in the main thread. DataLoader
    worker processes inherit the handler (and receive the terminal's Ctrl-C too): there it does
    nothing, so the message is printed once, by the process that installed it.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}
        self._pid = os.getpid()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if os.getpid() != self._pid:
            return  # a forked worker: the main process stops the loop and the workers with it
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        logger.warning(
            "\nstop requested: finishing this iteration and saving checkpoints/latest.pt "
            "(press Ctrl-C again to abort without saving)"
        )

    def __enter__(self) -> StopRequests:
        import threading

        self._pid = os.getpid()
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


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
        self.method: Method = build_method(config)
        if context.is_main:
            check_tensorboard(config.tensorboard)  # fail before any work when it is required
        configure_determinism(config.deterministic, self.device)

        # ---- data: labelled / unlabelled split of the training images (stage 2 of docs/method.md)
        self.train_set = build_split(config, config.split)
        recorded = self.run_dir / LABELLED_FILE
        self.split = resolve_labelled_split(
            config, self.train_set.ids, self.run_dir, recorded if resume else None
        )
        if self.method.uses_unlabelled and not self.split.unlabelled:
            raise DataError(
                f"{config.method} needs unlabelled images, but all {len(self.split.labelled)} "
                "training images are labelled; use --method supervised or a smaller labelled set"
            )
        self.num_classes = self.train_set.num_classes
        self.val_set = None
        if config.val_every > 0 and config.val_split == "test" and context.is_main:
            logger.warning(
                "warning: choosing best.pt on the test split makes test results optimistic "
                "(defect 3 in docs/method.md); use a validation split"
            )
        if config.val_every > 0:
            try:
                self.val_set = build_split(config, config.val_split)
            except DatasetNotFoundError as err:
                raise DatasetNotFoundError(
                    f"{err} Validation chooses best.pt: pass --val-split NAME (never the test "
                    "split), or --val-every 0 to train without validation."
                ) from None
        # Every file is checked before any work, all problems listed at once (not a worker
        # traceback mid-run); the training split's fingerprint guards --resume.
        from als4gan.data.preflight import require_readable_samples

        # Training images without a mask are unlabelled data; the labelled set needs masks.
        self.data_fingerprint = require_readable_samples(
            self.train_set, f"the training split '{config.split}'", masks_optional=True
        ).fingerprint
        unmasked = [i for i in self.split.labelled if not self.train_set.has_mask(i)]
        if unmasked:
            raise DataError(
                f"{len(unmasked)} image(s) of the labelled set ({self.split.source}) have no "
                f"mask, e.g. '{unmasked[0]}'. Save their masks, or finish the selection first "
                "('als4gan select --status RUN' lists the ids still waiting)."
            )
        if self.val_set is not None:
            require_readable_samples(self.val_set, f"the validation split '{config.val_split}'")
        self.micro_batch = check_batch_fits(config, context.world_size)
        num_workers = default_num_workers() if config.num_workers is None else config.num_workers
        augment = make_augment(config)
        pin = self.device.type == "cuda"

        def stream(name: str, dataset: Any, num_samples: int) -> DataStream:
            sampler = InfiniteSeededSampler(
                num_samples,
                config.batch_size,
                config.seed,
                name,
                rank=context.rank,
                world_size=context.world_size,
                accumulation=config.grad_accum,
            )
            return DataStream(dataset, sampler, augment, num_workers, pin)

        labelled_set = self.train_set.subset(self.split.labelled)
        self.streams: dict[str, DataStream] = {
            "labelled": stream("labelled", labelled_set, len(labelled_set))
        }
        for name, kind in self.method.streams.items():
            if kind == "labelled":
                self.streams[name] = stream(name, labelled_set, len(labelled_set))
            else:
                unlabelled_set = self.train_set.subset(self.split.unlabelled)
                images = UnlabelledImages(
                    unlabelled_set, with_truth=self.method.wants_truth(config)
                )
                self.streams[name] = stream(name, images, len(unlabelled_set))

        # ---- networks
        in_channels = self.train_set.in_channels
        self.generator, self.model_spec, self.pretrained_load = build_generator_with_weights(
            config, self.num_classes, in_channels
        )
        self.bn_frozen = batchnorm_frozen(config, self.pretrained_load)
        # How validation segments images; recorded in the checkpoints so that 'als4gan
        # evaluate' scores the test split the same way by default.
        self.regime = training_regime(config.val_window, config.crop_size)
        if context.is_main:
            warning = aspp_warning(
                self.generator, config.crop_size, config.resolved_output_stride()
            )
            if warning:
                logger.warning(warning)
        self.discriminator: S4GANDiscriminator | None = None
        if self.method.uses_discriminator:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(derive_seed(config.seed, "init", "discriminator"))
                self.discriminator = S4GANDiscriminator(self.num_classes, in_channels)
        if config.sync_bn and context.enabled:
            if self.device.type != "cuda":
                raise ConfigError(
                    "--sync-bn needs CUDA devices (torch's SyncBatchNorm is GPU-only); "
                    "drop it for CPU processes"
                )
            if self.bn_frozen:
                logger.info("--sync-bn has no effect with frozen BatchNorm")
            self.generator = nn.SyncBatchNorm.convert_sync_batchnorm(self.generator)  # type: ignore[no-untyped-call]
        for network in (self.generator, self.discriminator):
            if network is not None:
                move_network(network, self.device, self.channels_last)

        # ---- optimisers (paper: SGD for G with head multipliers, Adam for D; poly decay)
        self.optimizer_g = build_generator_optimizer(self.generator, config)
        self.scheduler_g = PolyLR(self.optimizer_g, config.iterations, config.power)
        self.optimizer_d: torch.optim.Optimizer | None = None
        self.scheduler_d: PolyLR | None = None
        if self.discriminator is not None:
            self.optimizer_d = build_discriminator_optimizer(self.discriminator, config)
            self.scheduler_d = PolyLR(self.optimizer_d, config.iterations, config.power)

        # ---- multi-process wrappers (gradients averaged over processes by DDP). The method's
        # wrapper makes all of G's passes of a micro-step one module call (s4GAN: separate
        # labelled / unlabelled passes), so DDP sees a single forward per backward.
        self.g_train: nn.Module = self.method.wrap(self.generator)
        self.d_train: nn.Module | None = self.discriminator
        if context.enabled:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.g_train = DistributedDataParallel(self.g_train, device_ids=device_ids)
            if self.discriminator is not None:
                self.d_train = DistributedDataParallel(self.discriminator, device_ids=device_ids)

        # D's dropout draws from the global generator: seed it from the run seed, per process.
        torch.manual_seed(derive_seed(config.seed, "train", context.rank))

        # ---- progress state
        self.step = 0
        self.best_miou = -math.inf
        self.best_step: int | None = None
        self.last_val: dict[str, Any] | None = None
        self.elapsed = 0.0
        self._clock_start = time.perf_counter()
        self.log: MetricsLog | None = None

    # ------------------------------------------------------------------ helpers
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

    def _elapsed(self) -> float:
        return self.elapsed + time.perf_counter() - self._clock_start

    # ------------------------------------------------------------------ one iteration
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
        for key in self.method.loss_keys:
            if not math.isfinite(record[key]):
                raise TrainingDivergedError(
                    f"{key} became {record[key]} at step {self.step + 1}; nothing was updated. "
                    f"The last good checkpoint is kept in {self.checkpoint_dir}. Lower --lr "
                    f"(now {config.lr}) or --lr-d, try --amp off, check the data, then continue "
                    "with --resume or restart with --force."
                )

        self.optimizer_g.step()
        self.scheduler_g.step()
        if self.optimizer_d is not None and self.scheduler_d is not None:
            self.optimizer_d.step()
            self.scheduler_d.step()
        for data_stream in self.streams.values():
            data_stream.advance()
        self.step += 1
        record["lr_g"] = lr_g
        if lr_d is not None:
            record["lr_d"] = lr_d
        record["time"] = round(self._elapsed(), 3)
        return record, totals["stop"] > 0

    # ------------------------------------------------------------------ validation
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
        """What ``best.pt`` holds: the network and how to rebuild it (no trainer state)."""
        return {
            "kind": "segmentation",
            "model_spec": dict(self.model_spec),
            "dataset": self.train_set.describe(),
            "preprocessing": preprocessing_record(
                self.train_set.preprocessing(), int(self.model_spec.get("in_channels", 3))
            ),
            "model": self.generator.state_dict(),
            "step": self.step,
            "config": config_to_dict(self.config),
            "metrics": self.last_val,
            "inference": self.regime.to_dict(),
            "method": self.config.method,
            "labelled": {"source": self.split.source, "count": len(self.split.labelled)},
            "pretrained_weights": (
                self.pretrained_load.record() if self.pretrained_load is not None else None
            ),
        }

    def full_payload(self, rng_states: list[dict[str, Any]]) -> dict[str, Any]:
        """What ``latest.pt`` holds: :meth:`model_payload` plus everything to resume exactly."""
        payload = self.model_payload()
        payload["trainer"] = {
            "discriminator": (
                self.discriminator.state_dict() if self.discriminator is not None else None
            ),
            "optimizer_g": self.optimizer_g.state_dict(),
            "optimizer_d": self.optimizer_d.state_dict() if self.optimizer_d else None,
            "scheduler_g": self.scheduler_g.state_dict(),
            "scheduler_d": self.scheduler_d.state_dict() if self.scheduler_d else None,
            "streams": {name: data.state_dict() for name, data in self.streams.items()},
            "method": self.method.state_dict(),
            "rng": rng_states,
            "world_size": self.context.world_size,
            "best_miou": self.best_miou if math.isfinite(self.best_miou) else None,
            "best_step": self.best_step,
            "elapsed": self._elapsed(),
        }
        return payload

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
        from als4gan.errors import CheckpointError

        checkpoint = load_checkpoint(path)
        trainer = checkpoint.get("trainer")
        if not isinstance(trainer, dict):
            raise CheckpointError(
                f"{path} holds no trainer state (a best.pt?); resume from checkpoints/{LATEST}"
            )
        if checkpoint.get("model_spec") != self.model_spec:
            raise CheckpointError(
                f"{path} holds a {checkpoint.get('model_spec')} network but this run builds "
                f"{self.model_spec}"
            )
        self.generator.load_state_dict(checkpoint["model"])
        if self.discriminator is not None:
            if trainer.get("discriminator") is None:
                raise CheckpointError(f"{path} is a supervised run; it cannot resume as s4GAN")
            self.discriminator.load_state_dict(trainer["discriminator"])
        self.optimizer_g.load_state_dict(trainer["optimizer_g"])
        self.scheduler_g.load_state_dict(trainer["scheduler_g"])
        if self.optimizer_d is not None and self.scheduler_d is not None:
            self.optimizer_d.load_state_dict(trainer["optimizer_d"])
            self.scheduler_d.load_state_dict(trainer["scheduler_d"])
        missing = sorted(set(self.streams) - set(trainer["streams"]))
        if missing:
            raise CheckpointError(
                f"{path} was written by another method (no '{missing[0]}' data stream); "
                f"resume it with its own --method, or start this one with --force"
            )
        for name, data_stream in self.streams.items():
            data_stream.load_state_dict(trainer["streams"][name])
        self.method.load_state_dict(trainer.get("method") or {})
        states = trainer.get("rng") or []
        if len(states) == self.context.world_size:
            restore_rng_state(states[self.context.rank])
        else:  # another number of processes: fresh, still seeded, dropout streams
            torch.manual_seed(derive_seed(self.config.seed, "train", self.context.rank, "resumed"))
        self.step = int(checkpoint["step"])
        best = trainer.get("best_miou")
        self.best_miou = float(best) if best is not None else -math.inf
        self.best_step = trainer.get("best_step")
        self.last_val = checkpoint.get("metrics")
        self.elapsed = float(trainer.get("elapsed", 0.0))
        self._clock_start = time.perf_counter()

    # ------------------------------------------------------------------ the loop
    def describe(self) -> str:
        """One paragraph on what is about to run (for the log)."""
        config = self.config
        labelled, unlabelled = len(self.split.labelled), len(self.split.unlabelled)
        data = (
            f"{labelled} labelled / {unlabelled} unlabelled training images"
            if self.method.uses_unlabelled
            else f"{labelled} labelled training images ({unlabelled} unlabelled ones not used)"
        )
        data += f" (labelled set: {self.split.source})"
        precision = "bf16 autocast" if self.amp else "fp32"
        layout = "channels_last" if self.channels_last else "contiguous"
        processes = f", {self.context.world_size} processes" if self.context.enabled else ""
        return (
            f"{config.method}: {data}\n"
            f"{config.arch} {config.backbone} (pretrained: {self._weights_text()}, BatchNorm "
            f"{'frozen' if self.bn_frozen else 'trained'}), {self.num_classes} classes; "
            f"{config.iterations} iterations of batch {config.batch_size} at "
            f"{config.crop_size}px (micro-batch {self.micro_batch} x {config.grad_accum} "
            f"accumulation{processes}); device {self.device}, {precision}, {layout}\n"
            f"validation (and 'als4gan evaluate' by default): {self.regime.describe()}"
        )

    def _weights_text(self) -> str:
        """``--pretrained`` as resolved (name, file hash, tensors loaded)."""
        load = self.pretrained_load
        if load is None:
            return "none"
        name = load.spec if load.entry is None else f"{load.spec} = {load.entry}"
        return f"{name}, sha256 {load.sha256[:12]}, {load.loaded}/{load.expected} tensors"

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
        stopped_by_signal = False
        saved = True
        self._clock_start = time.perf_counter()
        try:
            with StopRequests() as stop:
                while self.step < end and not stopped_by_signal:
                    record, stopped_by_signal = self.train_iteration(stop.requested)
                    if self.log is not None:
                        self.log.write(record)
                    bar.set_postfix(_postfix(record), refresh=False)
                    bar.update(1)
                    saved = self._after_step()
                if not saved:
                    self.save_latest()  # a stop signal or --stop-after: a resumable pause
        finally:
            bar.close()
            if self.log is not None:
                self.log.close()
            for data_stream in self.streams.values():
                data_stream.close()
        return {
            "step": self.step,
            "finished": self.step >= config.iterations,
            "stopped_by_signal": stopped_by_signal,
            "best_miou": self.best_miou if math.isfinite(self.best_miou) else None,
            "best_step": self.best_step,
            "last_val": self.last_val,
        }

    def _after_step(self) -> bool:
        """Validate and write checkpoints when due; returns whether latest.pt was written."""
        config = self.config
        final = self.step >= config.iterations
        validate_now = self.val_set is not None and (
            final or (config.val_every > 0 and self.step % config.val_every == 0)
        )
        if validate_now:
            metrics = self.run_validation()
            if self.log is not None:
                self.log.write(
                    {
                        "kind": "val",
                        "step": self.step,
                        "miou": metrics["miou"],
                        "pixel_accuracy": metrics["pixel_accuracy"],
                        "mean_class_accuracy": metrics["mean_class_accuracy"],
                        "fwiou": metrics["fwiou"],
                        "per_class_iou": metrics["per_class_iou"],
                        "class_names": metrics["class_names"],
                        "time": round(self._elapsed(), 3),
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
        periodic = config.checkpoint_every > 0 and self.step % config.checkpoint_every == 0
        if config.keep_checkpoints and (periodic or final):
            self.save_step()
        if final or validate_now or periodic:
            self.save_latest()
            return True
        return False


def _postfix(record: dict[str, Any]) -> dict[str, str]:
    """Short progress-bar fields: losses and D's accept rate."""
    short = {
        "loss_ce": "ce",
        "loss_fm": "fm",
        "loss_st": "st",
        "loss_d": "d",
        "loss_u_s1": "s1",
        "loss_u_fp": "fp",
    }
    fields = {label: f"{record[key]:.3f}" for key, label in short.items() if key in record}
    if "accept_rate" in record:
        fields["acc"] = f"{record['accept_rate']:.2f}"
    if "pseudo_coverage" in record:
        fields["cov"] = f"{record['pseudo_coverage']:.2f}"
    return fields


__all__ = [
    "BEST",
    "LABELLED_FILE",
    "LATEST",
    "STAT_KEYS",
    "STEP_CHECKPOINT",
    "UNLABELLED_FILE",
    "SeparatePasses",
    "Trainer",
    "batchnorm_frozen",
    "build_generator",
    "build_generator_with_weights",
]
