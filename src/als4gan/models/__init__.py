"""Networks: segmentation models (registry), the s4GAN discriminator, classifiers, weights."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from als4gan.errors import ConfigError
from als4gan.models.backbones import BACKBONES, build_backbone
from als4gan.models.classifier import ImageClassifier
from als4gan.models.deeplab import DeepLabV2
from als4gan.models.deeplabv3plus import DeepLabV3Plus
from als4gan.models.discriminator import S4GANDiscriminator
from als4gan.models.mobilenet import MobileNetV2
from als4gan.models.resnet import ResNet
from als4gan.models.weights import PretrainedLoad, find_backbone, load_pretrained

#: Segmentation architecture name -> constructor(backbone=, num_classes=, in_channels=, ...).
SEGMENTATION_MODELS: dict[str, Callable[..., nn.Module]] = {
    "deeplabv2": DeepLabV2,
    "deeplabv3plus": DeepLabV3Plus,
}


def build_segmentation_model(
    arch: str = "deeplabv2",
    backbone: str = "resnet101",
    num_classes: int = 6,
    in_channels: int = 3,
    pretrained: str | None = None,
    rgb: Sequence[int] | None = None,
    **options: Any,
) -> nn.Module:
    """Create a segmentation network; optionally load pretrained backbone weights.

    Args:
        arch: A key of :data:`SEGMENTATION_MODELS`.
        backbone: A key of :data:`BACKBONES`.
        num_classes: Output classes.
        in_channels: Input bands.
        pretrained: ``None``/``"none"``, a registry name (``"imagenet"``), a file or run folder
            (see :func:`als4gan.models.weights.load_pretrained`).
        rgb: 0-based positions of the R, G, B bands in the input (default: the first three).
        **options: Architecture options (e.g. ``output_stride``, ``multi_scale``, ``rates``).

    Raises:
        ConfigError: On an unknown architecture or backbone (lists the valid names).
        CheckpointError: If ``pretrained`` names a missing or unusable file.
    """
    if arch not in SEGMENTATION_MODELS:
        raise ConfigError(
            f"unknown architecture '{arch}'. Choose one of: {', '.join(SEGMENTATION_MODELS)}"
        )
    if backbone not in BACKBONES:
        raise ConfigError(f"unknown backbone '{backbone}'. Choose one of: {', '.join(BACKBONES)}")
    model = SEGMENTATION_MODELS[arch](
        backbone=backbone, num_classes=num_classes, in_channels=in_channels, **options
    )
    load_pretrained(find_backbone(model), pretrained, backbone, rgb)
    return model


def build_classifier(
    backbone: str = "resnet50",
    num_classes: int = 6,
    in_channels: int = 3,
    pretrained: str | None = None,
    dropout: float = 0.0,
    rgb: Sequence[int] | None = None,
) -> ImageClassifier:
    """Create the image-level acquisition classifier (see :func:`build_segmentation_model`)."""
    if backbone not in BACKBONES:
        raise ConfigError(f"unknown backbone '{backbone}'. Choose one of: {', '.join(BACKBONES)}")
    model = ImageClassifier(backbone, num_classes, in_channels, dropout=dropout)
    load_pretrained(model.backbone, pretrained, backbone, rgb)
    return model


__all__ = [
    "BACKBONES",
    "SEGMENTATION_MODELS",
    "DeepLabV2",
    "DeepLabV3Plus",
    "ImageClassifier",
    "MobileNetV2",
    "PretrainedLoad",
    "ResNet",
    "S4GANDiscriminator",
    "build_backbone",
    "build_classifier",
    "build_segmentation_model",
    "load_pretrained",
]
