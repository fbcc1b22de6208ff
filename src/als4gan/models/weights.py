"""Loading pretrained backbone weights: ``--pretrained NAME|PATH|none``.

``NAME`` is a registry name (``imagenet``, or an entry of ``als4gan weights list``) resolved
through :mod:`als4gan.models.hub` (verified cache first, then a download); ``PATH`` is a
weights file (torchvision or als4gan checkpoint) or an als4gan run folder.

A load must fill at least :data:`MIN_LOADED_FRACTION` of the backbone's tensors (weights,
biases and BatchNorm statistics; BatchNorm's step counter is not counted), else it is refused:
a file of another architecture must not pass silently and then have its BatchNorm frozen.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from als4gan.errors import CheckpointError
from als4gan.models.backbones import Backbone, first_conv, first_conv_key
from als4gan.models.hub import (
    REGISTRY,
    WeightsEntry,
    entries_for,
    file_sha256,
    is_weights_name,
    obtain,
    torch_hub_checkpoint_dir,
    weights_dir,
)
from als4gan.models.mobilenet import (
    MobileNetV2,
    is_classic_mobilenet_layout,
    map_classic_mobilenet_keys,
)
from als4gan.models.resnet import ResNet

logger = logging.getLogger(__name__)

#: A load that fills less than this share of the backbone's tensors is refused.
MIN_LOADED_FRACTION = 0.95

#: Keys of classification heads, never loaded into a backbone.
_HEAD_PREFIXES = ("fc.", "classifier.")

__all__ = [
    "MIN_LOADED_FRACTION",
    "PretrainedLoad",
    "ResolvedWeights",
    "find_backbone",
    "load_backbone_weights",
    "load_pretrained",
    "missing_weights_message",
    "read_state_dict",
    "resolve_pretrained",
    "resolve_weights",
    "torch_hub_checkpoint_dir",
]


@dataclass(frozen=True)
class ResolvedWeights:
    """A ``--pretrained`` value turned into a file.

    Attributes:
        spec: What the user passed.
        path: The file.
        entry: The registry entry, for a registry name (None for a path).
    """

    spec: str
    path: Path
    entry: WeightsEntry | None = None


@dataclass
class PretrainedLoad:
    """What a load did (see :meth:`line` and :meth:`record`)."""

    spec: str
    backbone: str
    path: str
    sha256: str
    loaded: int
    expected: int
    entry: str | None = None
    missing: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def fraction(self) -> float:
        """Share of the backbone's tensors that were filled."""
        return self.loaded / self.expected if self.expected else 0.0

    def line(self) -> str:
        """One line for the log, e.g. ``pretrained imagenet (mobilenet_v2, sha256 2f518e77…)``."""
        name = self.spec if self.entry is None else f"{self.spec} = {self.entry}"
        return (
            f"pretrained {name} ({self.backbone}, sha256 {self.sha256[:8]}…): loaded "
            f"{self.loaded}/{self.expected} backbone tensors from {self.path}"
        )

    def record(self) -> dict[str, Any]:
        """What a run records about its initial weights (checkpoint ``pretrained_weights``)."""
        return {
            "spec": self.spec,
            "entry": self.entry,
            "backbone": self.backbone,
            "path": self.path,
            "sha256": self.sha256,
            "loaded": self.loaded,
            "expected": self.expected,
        }


def missing_weights_message(backbone: str, path: str | Path | None = None) -> str:
    """What to do when a ``--pretrained`` file does not exist."""
    where = f"{path} does not exist. " if path else ""
    try:
        entries = entries_for("imagenet", backbone)
    except Exception:
        entries = []
    hint = ""
    if entries:
        entry = entries[0]
        how = " or ".join(source.describe() for source in entry.sources)
        hint = (
            f"For ImageNet weights pass --pretrained imagenet (fetched and verified "
            f"automatically; offline, put {entry.file} from {how} in {weights_dir()}/). "
        )
    return (
        f"{where}{hint}Other choices: an als4gan checkpoint or run folder, a torchvision "
        "weights file, or --pretrained none to train from random initialisation. "
        "'als4gan weights list' shows the registered weights."
    )


def resolve_weights(spec: str | None, backbone: str) -> ResolvedWeights | None:
    """Turn a ``--pretrained`` value into a verified file (or None for random init).

    Accepts ``none``, a registry name such as ``imagenet`` (cache, then download), a weights
    file (torchvision or als4gan checkpoint) or an als4gan run folder (its best, else latest,
    checkpoint).

    Raises:
        ConfigError: On a registry name without weights for ``backbone``.
        CheckpointError: If the file is missing or cannot be fetched (the message says how to
            get it).
    """
    if spec is None or str(spec).lower() in ("", "none", "random"):
        return None
    spec = str(spec)
    if is_weights_name(spec.lower()) and not Path(spec).exists():
        entry, path = obtain(spec.lower(), backbone)
        return ResolvedWeights(spec, path, entry)
    path = Path(spec).expanduser()
    if path.is_dir():
        # A previous run folder: its best (else latest) checkpoint's backbone.
        for name in ("best.pt", "latest.pt"):
            if (path / "checkpoints" / name).is_file():
                return ResolvedWeights(spec, path / "checkpoints" / name)
        raise CheckpointError(
            f"{path} is a folder without checkpoints/best.pt or checkpoints/latest.pt. Pass a "
            "weights file, a trained run folder, 'imagenet' or 'none'."
        )
    if not path.is_file():
        raise CheckpointError(missing_weights_message(backbone, path))
    return ResolvedWeights(spec, path, _entry_of_file(path))


def _entry_of_file(path: Path) -> WeightsEntry | None:
    """The registry entry a file given by path is (same name and matching content), if any."""
    for entry in REGISTRY.values():
        if entry.file == path.name and entry.matches(file_sha256(path)):
            return entry
    return None


def resolve_pretrained(spec: str | None, backbone: str) -> Path | None:
    """The file :func:`resolve_weights` resolves ``spec`` to (None for random init)."""
    resolved = resolve_weights(spec, backbone)
    return None if resolved is None else resolved.path


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict safely (``weights_only=True``) from a torchvision or als4gan file.

    als4gan checkpoints hold the network under ``"model"``; other files may wrap it under
    ``"state_dict"`` or ``"model"``.

    Raises:
        CheckpointError: If the file cannot be read or holds no tensors.
    """
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"{path} could not be loaded as a weights file ({type(err).__name__}: {err}). "
            "Only plain state dicts are accepted (weights_only=True): files that execute code "
            "on load are refused."
        ) from None
    if isinstance(data, dict):
        for key in ("model", "state_dict"):
            if key in data and isinstance(data[key], dict):
                data = data[key]
                break
    if not isinstance(data, dict) or not any(isinstance(v, torch.Tensor) for v in data.values()):
        raise CheckpointError(f"{path} holds no state dict of tensors")
    return {k: v for k, v in data.items() if isinstance(v, torch.Tensor)}


def adapt_first_conv(
    weight: torch.Tensor, in_channels: int, rgb: Sequence[int] | None = None
) -> torch.Tensor:
    """Build a first convolution for ``in_channels`` bands from RGB weights.

    The R, G and B filters go to the band positions ``rgb`` (0-based; default: the first three
    bands); every other band gets the mean RGB filter. The result is rescaled by
    ``3 / in_channels`` so that, for bands of similar brightness, activations keep their size.

    Raises:
        CheckpointError: If ``rgb`` is not three distinct positions below ``in_channels``.
    """
    source = weight.shape[1]
    if source == in_channels and (rgb is None or list(rgb) == list(range(source))):
        return weight
    if source != 3:
        raise CheckpointError(
            f"the first convolution of the weights has {source} input bands; only RGB (3) "
            f"weights can be adapted to {in_channels} bands"
        )
    if rgb is None:
        rgb = list(range(min(3, in_channels)))
    if len(set(rgb)) != len(rgb) or any(not 0 <= b < in_channels for b in rgb):
        raise CheckpointError(
            f"RGB band positions {list(rgb)} do not fit an image of {in_channels} bands"
        )
    mean = weight.mean(dim=1)
    out = mean.unsqueeze(1).repeat(1, in_channels, 1, 1)
    for channel, band in enumerate(rgb):
        out[:, band] = weight[:, channel]
    return out * (3 / in_channels)


def _expected_keys(target: dict[str, torch.Tensor]) -> list[str]:
    """Backbone tensors counted by the 95 % rule (no head, no BatchNorm step counters)."""
    return [
        key
        for key in target
        if not key.startswith(_HEAD_PREFIXES) and not key.endswith("num_batches_tracked")
    ]


#: Prefixes a backbone's keys may carry in a file, tried in turn (the one filling most wins).
_KEY_PREFIXES = ("backbone.", "module.backbone.", "encoder.", "module.", "")


def _best_prefix_match(
    state: dict[str, torch.Tensor], target: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """The file's backbone tensors under the prefix that fills most of ``target`` (no head)."""
    best: dict[str, torch.Tensor] = {}
    for prefix in _KEY_PREFIXES:
        candidate = {
            key[len(prefix) :]: value
            for key, value in state.items()
            if key.startswith(prefix)
            and key[len(prefix) :] in target
            and not key[len(prefix) :].startswith(_HEAD_PREFIXES)
        }
        if len(candidate) > len(best):
            best = candidate
    return best


def load_backbone_weights(
    backbone: nn.Module,
    path: str | Path,
    rgb: Sequence[int] | None = None,
    min_fraction: float = MIN_LOADED_FRACTION,
) -> PretrainedLoad:
    """Load a backbone's weights from a torchvision, registry or als4gan file into ``backbone``.

    Keys may be plain backbone keys (``layer1.0.conv1.weight``, ``features.3.conv.1.0.weight``),
    MobileNetV2's classic layout (renamed), or prefixed by a model's attribute
    (``backbone.layer1...`` in als4gan segmentation / classifier checkpoints). Classification
    heads are skipped; the first convolution is adapted to the backbone's bands
    (:func:`adapt_first_conv`).

    Returns:
        What was loaded (``spec``/``entry`` are left for the caller to fill).

    Raises:
        CheckpointError: If shapes do not fit, or less than ``min_fraction`` of the backbone's
            tensors would be filled (wrong file or architecture).
    """
    name = getattr(backbone, "name", type(backbone).__name__)
    state = read_state_dict(path)
    if isinstance(backbone, MobileNetV2) and is_classic_mobilenet_layout(state):
        state = map_classic_mobilenet_keys(state)
    target = backbone.state_dict()
    best = _best_prefix_match(state, target)
    expected = _expected_keys(target)
    loaded = [key for key in expected if key in best]
    if len(loaded) < min_fraction * len(expected):
        examples = [key for key in expected if key not in best][:3]
        raise CheckpointError(
            f"{path} fills only {len(loaded)} of the {len(expected)} tensors of a {name} "
            f"backbone ({len(loaded) / max(len(expected), 1):.0%}; at least "
            f"{min_fraction:.0%} must load). Missing for example: {', '.join(examples)}. Is it "
            "a file of another backbone? Pass weights of this backbone, or --pretrained none."
        )
    conv_key = first_conv_key(backbone)
    if conv_key in best:
        best[conv_key] = adapt_first_conv(best[conv_key], first_conv(backbone).in_channels, rgb)
    mismatched = [k for k, v in best.items() if v.shape != target[k].shape]
    if mismatched:
        raise CheckpointError(
            f"{path} does not fit a {name} backbone: shape mismatch for "
            f"{', '.join(mismatched[:5])}{'...' if len(mismatched) > 5 else ''}"
        )
    backbone.load_state_dict(best, strict=False)
    return PretrainedLoad(
        spec=str(path),
        backbone=name,
        path=str(path),
        sha256=file_sha256(path),
        loaded=len(loaded),
        expected=len(expected),
        missing=sorted(k for k in expected if k not in best),
        skipped=sorted(k for k in state if k not in best),
    )


_ANNOUNCED: set[str] = set()


def load_pretrained(
    backbone: Backbone, spec: str | None, backbone_name: str, rgb: Sequence[int] | None = None
) -> PretrainedLoad | None:
    """Resolve ``--pretrained spec`` and load it into ``backbone``; None for random init.

    Logs one line saying what was loaded (at INFO the first time per file in a process, then
    at DEBUG: the acquisition model is rebuilt every round).

    Raises:
        ConfigError: On a registry name without weights for ``backbone_name``.
        CheckpointError: If the file cannot be had, read, or fills too little of the backbone.
    """
    resolved = resolve_weights(spec, backbone_name)
    if resolved is None:
        return None
    report = load_backbone_weights(backbone, resolved.path, rgb)
    report.spec = resolved.spec
    report.entry = resolved.entry.name if resolved.entry else None
    line = report.line()
    level = logging.DEBUG if line in _ANNOUNCED else logging.INFO
    _ANNOUNCED.add(line)
    logger.log(level, "%s", line)
    return report


def find_backbone(model: nn.Module) -> Backbone:
    """The backbone (ResNet or MobileNetV2) inside a segmentation model or classifier."""
    for module in model.modules():
        if isinstance(module, ResNet | MobileNetV2):
            return module
    raise CheckpointError(f"{type(model).__name__} has no backbone to load weights into")
