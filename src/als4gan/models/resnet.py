"""ResNet-18/34/50/101 written in-house, with torchvision-compatible state-dict keys.

torchvision's ImageNet checkpoints (``resnet50-0676ba61.pth`` etc.) load into these modules
unchanged, without torchvision itself (whose compiled ops do not import against CPU-only torch
builds). Layers 3 and 4 can trade stride for dilation, giving the output stride 8 that
DeepLab-v2 uses (stage 2 of docs/method.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn


def _conv3x3(in_planes: int, out_planes: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(
        in_planes,
        out_planes,
        kernel_size=3,
        stride=stride,
        padding=dilation,
        dilation=dilation,
        bias=False,
    )


def _conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34)."""

    expansion: ClassVar[int] = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride, dilation)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes, dilation=dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual block."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1-3x3-1x1 bottleneck with stride on the 3x3 conv (torchvision "ResNet v1.5")."""

    expansion: ClassVar[int] = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        self.conv1 = _conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride, dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual block."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return torch.relu(out + identity)


#: Backbone name -> (block type, blocks per stage).
RESNET_SPECS: dict[str, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
    "resnet101": (Bottleneck, (3, 4, 23, 3)),
}


class ResNet(nn.Module):
    """ResNet with torchvision's module names (``conv1``, ``bn1``, ``layer1``..``layer4``, ``fc``).

    Args:
        name: One of :data:`RESNET_SPECS`.
        num_classes: Size of the ``fc`` head (1000 matches ImageNet checkpoints); 0 = no head.
        in_channels: Input bands.
        replace_stride_with_dilation: For layer2..layer4, use dilation instead of stride.
            ``(False, True, True)`` gives output stride 8.
    """

    def __init__(
        self,
        name: str = "resnet50",
        num_classes: int = 1000,
        in_channels: int = 3,
        replace_stride_with_dilation: Sequence[bool] = (False, False, False),
    ) -> None:
        super().__init__()
        if name not in RESNET_SPECS:
            raise ValueError(f"unknown ResNet '{name}'. Choose one of: {', '.join(RESNET_SPECS)}")
        block, layers = RESNET_SPECS[name]
        self.name = name
        self.inplanes = 64
        self.dilation = 1
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        dilate = list(replace_stride_with_dilation)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2, dilate=dilate[0])
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2, dilate=dilate[1])
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2, dilate=dilate[2])
        self.out_channels = 512 * block.expansion
        self.low_level_channels = 64 * block.expansion
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc: nn.Module = (
            nn.Linear(self.out_channels, num_classes) if num_classes > 0 else nn.Identity()
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def _make_layer(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        planes: int,
        blocks: int,
        stride: int = 1,
        dilate: bool = False,
    ) -> nn.Sequential:
        downsample: nn.Module | None = None
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                _conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers: list[nn.Module] = [
            block(self.inplanes, planes, stride, downsample, dilation=previous_dilation)
        ]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, dilation=self.dilation))
        return nn.Sequential(*layers)

    def forward_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Feature maps: ``low`` (after layer1, stride 4) and ``out`` (after layer4)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        low = self.layer1(x)
        out = self.layer4(self.layer3(self.layer2(low)))
        return {"low": low, "out": out}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Image classification logits (or pooled features when there is no head)."""
        features = self.forward_features(x)["out"]
        return self.fc(torch.flatten(self.avgpool(features), 1))  # type: ignore[no-any-return]
