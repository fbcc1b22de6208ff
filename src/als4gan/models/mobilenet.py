"""MobileNetV2 written in-house, with torchvision-compatible state-dict keys.

The module names follow torchvision's ``mobilenet_v2`` (``features.0.0`` stem convolution,
``features.N.conv.0.0`` expansion, ``features.N.conv.1.0`` depthwise, ``features.N.conv.2``
projection, ``features.18`` the final 1x1 convolution to 1280 channels), so torchvision's ImageNet
file loads unchanged. Files in the other widely used layout (``features.N.conv.0`` ...
``features.N.conv.7``, as in the original pytorch-mobilenet-v2 code) are renamed by
:func:`map_classic_mobilenet_keys`.

For segmentation the last stages trade stride for dilation (output stride 8 or 16) and the
network ends at ``features.17`` (320 channels), as DeepLab heads on MobileNetV2 conventionally do;
the image classifier keeps ``features.18`` (1280 channels).
"""

from __future__ import annotations

import re

import torch
from torch import nn

#: Inverted-residual settings (expansion t, channels c, repeats n, stride s) of MobileNetV2 1.0.
INVERTED_RESIDUAL_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)

#: Index (in ``features``) of the last block at stride 4: its output is DeepLab-v3+'s low level.
LOW_LEVEL_INDEX = 3


class ConvBNReLU6(nn.Sequential):
    """Convolution, BatchNorm, ReLU6 (children ``0``, ``1``, ``2`` as in torchvision)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        dilation: int = 1,
    ) -> None:
        padding = (kernel_size - 1) // 2 * dilation
        super().__init__(
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride,
                padding,
                dilation=dilation,
                groups=groups,
                bias=False,
            ),
            nn.BatchNorm2d(out_channels),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    """Expansion 1x1, depthwise 3x3, linear projection 1x1; residual when shapes allow."""

    def __init__(
        self, inp: int, oup: int, stride: int, expand_ratio: int, dilation: int = 1
    ) -> None:
        super().__init__()
        hidden = inp * expand_ratio
        self.use_residual = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU6(inp, hidden, kernel_size=1))
        layers += [
            ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden, dilation=dilation),
            nn.Conv2d(hidden, oup, 1, bias=False),
            nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Block output (plus the input when the block is residual)."""
        out = self.conv(x)
        return x + out if self.use_residual else out  # type: ignore[no-any-return]


class MobileNetV2(nn.Module):
    """MobileNetV2 (width 1.0) with torchvision's module names, as a backbone.

    Args:
        in_channels: Input bands.
        output_stride: 32 (classification), 16 or 8 (the last stages use dilation instead).
        include_last: Keep ``features.18`` (1x1 conv to 1280 channels); segmentation drops it.
        num_classes: Size of a ``classifier`` head (1000 matches ImageNet files); 0 = none.
    """

    def __init__(
        self,
        in_channels: int = 3,
        output_stride: int = 32,
        include_last: bool = True,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
        self.name = "mobilenet_v2"
        layers: list[nn.Module] = [ConvBNReLU6(in_channels, 32, stride=2)]
        channels, current_stride, dilation = 32, 2, 1
        for t, c, n, s in INVERTED_RESIDUAL_SETTING:
            for i in range(n):
                stride = s if i == 0 else 1
                block_dilation = dilation
                if stride > 1 and current_stride >= output_stride:
                    # Trade the stride for dilation: this block keeps the previous dilation,
                    # the following ones use the larger one (as ResNet's dilated layers do).
                    dilation *= stride
                    stride = 1
                elif stride > 1:
                    current_stride *= stride
                layers.append(InvertedResidual(channels, c, stride, t, block_dilation))
                channels = c
        self.out_channels = channels
        if include_last:
            layers.append(ConvBNReLU6(channels, 1280, kernel_size=1))
            self.out_channels = 1280
        self.features = nn.Sequential(*layers)
        self.low_level_channels = INVERTED_RESIDUAL_SETTING[1][1]
        self.output_stride = output_stride
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier: nn.Module = (
            nn.Sequential(nn.Dropout(0.2), nn.Linear(self.out_channels, num_classes))
            if num_classes > 0
            else nn.Identity()
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.zeros_(module.bias)

    @property
    def first_conv(self) -> nn.Conv2d:
        """The stem convolution (the one that sees the image bands)."""
        stem = self.features[0]
        assert isinstance(stem, ConvBNReLU6) and isinstance(stem[0], nn.Conv2d)
        return stem[0]

    def forward_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Feature maps: ``low`` (stride 4, 24 channels) and ``out`` (the last block)."""
        low = self.features[: LOW_LEVEL_INDEX + 1](x)
        return {"low": low, "out": self.features[LOW_LEVEL_INDEX + 1 :](low)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Classification logits (or pooled features when there is no head)."""
        features = self.forward_features(x)["out"]
        return self.classifier(torch.flatten(self.avgpool(features), 1))  # type: ignore[no-any-return]


_CLASSIC_KEY = re.compile(r"^(features\.(\d+)\.conv\.)(\d+)\.(.+)$")
#: Classic layout index -> torchvision name, for blocks without / with the expansion conv.
_CLASSIC_NO_EXPAND = {"0": "0.0", "1": "0.1", "3": "1", "4": "2"}
_CLASSIC_EXPAND = {"0": "0.0", "1": "0.1", "3": "1.0", "4": "1.1", "6": "2", "7": "3"}


def is_classic_mobilenet_layout(state: dict[str, torch.Tensor]) -> bool:
    """Whether ``state`` uses the ``features.N.conv.0..7`` layout (not torchvision's names)."""
    return any(re.search(r"features\.\d+\.conv\.(4|6|7)\.", key) for key in state)


def map_classic_mobilenet_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a classic-layout MobileNetV2 state dict to torchvision's module names.

    ``features.1.conv.3.weight`` -> ``features.1.conv.1.weight`` (the block without expansion),
    ``features.2.conv.6.weight`` -> ``features.2.conv.2.weight`` and so on; keys outside the
    inverted-residual blocks (``features.0.*``, ``features.18.*``, ``classifier.*``) and any
    prefix (``backbone.``) are kept as they are.
    """
    expanding: set[str] = set()
    for key in state:
        match = _CLASSIC_KEY.search(key)
        if match and match.group(3) in ("6", "7"):
            expanding.add(match.group(1))
    mapped: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        match = _CLASSIC_KEY.search(key)
        if match is None:
            mapped[key] = value
            continue
        table = _CLASSIC_EXPAND if match.group(1) in expanding else _CLASSIC_NO_EXPAND
        index = table.get(match.group(3))
        if index is None:  # an activation has no tensors; anything else is kept unchanged
            mapped[key] = value
            continue
        start = match.start(1)
        mapped[f"{key[:start]}{match.group(1)}{index}.{match.group(4)}"] = value
    return mapped
