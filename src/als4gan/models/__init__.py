"""Networks: segmentation models (registry), the s4GAN discriminator, classifiers, weights."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from als4gan.errors import ConfigError
from als4gan.models.classifier import ImageClassifier
from als4gan.models.deeplab import DeepLabV2
from als4gan.models.deeplabv3plus import DeepLabV3Plus
from als4gan.models.discriminator import S4GANDiscriminator
from als4gan.models.resnet import RESNET_SPECS, ResNet
from als4gan.models.weights import find_backbone, load_backbone_weights, resolve_pretrained

#: Segmentation architecture name -> constructor(backbone=, num_classes=, in_channels=, ...).
SEGMENTATION_MODELS: dict[str, Callable[..., nn.Module]] = {
    "deeplabv2": DeepLabV2,
    "deeplabv3plus": DeepLabV3Plus,
}

BACKBONES: tuple[str, ...] = tuple(RESNET_SPECS)


def build_segmentation_model(
    arch: str = "deeplabv2",
    backbone: str = "resnet101",
    num_classes: int = 6,
    in_channels: int = 3,
    pretrained: str | None = None,
    **options: Any,
) -> nn.Module:
    """Create a segmentation network; optionally load backbone weights from a local file.

    Args:
        arch: A key of :data:`SEGMENTATION_MODELS`.
        backbone: A key of :data:`RESNET_SPECS`.
        num_classes: Output classes.
        in_channels: Input bands.
        pretrained: ``None``/``"none"``, ``"imagenet"`` (torch hub cache), or a file path.
        **options: Architecture options (e.g. ``output_stride``, ``multi_scale``, ``rates``).

    Raises:
        ConfigError: On an unknown architecture or backbone (lists the valid names).
        CheckpointError: If ``pretrained`` names a missing or unusable file.
    """
    if arch not in SEGMENTATION_MODELS:
        raise ConfigError(
            f"unknown architecture '{arch}'. Choose one of: {', '.join(SEGMENTATION_MODELS)}"
        )
    if backbone not in RESNET_SPECS:
        raise ConfigError(f"unknown backbone '{backbone}'. Choose one of: {', '.join(BACKBONES)}")
    model = SEGMENTATION_MODELS[arch](
        backbone=backbone, num_classes=num_classes, in_channels=in_channels, **options
    )
    path = resolve_pretrained(pretrained, backbone)
    if path is not None:
        load_backbone_weights(find_backbone(model), path)
    return model


def build_classifier(
    backbone: str = "resnet50",
    num_classes: int = 6,
    in_channels: int = 3,
    pretrained: str | None = None,
    dropout: float = 0.0,
) -> ImageClassifier:
    """Create the image-level acquisition classifier (see :func:`build_segmentation_model`)."""
    if backbone not in RESNET_SPECS:
        raise ConfigError(f"unknown backbone '{backbone}'. Choose one of: {', '.join(BACKBONES)}")
    model = ImageClassifier(backbone, num_classes, in_channels, dropout=dropout)
    path = resolve_pretrained(pretrained, backbone)
    if path is not None:
        load_backbone_weights(model.backbone, path)
    return model


__all__ = [
    "BACKBONES",
    "SEGMENTATION_MODELS",
    "DeepLabV2",
    "DeepLabV3Plus",
    "ImageClassifier",
    "ResNet",
    "S4GANDiscriminator",
    "build_classifier",
    "build_segmentation_model",
]
