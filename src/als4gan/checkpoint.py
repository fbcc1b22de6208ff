"""The checkpoint file format: written atomically, read with ``weights_only=True``.

A checkpoint is a dict of plain data and tensors::

    {
      "format": "als4gan-checkpoint", "version": 1,
      "kind": "segmentation",
      "model_spec": {"arch": "deeplabv2", "backbone": "resnet18", "num_classes": 6,
                     "in_channels": 3, ...options of build_segmentation_model},
      "dataset": {"name": ..., "classes": ClassTable.to_dict(), "label_names": [...]},
      "preprocessing": {"bands": [4, 3, 2] or None, "image_max": 10000.0 or None,
                        "scaling": ..., "nodata": ..., "normalization": {"mean": [...], ...}},
      "model": state_dict of the segmentation network,
      "step": int,
      ... trainer state (discriminator, optimisers, schedulers, RNG, sampler) ...
    }

Only tensors, numbers, strings, lists, tuples and dicts are stored, so loading never runs code.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from als4gan.errors import CheckpointError, ConfigError
from als4gan.io import atomic_write_bytes

FORMAT = "als4gan-checkpoint"
VERSION = 1
CHECKPOINT_DIR = "checkpoints"

log = logging.getLogger(__name__)


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` atomically (serialise in memory, write temp file, fsync, rename).

    A crash during the write leaves any previous file at ``path`` intact.
    """
    data = {"format": FORMAT, "version": VERSION, **payload}
    buffer = io.BytesIO()
    torch.save(data, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def resolve_checkpoint_path(path: str | Path, prefer: str = "best") -> Path:
    """Accept a checkpoint file or a run folder (``checkpoints/<prefer>.pt``, else latest).

    Raises:
        CheckpointError: If nothing loadable is found.
    """
    candidate = Path(path)
    if candidate.is_dir():
        for name in (f"{prefer}.pt", "best.pt", "latest.pt"):
            file = candidate / CHECKPOINT_DIR / name
            if file.is_file():
                return file
        raise CheckpointError(
            f"{candidate} holds no checkpoints/{prefer}.pt or checkpoints/latest.pt. "
            "Train first ('als4gan train ... --out RUN_DIR') or pass a checkpoint file."
        )
    if not candidate.is_file():
        raise CheckpointError(f"checkpoint {candidate} does not exist")
    return candidate


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load an als4gan checkpoint safely (``weights_only=True``).

    Raises:
        CheckpointError: If the file is missing, corrupt, unsafe or not an als4gan checkpoint.
    """
    file = resolve_checkpoint_path(path)
    try:
        data = torch.load(file, map_location=map_location, weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"{file} could not be loaded ({type(err).__name__}: {err}). It is truncated, "
            "corrupt, or contains objects other than tensors and plain data (refused for safety)."
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(
            f"{file} is not an als4gan checkpoint. For ImageNet backbone weights use --pretrained."
        )
    if int(data.get("version", 0)) > VERSION:
        raise CheckpointError(
            f"{file} was written by a newer als4gan (format version {data['version']}); upgrade."
        )
    return data


def recorded_classes(meta: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The class table (``names``, ``colors``) a checkpoint recorded, or ``None`` if absent."""
    dataset = meta.get("dataset")
    if isinstance(dataset, Mapping) and isinstance(dataset.get("classes"), Mapping):
        return dataset["classes"]  # type: ignore[no-any-return]
    return None


def preprocessing_record(preprocessing: Mapping[str, Any], in_channels: int) -> dict[str, Any]:
    """What a checkpoint records about how stored pixels became the model's inputs.

    Args:
        preprocessing: The training dataset's ``preprocessing()`` (``bands``, ``image_max``).
        in_channels: Bands the model takes.
    """
    from als4gan.models.normalize import IMAGENET_MEAN, IMAGENET_STD

    bands = preprocessing.get("bands")
    image_max = preprocessing.get("image_max")
    extra = max(0, in_channels - 3)
    return {
        "bands": [int(b) for b in bands] if bands else None,
        "image_max": float(image_max) if image_max is not None else None,
        "scaling": (
            f"divided by {float(image_max):g}, clipped to [0, 1]"
            if image_max is not None
            else "uint8 divided by 255; float kept in [0, 1]"
        ),
        "nodata": "NaN and the raster's no-data value: fed as 0, labelled ignore",
        "normalization": {
            "mean": list(IMAGENET_MEAN[:in_channels]) + [0.5] * extra,
            "std": list(IMAGENET_STD[:in_channels]) + [0.25] * extra,
            "where": "inside the model",
        },
    }


def recorded_preprocessing(meta: Mapping[str, Any]) -> dict[str, Any] | None:
    """``bands`` and ``image_max`` a checkpoint was trained with (``None`` if not recorded).

    Checkpoints written before the record existed give their configured ``bands`` (when set)
    and no ``image_max``; ``None`` is returned when they configured nothing.
    """
    record = meta.get("preprocessing")
    if isinstance(record, Mapping):
        return {"bands": record.get("bands"), "image_max": record.get("image_max")}
    config = meta.get("config")
    if isinstance(config, Mapping) and config.get("bands"):
        return {"bands": [int(b) for b in config["bands"]], "image_max": None, "partial": True}
    return None


def resolve_preprocessing(
    meta: Mapping[str, Any],
    bands: list[int] | None,
    image_max: float | None,
    in_channels: int,
) -> tuple[list[int] | None, float | None]:
    """Bands and scale to feed a checkpoint: the recorded ones; an explicit one only if equal.

    A field the checkpoint does not record (older checkpoints; ``bands`` of a model trained on
    the first bands; ``image_max`` of one trained on 8-bit or [0, 1] float images) takes the
    explicit value, with a warning when it is given.

    Args:
        meta: Checkpoint metadata (``path`` names it in messages).
        bands: ``--bands`` (``None`` when not given).
        image_max: ``--image-max`` (``None`` when not given).
        in_channels: Bands the model takes.

    Returns:
        (bands, image_max) to use; ``None`` = the defaults (first bands; ``uint8`` / 255).

    Raises:
        ConfigError: If an explicit value differs from a recorded one.
    """
    record = recorded_preprocessing(meta) or {"bands": None, "image_max": None}
    where = meta.get("path", "the checkpoint")
    trained_bands, trained_max = record["bands"], record["image_max"]
    if bands is not None and trained_bands and list(bands) != list(trained_bands):
        raise ConfigError(
            f"{where} was trained on bands {' '.join(map(str, trained_bands))} but --bands "
            f"{' '.join(map(str, bands))} was given; the model would see other bands than it "
            "learned. Omit --bands to use the recorded ones."
        )
    if image_max is not None and trained_max is not None and float(image_max) != float(trained_max):
        raise ConfigError(
            f"{where} was trained with --image-max {float(trained_max):g} but --image-max "
            f"{float(image_max):g} was given; pixels would be scaled differently from "
            "training. Omit --image-max to use the recorded scale."
        )
    if "preprocessing" in meta and not record.get("partial"):
        if bands is not None and not trained_bands:
            log.warning(
                "%s was trained on the first %d band(s) of its images; reading bands %s "
                "as given by --bands",
                where,
                in_channels,
                " ".join(map(str, bands)),
            )
        if image_max is not None and trained_max is None:
            log.warning(
                "%s was trained on 8-bit (/ 255) or [0, 1] float images; scaling by "
                "--image-max %g as given",
                where,
                float(image_max),
            )
    chosen_bands = list(trained_bands) if trained_bands else bands
    return chosen_bands, float(trained_max) if trained_max is not None else image_max


def build_model_from_checkpoint(
    checkpoint: dict[str, Any], device: str | torch.device = "cpu"
) -> nn.Module:
    """Recreate the segmentation network recorded in ``checkpoint``, in eval mode."""
    from als4gan.models import build_segmentation_model

    spec = dict(checkpoint.get("model_spec") or {})
    if not spec:
        raise CheckpointError("checkpoint has no model_spec; it was not written by 'als4gan train'")
    spec.pop("pretrained", None)
    model = build_segmentation_model(**spec)
    try:
        model.load_state_dict(checkpoint["model"])
    except (RuntimeError, KeyError) as err:
        raise CheckpointError(f"checkpoint weights do not fit its model_spec: {err}") from None
    return model.to(device).eval()


def load_segmentation_model(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Load a trained segmentation network from a checkpoint file or run folder.

    Returns:
        (model in eval mode on ``device``, checkpoint dict without the heavy trainer state).
    """
    checkpoint = load_checkpoint(path)
    model = build_model_from_checkpoint(checkpoint, device)
    meta = {
        key: value
        for key, value in checkpoint.items()
        if key
        in (
            "format",
            "version",
            "kind",
            "model_spec",
            "dataset",
            "step",
            "metrics",
            "config",
            "inference",
            "preprocessing",
        )
    }
    meta["path"] = str(resolve_checkpoint_path(path))
    return model, meta
