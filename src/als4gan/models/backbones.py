"""The backbone registry: ResNet-18/34/50/101 and MobileNetV2, built for a head.

Every backbone offers ``forward_features(x) -> {"low", "out"}`` (stride-4 features and the last
ones), ``forward(x)`` (pooled features), ``out_channels``, ``low_level_channels``, ``name`` and
``first_conv`` (the convolution that sees the image bands).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from als4gan.errors import ConfigError
from als4gan.models.mobilenet import MobileNetV2
from als4gan.models.resnet import RESNET_SPECS, ResNet

#: Any backbone built by :func:`build_backbone`.
Backbone = ResNet | MobileNetV2


def _resnet(name: str) -> Callable[[int, int, bool], Backbone]:
    def build(in_channels: int, output_stride: int, segmentation: bool) -> Backbone:
        dilation = {8: (False, True, True), 16: (False, False, True), 32: (False, False, False)}
        return ResNet(
            name,
            num_classes=0,
            in_channels=in_channels,
            replace_stride_with_dilation=dilation[output_stride],
        )

    return build


def _mobilenet_v2(in_channels: int, output_stride: int, segmentation: bool) -> Backbone:
    # DeepLab heads use features.17 (320 channels); the classifier keeps features.18 (1280).
    return MobileNetV2(in_channels, output_stride, include_last=not segmentation)


#: Backbone name -> builder(in_channels, output_stride, segmentation).
BACKBONE_BUILDERS: dict[str, Callable[[int, int, bool], Backbone]] = {
    **{name: _resnet(name) for name in RESNET_SPECS},
    "mobilenet_v2": _mobilenet_v2,
}

BACKBONES: tuple[str, ...] = tuple(BACKBONE_BUILDERS)


def build_backbone(
    name: str, in_channels: int = 3, output_stride: int = 32, segmentation: bool = False
) -> Backbone:
    """Create a backbone without classification head.

    Args:
        name: A key of :data:`BACKBONE_BUILDERS`.
        in_channels: Input bands.
        output_stride: 32 (classifier), 16 or 8 (dilated last stages, for segmentation).
        segmentation: Build it for a segmentation head (MobileNetV2 then ends at 320 channels).

    Raises:
        ConfigError: On an unknown name (lists the valid ones).
    """
    if name not in BACKBONE_BUILDERS:
        raise ConfigError(f"unknown backbone '{name}'. Choose one of: {', '.join(BACKBONES)}")
    if output_stride not in (8, 16, 32):
        raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
    return BACKBONE_BUILDERS[name](in_channels, output_stride, segmentation)


def first_conv(backbone: nn.Module) -> nn.Conv2d:
    """The convolution of ``backbone`` that sees the image bands."""
    conv = backbone.conv1 if isinstance(backbone, ResNet) else getattr(backbone, "first_conv", None)
    if not isinstance(conv, nn.Conv2d):
        raise TypeError(f"{type(backbone).__name__} has no first convolution")
    return conv


def first_conv_key(backbone: nn.Module) -> str:
    """State-dict key of the first convolution's weight."""
    return "conv1.weight" if isinstance(backbone, ResNet) else "features.0.0.weight"
