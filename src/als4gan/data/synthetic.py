"""The built-in default dataset: procedurally generated aerial-looking land-cover scenes.

No download: scenes are generated deterministically from a seed. Six DeepGlobe-like classes with
their own textures (urban blocks with buildings and roads, agricultural parcels with field
stripes, rangeland, forest canopy, water, barren ground), colour jitter so that colour alone does
not separate them, and real-world-like imbalance (water is rare, agriculture dominates).
``als4gan prepare synthetic`` writes the scenes to disk (``images/<id>.png``, index masks
``masks/<id>.png``, ``splits/*.txt``, ``dataset.json``) and :class:`SyntheticDataset` reads them
back like any other dataset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from als4gan.data.base import ALL_SPLIT, SPLITS_DIR, SampleTransform, SegmentationDataset
from als4gan.data.encoding import ClassTable
from als4gan.data.imageio import read_mask_array, read_rgb, save_png
from als4gan.data.prepared import check_dataset_kind
from als4gan.data.synthetic_scene import generate_scene
from als4gan.errors import ConfigError, DataError, DatasetNotFoundError
from als4gan.io import write_ids, write_json

#: Bump when the generator's output changes, so stale prepared folders are detected.
GENERATOR_VERSION = 1

SYNTHETIC_CLASSES = ClassTable(
    names=("urban", "agriculture", "rangeland", "forest", "water", "barren"),
    colors=(
        (0, 255, 255),
        (255, 255, 0),
        (255, 0, 255),
        (0, 255, 0),
        (0, 0, 255),
        (255, 255, 255),
    ),
)


@dataclass(frozen=True)
class SyntheticConfig:
    """Parameters of a generated dataset.

    Attributes:
        num_images: Number of scenes.
        image_size: Side length in pixels (square scenes).
        seed: Master seed; scene ``i`` depends only on (seed, i, image_size).
        val_fraction: Share of scenes in the validation split.
        test_fraction: Share of scenes in the test split.
    """

    num_images: int = 600
    image_size: int = 128
    seed: int = 0
    val_fraction: float = 0.15
    test_fraction: float = 0.15

    def validate(self) -> None:
        """Raise :class:`ConfigError` on impossible values."""
        if self.num_images < 3:
            raise ConfigError("--num-images must be at least 3 (one per train/val/test split)")
        if self.image_size < 32:
            raise ConfigError("--image-size must be at least 32 pixels")
        if not (0 < self.val_fraction < 1 and 0 < self.test_fraction < 1):
            raise ConfigError("validation and test fractions must lie in (0, 1)")
        if self.val_fraction + self.test_fraction >= 1:
            raise ConfigError("validation + test fractions must leave some training images")


# ---------------------------------------------------------------------------- noise helpers
def split_ids(ids: Sequence[str], config: SyntheticConfig) -> dict[str, list[str]]:
    """Seeded train/val/test split at image level."""
    rng = np.random.default_rng([config.seed, 7919])
    order = rng.permutation(len(ids))
    n_val = max(1, round(config.val_fraction * len(ids)))
    n_test = max(1, round(config.test_fraction * len(ids)))
    shuffled = [ids[i] for i in order]
    return {
        "train": sorted(shuffled[n_val + n_test :]),
        "val": sorted(shuffled[:n_val]),
        "test": sorted(shuffled[n_val : n_val + n_test]),
    }


def write_synthetic(
    out: str | Path, config: SyntheticConfig, show_progress: bool = True, force: bool = False
) -> dict[str, Any]:
    """Generate the dataset into ``out`` (images, masks, splits, dataset.json).

    The options are checked before anything is written. A folder already holding this exact
    dataset is left as it is; an interrupted generation with the same options resumes (scenes
    already on disk are kept). A folder holding another dataset, or this one generated with
    other options, is refused unless ``force``: then every scene file of the old generation is
    deleted first, so no scene of another size or seed stays among the new ones.
    ``dataset.json`` is written last, so its ``complete: true`` means the folder is complete.

    Args:
        out: Output folder.
        config: Generation options.
        show_progress: Progress bar while generating.
        force: Replace a dataset prepared with other options (or another dataset's files).

    Returns:
        The metadata written to ``dataset.json``.

    Raises:
        RunExistsError: If ``out`` holds another dataset or other options and ``force`` is
            false.
    """
    from als4gan.data.prepared import read_meta

    config.validate()
    root = Path(out)
    meta_path = root / "dataset.json"
    params = {
        "generator_version": GENERATOR_VERSION,
        "num_images": config.num_images,
        "image_size": config.image_size,
        "seed": config.seed,
        "val_fraction": config.val_fraction,
        "test_fraction": config.test_fraction,
    }
    meta = {
        "dataset": "synthetic",
        **params,
        "classes": SYNTHETIC_CLASSES.to_dict(),
        "params": params,
        "complete": True,
    }
    existing = read_meta(root)
    state = _existing_state(root, existing, params, force)
    if state == "complete":
        assert existing is not None
        return existing
    ids = [f"syn_{index:05d}" for index in range(config.num_images)]
    if state == "fresh":
        _remove_scene_files(root)
    write_json(meta_path, {"dataset": "synthetic", "params": params, "complete": False})
    _write_scenes(root, ids, config, resume=state == "resume", show_progress=show_progress)
    for split, split_list in split_ids(ids, config).items():
        write_ids(root / SPLITS_DIR / f"{split}.txt", split_list)
    write_json(meta_path, meta)
    return meta


def _existing_state(
    root: Path, existing: dict[str, Any] | None, params: dict[str, Any], force: bool
) -> str:
    """``"complete"``, ``"resume"`` (interrupted with the same options) or ``"fresh"``.

    Raises:
        RunExistsError: If ``root`` holds another dataset or other options and ``force`` is
            false.
    """
    from als4gan.errors import RunExistsError

    if existing is None:
        return "fresh"
    if _same_synthetic(existing, params):
        return "complete" if existing.get("complete", True) else "resume"
    if not force:
        raise RunExistsError(
            f"{root} already holds a '{existing.get('dataset')}' dataset prepared with "
            f"other options ({existing.get('params', _legacy_params(existing))}). Pass "
            "--force to replace it, or choose another --out."
        )
    return "fresh"


def _write_scenes(
    root: Path, ids: list[str], config: SyntheticConfig, resume: bool, show_progress: bool
) -> None:
    """Generate and save every scene (``resume``: keep the scenes already on disk)."""
    from als4gan.runtime import progress

    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    bar = progress(ids, desc="generating scenes", unit="img", disable=not show_progress or None)
    for index, sample_id in enumerate(bar):
        image_file = root / "images" / f"{sample_id}.png"
        mask_file = root / "masks" / f"{sample_id}.png"
        if resume and image_file.is_file() and mask_file.is_file():
            continue
        image, mask = generate_scene(config.seed, index, config.image_size)
        save_png(image_file, image)
        save_png(mask_file, mask)


def _legacy_params(meta: dict[str, Any]) -> dict[str, Any]:
    """The generation options of a ``dataset.json`` written before ``params`` was recorded."""
    keys = [
        "generator_version",
        "num_images",
        "image_size",
        "seed",
        "val_fraction",
        "test_fraction",
    ]
    return {key: meta.get(key) for key in keys}


def _same_synthetic(meta: dict[str, Any], params: dict[str, Any]) -> bool:
    """Whether ``meta`` describes a synthetic generation with exactly ``params``."""
    if meta.get("dataset") != "synthetic":
        return False
    recorded = meta.get("params")
    return (recorded if isinstance(recorded, dict) else _legacy_params(meta)) == params


def _remove_scene_files(root: Path) -> None:
    """Delete the scene files of an earlier generation (``syn_NNNNN.png`` only)."""
    import re

    scene = re.compile(r"^syn_\d{5}\.png$")
    for folder in (root / "images", root / "masks"):
        if folder.is_dir():
            for file in folder.iterdir():
                if scene.match(file.name):
                    file.unlink()


class SyntheticDataset(SegmentationDataset):
    """Reads a dataset written by ``als4gan prepare synthetic``.

    Layout: ``images/<id>.png`` (RGB), ``masks/<id>.png`` (class indices 0..5),
    ``splits/{train,val,test}.txt`` and ``dataset.json``.
    """

    name = "synthetic"
    classes = SYNTHETIC_CLASSES

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        transform: SampleTransform | None = None,
        ids: Sequence[str] | None = None,
    ) -> None:
        super().__init__(root, split, transform, ids)

    def layout_help(self) -> str:
        """Expected layout."""
        return "Create it with 'als4gan prepare synthetic --out DIR' (images/, masks/, splits/)."

    def _verify_root(self) -> None:
        super()._verify_root()
        check_dataset_kind(self.root, "synthetic")  # another dataset's folder: say which
        if not (self.root / "images").is_dir() or not (self.root / "masks").is_dir():
            raise DatasetNotFoundError(
                f"{self.root} is not a prepared synthetic dataset (no images/ and masks/). "
                f"{self.layout_help()}"
            )

    def discover_ids(self) -> list[str]:
        """Ids of all image files that have a mask."""
        return [
            path.stem
            for path in (self.root / "images").glob("*.png")
            if (self.root / "masks" / path.name).is_file()
        ]

    def image_path(self, sample_id: str) -> Path:
        """``images/<id>.png``."""
        return self.root / "images" / f"{sample_id}.png"

    def mask_path(self, sample_id: str) -> Path:
        """``masks/<id>.png``."""
        return self.root / "masks" / f"{sample_id}.png"

    def load_image(self, sample_id: str) -> np.ndarray:
        """RGB image."""
        return read_rgb(self.image_path(sample_id))

    def load_mask(self, sample_id: str) -> np.ndarray:
        """Index mask, checked against the class table."""
        path = self.mask_path(sample_id)
        mask = read_mask_array(path)
        if mask.ndim != 2:
            raise DataError(f"{path} must be a single-channel index mask, got shape {mask.shape}")
        bad = np.unique(mask[(mask >= self.num_classes) & (mask != self.classes.ignore_index)])
        if bad.size:
            raise DataError(
                f"{path} holds value(s) {bad.tolist()} outside the class table "
                f"(0..{self.num_classes - 1} and {self.classes.ignore_index} = ignore). "
                "Regenerate the dataset with 'als4gan prepare synthetic'."
            )
        return mask.astype(np.uint8)


__all__ = [
    "ALL_SPLIT",
    "SYNTHETIC_CLASSES",
    "SyntheticConfig",
    "SyntheticDataset",
    "generate_scene",
    "write_synthetic",
]
