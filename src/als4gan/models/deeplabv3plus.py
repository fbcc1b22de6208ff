"""DeepLab-v3+ (ResNet encoder, ASPP with image pooling, low-level decoder): an optional generator.

Not part of the paper's method (s4GAN uses DeepLab-v2, docs/method.md); offered because its
decoder recovers thin structures (roads, field borders) better at the same cost. It exposes the
same optimiser interface as :class:`als4gan.models.deeplab.DeepLabV2`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from als4gan.models.backbones import build_backbone
from als4gan.models.normalize import Normalize


def _conv_bn_relu(
    in_channels: int, out_channels: int, kernel_size: int = 1, dilation: int = 1
) -> nn.Sequential:
    padding = 0 if kernel_size == 1 else dilation
    return nn.Sequential(
        nn.Conv2d(
            in_channels, out_channels, kernel_size, padding=padding, dilation=dilation, bias=False
        ),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class ASPPv3(nn.Module):
    """DeepLab-v3 ASPP: a 1x1 branch, three dilated 3x3 branches, image pooling, projection.

    The image-pooling branch has no BatchNorm: its input is 1x1 per image, so BatchNorm there
    fails (or is meaningless) with the micro-batches of one image that gradient accumulation and
    multi-GPU training produce.

    Args:
        in_channels: Backbone channels.
        channels: Channels of every branch and of the output.
        rates: Dilation rates of the three 3x3 branches.
        dropout: Dropout after the projection.
    """

    def __init__(
        self,
        in_channels: int,
        channels: int = 256,
        rates: Sequence[int] = (6, 12, 18),
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            [_conv_bn_relu(in_channels, channels, 1)]
            + [_conv_bn_relu(in_channels, channels, 3, rate) for rate in rates]
        )
        self.pooling = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(in_channels, channels, 1, bias=True),
            nn.ReLU(inplace=True),
        )
        self.project = nn.Sequential(
            _conv_bn_relu(channels * (len(rates) + 2), channels, 1), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenate the branches and project."""
        outputs = [branch(x) for branch in self.branches]
        pooled = self.pooling(x).expand(-1, -1, x.shape[-2], x.shape[-1])
        return self.project(torch.cat([*outputs, pooled], dim=1))  # type: ignore[no-any-return]


class DeepLabV3Plus(nn.Module):
    """DeepLab-v3+: dilated ResNet, ASPP, and a decoder fusing stride-4 features.

    Takes images in [0, 1] (normalised inside) and returns logits at the input size.

    Args:
        backbone: Backbone name (see :data:`als4gan.models.backbones.BACKBONES`).
        num_classes: Number of classes.
        in_channels: Input bands.
        output_stride: 16 (usual) or 8 (finer, about 3x the encoder cost).
        rates: ASPP dilation rates at output stride 16 (doubled at 8).
        channels: Width of ASPP and decoder.
        low_level_channels: Channels the stride-4 features are reduced to.
    """

    def __init__(
        self,
        backbone: str = "resnet101",
        num_classes: int = 6,
        in_channels: int = 3,
        output_stride: int = 16,
        rates: Sequence[int] = (6, 12, 18),
        channels: int = 256,
        low_level_channels: int = 48,
    ) -> None:
        super().__init__()
        if output_stride not in (8, 16):
            raise ValueError(f"output_stride must be 8 or 16, got {output_stride}")
        scaled_rates = [rate * (16 // output_stride) for rate in rates]
        self.normalize = Normalize(in_channels)
        self.backbone = build_backbone(backbone, in_channels, output_stride, segmentation=True)
        self.aspp = ASPPv3(self.backbone.out_channels, channels, scaled_rates)
        self.reduce = _conv_bn_relu(self.backbone.low_level_channels, low_level_channels, 1)
        self.decoder = nn.Sequential(
            _conv_bn_relu(channels + low_level_channels, channels, 3),
            _conv_bn_relu(channels, channels, 3),
        )
        self.classifier = nn.Conv2d(channels, num_classes, 1)
        self.num_classes = num_classes
        for module in (self.aspp, self.reduce, self.decoder, self.classifier):
            for layer in module.modules():
                if isinstance(layer, nn.Conv2d):
                    nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
                    if layer.bias is not None:
                        nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits of shape (B, num_classes, H, W) for images (B, C, H, W) in [0, 1]."""
        return self.decode(self.encode(x), x.shape[-2:])

    def encode(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Encoder features ``{"low": stride-4, "out": last}`` of images in [0, 1].

        With :meth:`decode`, the two halves of :meth:`forward`: a method can change the features
        in between (UniMatch's feature perturbation, docs/training.md).
        """
        features = self.backbone.forward_features(self.normalize(x))
        return {"low": features["low"], "out": features["out"]}

    def decode(self, features: dict[str, torch.Tensor], size: Sequence[int]) -> torch.Tensor:
        """Class logits at ``size`` (H, W) from :meth:`encode`'s features."""
        low = self.reduce(features["low"])
        high = F.interpolate(
            self.aspp(features["out"]), size=low.shape[-2:], mode="bilinear", align_corners=False
        )
        logits = self.classifier(self.decoder(torch.cat([high, low], dim=1)))
        return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)

    def head_modules(self) -> list[nn.Module]:
        """Modules that are not part of the (possibly pretrained) backbone."""
        return [self.aspp, self.reduce, self.decoder, self.classifier]

    def backbone_parameters(self) -> list[nn.Parameter]:
        """Parameters trained at the base learning rate."""
        return list(self.backbone.parameters())

    def head_parameters(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(weights, biases) of the new head: conv weights get 10x lr, biases and norms 20x.

        As for DeepLab-v2's classifier (docs/method.md), the second group is trained without
        weight decay; it holds every 1-d parameter (conv biases, BatchNorm scales and shifts).
        """
        weights: list[nn.Parameter] = []
        biases: list[nn.Parameter] = []
        for module in self.head_modules():
            for parameter in module.parameters():
                (weights if parameter.ndim > 1 else biases).append(parameter)
        return weights, biases
