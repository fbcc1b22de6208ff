"""Loading pretrained weights from local files only (never a download).

``--pretrained`` accepts a path to a torchvision ImageNet ResNet checkpoint, a path to an
als4gan checkpoint, or the word ``imagenet``, which looks for torchvision's file in the torch
hub cache (``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from als4gan.errors import CheckpointError
from als4gan.models.resnet import TORCHVISION_WEIGHT_FILES, ResNet

TORCHVISION_URL = "https://download.pytorch.org/models/{file}"


def torch_hub_checkpoint_dir() -> Path:
    """The folder torchvision caches downloaded weights in."""
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch"
    )
    return Path(torch_home) / "hub" / "checkpoints"


def missing_weights_message(backbone: str, path: str | Path | None = None) -> str:
    """What to do when ImageNet weights for ``backbone`` are not on disk."""
    file = TORCHVISION_WEIGHT_FILES.get(backbone, f"{backbone}.pth")
    where = f"{path} does not exist. " if path else ""
    return (
        f"{where}ImageNet weights for {backbone} are needed but nothing is downloaded at run "
        f"time. Download {TORCHVISION_URL.format(file=file)} (on a machine with internet) and "
        f"either pass --pretrained /path/to/{file} or put it in {torch_hub_checkpoint_dir()}/ "
        "and pass --pretrained imagenet. Use --pretrained none to train from random "
        "initialisation."
    )


def resolve_pretrained(spec: str | None, backbone: str) -> Path | None:
    """Turn a ``--pretrained`` value into a file path (or None for random init).

    Accepts ``none``, ``imagenet`` (torchvision's file in the torch hub cache), a weights file
    (torchvision or als4gan checkpoint) or an als4gan run folder (its best, else latest,
    checkpoint).

    Raises:
        CheckpointError: If the file is missing (the message says how to get it).
    """
    if spec is None or str(spec).lower() in ("", "none", "random"):
        return None
    if str(spec).lower() == "imagenet":
        file = torch_hub_checkpoint_dir() / TORCHVISION_WEIGHT_FILES.get(backbone, "")
        if not file.is_file():
            raise CheckpointError(missing_weights_message(backbone))
        return file
    path = Path(spec).expanduser()
    if path.is_dir():
        # A previous run folder: its best (else latest) checkpoint's backbone.
        for name in ("best.pt", "latest.pt"):
            if (path / "checkpoints" / name).is_file():
                return path / "checkpoints" / name
        raise CheckpointError(
            f"{path} is a folder without checkpoints/best.pt or checkpoints/latest.pt. Pass a "
            "weights file, a trained run folder, 'imagenet' or 'none'."
        )
    if not path.is_file():
        raise CheckpointError(missing_weights_message(backbone, path))
    return path


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


def _adapt_first_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Adapt RGB conv1 weights to ``in_channels`` bands (extra bands get the RGB mean)."""
    if weight.shape[1] == in_channels:
        return weight
    if in_channels < weight.shape[1]:
        return weight[:, :in_channels].clone()
    extra = weight.mean(dim=1, keepdim=True).repeat(1, in_channels - weight.shape[1], 1, 1)
    return torch.cat([weight, extra], dim=1) * (weight.shape[1] / in_channels)


def load_backbone_weights(backbone: ResNet, path: str | Path) -> dict[str, Any]:
    """Load a ResNet's weights from a torchvision or als4gan file into ``backbone``.

    Keys may be plain torchvision keys (``layer1.0.conv1.weight``) or prefixed by a model's
    attribute (``backbone.layer1...`` in als4gan segmentation / classifier checkpoints). The
    classification head ``fc`` is skipped.

    Returns:
        ``{"loaded": n, "missing": [...], "skipped": [...]}``.

    Raises:
        CheckpointError: If no key matches (wrong file or architecture).
    """
    state = read_state_dict(path)
    prefixes = ("backbone.", "module.backbone.", "encoder.", "module.", "")
    target = backbone.state_dict()
    best: dict[str, torch.Tensor] = {}
    for prefix in prefixes:
        candidate = {
            key[len(prefix) :]: value
            for key, value in state.items()
            if key.startswith(prefix) and key[len(prefix) :] in target
        }
        if len(candidate) > len(best):
            best = candidate
    best.pop("fc.weight", None)
    best.pop("fc.bias", None)
    if not best:
        raise CheckpointError(
            f"{path} has no weights matching a {backbone.name} backbone (is it a checkpoint "
            "of another architecture?)"
        )
    if "conv1.weight" in best:
        best["conv1.weight"] = _adapt_first_conv(best["conv1.weight"], backbone.conv1.in_channels)
    mismatched = [k for k, v in best.items() if v.shape != target[k].shape]
    if mismatched:
        raise CheckpointError(
            f"{path} does not fit a {backbone.name} backbone: shape mismatch for "
            f"{', '.join(mismatched[:5])}{'...' if len(mismatched) > 5 else ''}"
        )
    backbone.load_state_dict(best, strict=False)
    missing = sorted(k for k in target if k not in best and not k.startswith("fc."))
    skipped = sorted(k for k in state if k not in best)
    return {"loaded": len(best), "missing": missing, "skipped": skipped}


def find_backbone(model: nn.Module) -> ResNet:
    """The ResNet inside a segmentation model or classifier."""
    for module in model.modules():
        if isinstance(module, ResNet):
            return module
    raise CheckpointError(f"{type(model).__name__} has no ResNet backbone to load weights into")
