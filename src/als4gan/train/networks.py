"""The networks a run trains: G (with its pretrained weights and BatchNorm policy) and s4GAN's D.

Each network's initialisation draws from a generator seeded by the run seed, without touching
the global random state, so building one never shifts another's (or the data order's) draws.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from als4gan.distributed import DistributedContext
from als4gan.errors import ConfigError
from als4gan.models import S4GANDiscriminator, build_segmentation_model
from als4gan.models.weights import (
    MIN_LOADED_FRACTION,
    PretrainedLoad,
    find_backbone,
    load_pretrained,
)
from als4gan.runtime import derive_seed, maybe_compile
from als4gan.train.config import TrainConfig

logger = logging.getLogger("als4gan.train.trainer")

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


def build_discriminator(
    config: TrainConfig, num_classes: int, in_channels: int
) -> S4GANDiscriminator:
    """s4GAN's discriminator D, initialised from the run seed (global random state untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(config.seed, "init", "discriminator"))
        return S4GANDiscriminator(num_classes, in_channels)


def sync_batchnorm(
    generator: nn.Module, config: TrainConfig, context: DistributedContext, frozen: bool
) -> nn.Module:
    """G with SyncBatchNorm when ``--sync-bn`` is given to a multi-process run.

    Raises:
        ConfigError: On CPU processes (torch's SyncBatchNorm is GPU-only).
    """
    if not (config.sync_bn and context.enabled):
        return generator
    if context.device.type != "cuda":
        raise ConfigError(
            "--sync-bn needs CUDA devices (torch's SyncBatchNorm is GPU-only); "
            "drop it for CPU processes"
        )
    if frozen:
        logger.info("--sync-bn has no effect with frozen BatchNorm")
    converted: nn.Module = nn.SyncBatchNorm.convert_sync_batchnorm(generator)  # type: ignore[no-untyped-call]
    return converted


def move_network(network: nn.Module, device: torch.device, channels_last: bool) -> None:
    """Move ``network`` to ``device``, in channels_last memory format when asked."""
    network.to(device)
    if channels_last:
        network.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


@dataclass
class Networks:
    """G, what it was built from and with, and D (None unless the method uses it)."""

    generator: nn.Module
    spec: dict[str, Any]
    pretrained_load: PretrainedLoad | None
    bn_frozen: bool
    discriminator: S4GANDiscriminator | None


def build_networks(
    config: TrainConfig,
    num_classes: int,
    in_channels: int,
    context: DistributedContext,
    *,
    with_discriminator: bool,
    channels_last: bool,
    compiled: bool,
) -> Networks:
    """G (and D), on the run's device and memory format, compiled when asked (``--compile``)."""
    generator, spec, loaded = build_generator_with_weights(config, num_classes, in_channels)
    frozen = batchnorm_frozen(config, loaded)
    discriminator = None
    if with_discriminator:
        discriminator = build_discriminator(config, num_classes, in_channels)
    generator = sync_batchnorm(generator, config, context, frozen)
    for network in (generator, discriminator):
        if network is not None:
            move_network(network, context.device, channels_last)
            maybe_compile(network, compiled)
    return Networks(generator, spec, loaded, frozen, discriminator)
