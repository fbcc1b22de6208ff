"""What the trainer is built from: the checked data, its streams and the training wrappers.

Each builder is one step of :class:`als4gan.train.trainer.Trainer`'s construction, in the order
it runs: the labelled / unlabelled split and the validation set (every file checked before any
work), the data streams each method reads, then the modules the training step calls (the
method's wrapper of G, and DDP around G and D in a multi-process run).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn
from torch.nn.parallel import DistributedDataParallel

from als4gan.data import SegmentationDataset
from als4gan.distributed import DistributedContext
from als4gan.errors import DataError, DatasetNotFoundError
from als4gan.runtime import default_num_workers
from als4gan.train.config import TrainConfig
from als4gan.train.data import (
    DataStream,
    LabelledSplit,
    UnlabelledImages,
    build_split,
    check_batch_fits,
    make_augment,
    resolve_labelled_split,
)
from als4gan.train.methods import Method
from als4gan.train.samplers import InfiniteSeededSampler

logger = logging.getLogger("als4gan.train.trainer")

#: The labelled / unlabelled ids a run uses, written when it starts.
LABELLED_FILE = "train_labeled.txt"
UNLABELLED_FILE = "train_unlabeled.txt"


@dataclass
class TrainingData:
    """The training split, its labelled / unlabelled ids, the validation set and batch sizes.

    Attributes:
        train_set: The training split (labelled and unlabelled images).
        split: Which of its ids are labelled.
        val_set: The validation split (None without validation).
        fingerprint: The training split's fingerprint (guards ``--resume``).
        micro_batch: Images per process and accumulation step.
    """

    train_set: SegmentationDataset
    split: LabelledSplit
    val_set: SegmentationDataset | None
    fingerprint: str
    micro_batch: int


def build_data(
    config: TrainConfig,
    run_dir: Path,
    context: DistributedContext,
    method: Method,
    *,
    resume: bool,
) -> TrainingData:
    """The labelled / unlabelled split (stage 2 of docs/method.md) and the validation set.

    Raises:
        ConfigError / DataError / DatasetNotFoundError: On unusable options or data.
    """
    train_set = build_split(config, config.split)
    recorded = run_dir / LABELLED_FILE
    split = resolve_labelled_split(config, train_set.ids, run_dir, recorded if resume else None)
    if method.uses_unlabelled and not split.unlabelled:
        raise DataError(
            f"{config.method} needs unlabelled images, but all {len(split.labelled)} "
            "training images are labelled; use --method supervised or a smaller labelled set"
        )
    val_set = build_validation_set(config, context)
    fingerprint = check_readable(config, train_set, split, val_set)
    micro_batch = check_batch_fits(config, context.world_size)
    return TrainingData(train_set, split, val_set, fingerprint, micro_batch)


def build_validation_set(
    config: TrainConfig, context: DistributedContext
) -> SegmentationDataset | None:
    """The split that chooses ``best.pt`` (None with ``--val-every 0``)."""
    if config.val_every > 0 and config.val_split == "test" and context.is_main:
        logger.warning(
            "warning: choosing best.pt on the test split makes test results optimistic "
            "(defect 3 in docs/method.md); use a validation split"
        )
    if config.val_every <= 0:
        return None
    try:
        return build_split(config, config.val_split)
    except DatasetNotFoundError as err:
        raise DatasetNotFoundError(
            f"{err} Validation chooses best.pt: pass --val-split NAME (never the test "
            "split), or --val-every 0 to train without validation."
        ) from None


def check_readable(
    config: TrainConfig,
    train_set: SegmentationDataset,
    split: LabelledSplit,
    val_set: SegmentationDataset | None,
) -> str:
    """Check every file before any work, listing all problems at once; the split's fingerprint.

    Training images without a mask are unlabelled data; the labelled set needs masks.

    Raises:
        DataError: On unreadable files, or labelled images without a mask.
    """
    from als4gan.data.preflight import require_readable_samples

    fingerprint = require_readable_samples(
        train_set, f"the training split '{config.split}'", masks_optional=True
    ).fingerprint
    unmasked = [i for i in split.labelled if not train_set.has_mask(i)]
    if unmasked:
        raise DataError(
            f"{len(unmasked)} image(s) of the labelled set ({split.source}) have no "
            f"mask, e.g. '{unmasked[0]}'. Save their masks, or finish the selection first "
            "('als4gan select --status RUN' lists the ids still waiting)."
        )
    if val_set is not None:
        require_readable_samples(val_set, f"the validation split '{config.val_split}'")
    return fingerprint


def build_streams(
    config: TrainConfig, data: TrainingData, method: Method, context: DistributedContext
) -> dict[str, DataStream]:
    """``labelled`` plus the method's streams, each in its own seeded, resumable order."""
    num_workers = default_num_workers() if config.num_workers is None else config.num_workers
    augment = make_augment(config)
    pin = context.device.type == "cuda"

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

    labelled_set = data.train_set.subset(data.split.labelled)
    streams = {"labelled": stream("labelled", labelled_set, len(labelled_set))}
    for name, kind in method.streams.items():
        if kind == "labelled":
            streams[name] = stream(name, labelled_set, len(labelled_set))
        else:
            unlabelled_set = data.train_set.subset(data.split.unlabelled)
            images = UnlabelledImages(unlabelled_set, with_truth=method.wants_truth(config))
            streams[name] = stream(name, images, len(unlabelled_set))
    return streams


def training_modules(
    method: Method,
    generator: nn.Module,
    discriminator: nn.Module | None,
    context: DistributedContext,
) -> tuple[nn.Module, nn.Module | None]:
    """The modules the step calls: the method's wrapper of G and D, in DDP when multi-process.

    The method's wrapper makes all of G's passes of a micro-step one module call (s4GAN:
    separate labelled / unlabelled passes), so DDP sees a single forward per backward; DDP
    averages the gradients over processes.
    """
    g_train = method.wrap(generator)
    d_train = discriminator
    if context.enabled:
        device_ids = [context.device.index] if context.device.type == "cuda" else None
        g_train = DistributedDataParallel(g_train, device_ids=device_ids)
        if discriminator is not None:
            d_train = DistributedDataParallel(discriminator, device_ids=device_ids)
    return g_train, d_train
