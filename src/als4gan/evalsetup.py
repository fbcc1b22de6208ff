"""What an evaluation reads: run folders, the dataset source, compatibility checks, the regime.

Shared by ``als4gan evaluate`` and the readers of run folders (the report builds the run's
dataset from :func:`resolve_data_source` to draw contact sheets); nothing here loads a model,
and checkpoint helpers are imported only by the functions that read checkpoint records.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from als4gan.errors import CheckpointError, ConfigError
from als4gan.io import read_yaml
from als4gan.regime import DEFAULT_OVERLAP, InferenceRegime, recorded_regime

if TYPE_CHECKING:
    from als4gan.data import SegmentationDataset

log = logging.getLogger("als4gan.evaluate")

#: Window side used when neither ``--window`` nor the checkpoint's training crop is known.
FALLBACK_WINDOW = 512
#: Config keys (in order) that may hold the training crop size.
CROP_KEYS = ("crop_size", "crop", "input_size")
#: Dataset options a run's config may record and that the dataset classes accept.
DATASET_OPTION_KEYS = ("classes_file", "bands")


@dataclass
class DataSource:
    """Which dataset to read: registry name, root folder and dataset options."""

    name: str
    root: str
    options: dict[str, Any] = field(default_factory=dict)

    def build(self, split: str) -> SegmentationDataset:
        """The dataset for ``split``."""
        from als4gan.data import build_dataset

        return build_dataset(self.name, self.root, split, **self.options)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {"name": self.name, "root": self.root, "options": dict(self.options)}


def run_dir_of(checkpoint: str | Path) -> Path:
    """The run folder a checkpoint belongs to (``RUN/checkpoints/x.pt`` -> ``RUN``).

    A run folder is returned as is; a checkpoint file outside a ``checkpoints/`` folder gives
    its own folder.
    """
    from als4gan.checkpoint import CHECKPOINT_DIR

    path = Path(checkpoint)
    if path.is_dir():
        return path
    if path.parent.name == CHECKPOINT_DIR:
        return path.parent.parent
    return path.parent


def read_run_config(run_dir: str | Path) -> dict[str, Any]:
    """``RUN_DIR/config.yaml`` as a dict (empty when absent or not a mapping)."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        return {}
    data = read_yaml(path)
    return data if isinstance(data, dict) else {}


def list_run_checkpoints(run_dir: str | Path) -> list[Path]:
    """Every ``*.pt`` under ``RUN_DIR/checkpoints/``, sorted by name.

    Raises:
        CheckpointError: If there is none.
    """
    from als4gan.checkpoint import CHECKPOINT_DIR

    folder = Path(run_dir) / CHECKPOINT_DIR
    files = sorted(folder.glob("*.pt")) if folder.is_dir() else []
    if not files:
        raise CheckpointError(
            f"{folder} holds no *.pt checkpoints; --all-checkpoints needs a run folder written "
            "by 'als4gan train --out RUN_DIR'"
        )
    return files


def _dataset_section(config: Mapping[str, Any]) -> dict[str, Any]:
    """Dataset name/root/options from a run config (flat keys or a nested ``dataset`` map)."""
    found: dict[str, Any] = {}
    nested = config.get("dataset")
    if isinstance(nested, Mapping):
        if nested.get("name"):
            found["name"] = str(nested["name"])
        if nested.get("root"):
            found["root"] = str(nested["root"])
        options = nested.get("options")
        if isinstance(options, Mapping):
            found.update({key: options[key] for key in DATASET_OPTION_KEYS if key in options})
    elif isinstance(nested, str) and nested:
        found["name"] = nested
    for key in ("root", "data_root"):
        if config.get(key) and "root" not in found:
            found["root"] = str(config[key])
    for key in DATASET_OPTION_KEYS:
        if config.get(key) not in (None, "", []):
            found[key] = config[key]
    return found


def resolve_data_source(
    name: str | None,
    root: str | None,
    options: Mapping[str, Any],
    checkpoint_meta: Mapping[str, Any],
    run_config: Mapping[str, Any] | None = None,
) -> DataSource:
    """Dataset to evaluate on: explicit values first, then the run's config, then the checkpoint.

    Args:
        name: ``--dataset`` (``None`` when not given).
        root: ``--root`` (``None`` when not given).
        options: Dataset options given on the command line (``classes_file``, ``bands``).
        checkpoint_meta: Checkpoint metadata (``config`` and ``dataset`` sections are read).
        run_config: ``RUN_DIR/config.yaml`` when known.

    Raises:
        ConfigError: If no dataset root can be found.
    """
    recorded: dict[str, Any] = {}
    described = checkpoint_meta.get("dataset")
    if isinstance(described, Mapping):
        recorded.update({k: described[k] for k in ("name", "root") if described.get(k)})
    checkpoint_config = checkpoint_meta.get("config")
    if isinstance(checkpoint_config, Mapping):
        recorded.update(_dataset_section(checkpoint_config))
    if run_config:
        recorded.update(_dataset_section(run_config))
    chosen_name = name or recorded.get("name") or "synthetic"
    same_dataset = name is None or name == recorded.get("name")
    chosen_root = root or (recorded.get("root") if same_dataset else None)
    if not chosen_root:
        raise ConfigError(
            "no dataset root given and none recorded in the checkpoint: pass --root DIR "
            "(the folder written by 'als4gan prepare')"
        )
    if not root and not Path(str(chosen_root)).is_dir():
        raise ConfigError(
            f"the dataset root recorded at training time ({chosen_root}) does not exist from "
            f"here ({Path.cwd()}); pass --root DIR (and --dataset if needed)"
        )
    chosen_options = {
        key: recorded[key] for key in DATASET_OPTION_KEYS if key in recorded and same_dataset
    }
    chosen_options.update(_recorded_preprocessing_options(str(chosen_name), checkpoint_meta))
    chosen_options.update(options)
    return DataSource(str(chosen_name), str(chosen_root), chosen_options)


def _recorded_preprocessing_options(
    name: str, checkpoint_meta: Mapping[str, Any]
) -> dict[str, Any]:
    """``bands`` / ``image_max`` the checkpoint was trained with, for datasets that take them."""
    import inspect

    if not checkpoint_meta:
        return {}  # nothing recorded (e.g. a report reading a run's config only)
    from als4gan.checkpoint import recorded_preprocessing
    from als4gan.data import DATASETS

    record = recorded_preprocessing(checkpoint_meta)
    if record is None or name not in DATASETS:
        return {}
    accepted = inspect.signature(DATASETS[name].__init__).parameters
    return {
        key: record[key]
        for key in ("bands", "image_max")
        if key in accepted and record.get(key) is not None
    }


def check_preprocessing(
    dataset: SegmentationDataset, checkpoint: str, checkpoint_meta: Mapping[str, Any]
) -> None:
    """Refuse a dataset read with other bands or another scale than the checkpoint's training.

    Raises:
        CheckpointError: Naming both values and the fix.
    """
    from als4gan.checkpoint import recorded_preprocessing

    record = recorded_preprocessing(checkpoint_meta)
    if record is None or record.get("partial"):
        return  # written before checkpoints recorded the preprocessing
    have = dataset.preprocessing()
    in_channels = int((checkpoint_meta.get("model_spec") or {}).get("in_channels", 3))
    want_bands = record.get("bands") or list(range(1, in_channels + 1))
    have_bands = have.get("bands") or list(range(1, dataset.in_channels + 1))
    if list(want_bands) != list(have_bands):
        raise CheckpointError(
            f"{checkpoint} was trained on bands {' '.join(map(str, want_bands))} but dataset "
            f"'{dataset.name}' at {dataset.root} reads bands {' '.join(map(str, have_bands))}. "
            "Omit --bands to use the recorded ones."
        )

    def describe(value: Any) -> str:
        return f"--image-max {float(value):g}" if value is not None else "no --image-max"

    want_max = record.get("image_max")
    prepared = getattr(dataset, "meta", None)
    prepared_max = prepared.get("image_max") if isinstance(prepared, Mapping) else None
    for have_max, where in (
        (have.get("image_max"), "is read with"),
        (prepared_max, "was prepared with"),
    ):
        if have_max is None and where == "was prepared with":
            continue
        same = (have_max is None and want_max is None) or (
            have_max is not None and want_max is not None and float(have_max) == float(want_max)
        )
        if not same:
            raise CheckpointError(
                f"{checkpoint} was trained with {describe(want_max)} but dataset "
                f"'{dataset.name}' at {dataset.root} {where} {describe(have_max)}: its pixels "
                "would be scaled differently from training. Evaluate on data prepared like the "
                "training data, or omit --image-max to use the recorded scale."
            )


def training_crop(checkpoint_meta: Mapping[str, Any]) -> int | None:
    """The square crop side the checkpoint was trained at, when its config records one."""
    config = checkpoint_meta.get("config")
    if not isinstance(config, Mapping):
        return None
    for key in CROP_KEYS:
        value = config.get(key)
        if isinstance(value, int | float) and value > 0:
            return int(value)
        if isinstance(value, list | tuple) and value and all(isinstance(v, int) for v in value):
            return int(min(value))
    return None


def resolve_regime(
    window: int | None, overlap: float | None, checkpoint_meta: Mapping[str, Any]
) -> tuple[InferenceRegime, str]:
    """The regime to score with, and where it came from.

    By default the regime the checkpoint was validated with during training (so the test split
    is scored the way ``best.pt`` was chosen); explicit ``--window`` / ``--overlap`` override
    it, with a warning when they differ from the recorded one. Checkpoints that record no
    regime fall back to :func:`resolve_window` and an overlap of 1/3.

    Returns:
        (the regime, and where it came from: ``"recorded"`` (as validated), ``"override"``
        (explicit and different from the recorded one), ``"explicit"`` (explicit, nothing
        recorded) or ``"default"`` (nothing given, nothing recorded)).
    """
    recorded = recorded_regime(checkpoint_meta)
    if recorded is None:
        return (
            InferenceRegime(
                resolve_window(window, checkpoint_meta),
                DEFAULT_OVERLAP if overlap is None else overlap,
            ),
            "default" if window is None and overlap is None else "explicit",
        )
    if window is not None and window < 0:
        raise ConfigError(f"--window must be positive (or 0 for whole images), got {window}")
    chosen = InferenceRegime(
        recorded.window if window is None else (window or None),
        recorded.overlap if overlap is None else overlap,
    )
    windowed = chosen.window is not None or recorded.window is not None
    if chosen.window != recorded.window or (windowed and chosen.overlap != recorded.overlap):
        log.warning(
            "warning: scoring with %s, but %s was validated with %s during training (its "
            "best.pt was chosen that way); drop --window/--overlap to score the same way",
            chosen.describe(),
            checkpoint_meta.get("path", "this checkpoint"),
            recorded.describe(),
        )
        return chosen, "override"
    return chosen, "recorded"


def resolve_window(window: int | None, checkpoint_meta: Mapping[str, Any]) -> int | None:
    """``--window`` (0 = whole images), else the training crop, else :data:`FALLBACK_WINDOW`."""
    if window is not None:
        if window < 0:
            raise ConfigError(f"--window must be positive (or 0 for whole images), got {window}")
        return window or None
    crop = training_crop(checkpoint_meta)
    if crop is None:
        log.info("checkpoint records no training crop; using %d px windows", FALLBACK_WINDOW)
        return FALLBACK_WINDOW
    return crop


def check_compatible(
    model_spec: Mapping[str, Any],
    dataset: SegmentationDataset,
    checkpoint: str,
    checkpoint_meta: Mapping[str, Any] | None = None,
) -> None:
    """Refuse a dataset whose bands or class count differ from the model's.

    Raises:
        CheckpointError: On a mismatch (naming both values and the fix).
    """
    model_classes = int(model_spec.get("num_classes", dataset.num_classes))
    model_bands = int(model_spec.get("in_channels", dataset.in_channels))
    if model_classes != dataset.num_classes:
        raise CheckpointError(
            f"{checkpoint} predicts {model_classes} classes but dataset '{dataset.name}' at "
            f"{dataset.root} has {dataset.num_classes} ({', '.join(dataset.classes.names)}). "
            "Evaluate on the dataset the model was trained for (--dataset/--root)."
        )
    from als4gan.checkpoint import recorded_classes

    classes = recorded_classes(checkpoint_meta or {})
    trained = [str(name) for name in classes.get("names", [])] if classes is not None else []
    if trained and tuple(trained) != tuple(dataset.classes.names):
        log.warning(
            "%s was trained on classes (%s) but dataset '%s' names them (%s); scores are "
            "computed by class index",
            checkpoint,
            ", ".join(trained),
            dataset.name,
            ", ".join(dataset.classes.names),
        )
    if model_bands != dataset.in_channels:
        raise CheckpointError(
            f"{checkpoint} takes {model_bands}-band images but dataset '{dataset.name}' has "
            f"{dataset.in_channels} bands; choose matching bands with --bands."
        )
