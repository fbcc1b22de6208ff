"""Any ``images/`` + ``masks/`` folder described by a small classes file (YAML or JSON).

Layout: ``ROOT/images/<id>.<png|jpg|tif|tiff>`` and ``ROOT/masks/<id>.<png|tif|tiff>`` (same
stem). An image without a mask (or no ``masks/`` folder at all) is unlabelled: it belongs to
the pool that ``select --oracle human`` asks about and that ``train`` uses as unlabelled data.
Images may be GeoTIFFs with any number of bands, read through rasterio; ``bands``
(1-based, default the first three) selects them and ``in_channels`` is their number. Pixels
are scaled by :func:`als4gan.data.imageio.scale_to_unit`: ``uint8`` by 1/255, float images in
[0, 1] as they are, anything else (``uint16``, ``int16``, floats such as 0-5000) only with
``image_max`` (e.g. 10000 for Sentinel-2 reflectances). NaN pixels and the raster's no-data
value are no-data: labelled ignore, fed as 0.

Masks are decoded per file: single-channel masks (index PNG/TIFF) through the class values,
RGB masks through the class colours. Palette PNG masks are decoded through their palette
(as colours) when the classes file gives colours, else by their indices. The classes file::

    classes:                   # index order = class index
      - name: background
        value: 0               # value in index masks (default: the position in this list)
        color: [0, 0, 0]       # colour in colour masks and for display (optional)
      - name: building
        value: 1
        color: [255, 0, 0]
    ignore_values: [255]       # index values meaning "no label" (default [255])
    ignore_colors: []          # colours meaning "no label" (default none)
    unknown: error             # a value/colour outside the table: error (default) or ignore

Short forms: a class may be just its name; ``names: [...]`` with optional ``values: [...]`` and
``colors: [...]`` lists works too. ``als4gan prepare folder`` copies the table to
``OUT/classes.yaml`` and records ``bands``/``image_max`` in ``OUT/dataset.json``, so later
stages need only ``--dataset folder --root OUT``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from als4gan.argtypes import check_image_max
from als4gan.data.base import ALL_SPLIT, SampleTransform, SegmentationDataset
from als4gan.data.classfile import (
    CLASSES_FILE_NAMES,
    ClassSpec,
    default_colors,
    load_classes_file,
    parse_classes,
)
from als4gan.data.encoding import (
    IGNORE_INDEX,
    decode_color_mask,
    decode_index_mask,
    dominant_class,
)
from als4gan.data.folder_tiles import tiled_source
from als4gan.data.imageio import (
    GEOTIFF_SUFFIXES,
    band_count,
    read_mask_array,
    read_raster,
    read_raster_with_nodata,
    scale_to_unit,
)
from als4gan.data.layout import scan_files
from als4gan.data.prepared import (
    check_dataset_kind,
    data_root,
    finish_prepare,
    read_meta,
    source_reference,
    start_prepare,
)
from als4gan.data.splits import describe_splits, random_split, stratified_split, write_splits
from als4gan.errors import ConfigError, DataError, DatasetNotFoundError
from als4gan.io import write_yaml

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
MASK_EXTENSIONS = (".png", ".tif", ".tiff")

LAYOUT_HELP = (
    "Expected ROOT/images/<id>.<png|jpg|tif> with ROOT/masks/<id>.<png|tif> and a classes file "
    "(--classes-file, or ROOT/classes.yaml); see docs/data.md."
)


class FolderDataset(SegmentationDataset):
    """A generic ``images/`` + ``masks/`` dataset with a classes file.

    Args:
        root: The data folder, or a folder written by ``prepare folder``.
        split: Split name under ``root/splits``, an id-list ``.txt`` or ``"all"``.
        transform: Optional sample transform.
        ids: Explicit ids (overrides ``split``).
        classes_file: YAML/JSON classes file (default: ``classes.yaml`` in the root).
        bands: 1-based image bands to read (default: recorded by ``prepare``, else the first
            three).
        image_max: Value mapped to 1.0 (default: recorded by ``prepare``, else by dtype).
    """

    name = "folder"

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        transform: SampleTransform | None = None,
        ids: Sequence[str] | None = None,
        classes_file: str | Path | None = None,
        bands: Sequence[int] | None = None,
        image_max: float | None = None,
    ) -> None:
        self.meta = check_dataset_kind(root, self.name)
        meta = self.meta or {}
        self.data_root = Path(root)
        self._classes_file = classes_file
        self.bands: list[int] | None = list(bands) if bands else meta.get("bands")
        if self.bands is not None and (
            not self.bands or any(not isinstance(b, int) or b < 1 for b in self.bands)
        ):
            raise ConfigError(f"--bands must be 1-based band numbers, got {self.bands}")
        self.image_max: float | None = (
            check_image_max(image_max)
            if image_max is not None
            else check_image_max(meta.get("image_max"), f"image_max in {Path(root)}/dataset.json")
        )
        self._images: dict[str, Path] = {}
        self._masks: dict[str, Path] = {}
        #: Pixels with a value/colour outside the table set to ignore (``unknown: ignore``).
        self.unmatched_pixels = 0
        self.unmatched_masks = 0
        self._probed_channels: int | None = None
        super().__init__(root, split, transform, ids)
        missing = [sample_id for sample_id in self.ids if sample_id not in self._images]
        if missing:
            raise DatasetNotFoundError(
                f"{len(missing)} id(s) of split '{split}' have no image in "
                f"{self.data_root / 'images'}, e.g. '{missing[0]}'. Re-run 'als4gan prepare "
                "folder' if files were renamed."
            )
        self.in_channels = self._probe_channels()
        self._probed_channels = self.in_channels

    def layout_help(self) -> str:
        """Expected layout."""
        return LAYOUT_HELP

    def _verify_root(self) -> None:
        super()._verify_root()
        self.data_root = data_root(self.root, self.meta)
        if not (self.data_root / "images").is_dir():
            raise DatasetNotFoundError(f"{self.data_root / 'images'} does not exist. {LAYOUT_HELP}")
        self.spec = self._load_spec()
        self.classes = self.spec.table
        self._images = scan_files(self.data_root / "images", IMAGE_EXTENSIONS)[0]
        self.refresh_masks()

    @property
    def masks_dir(self) -> Path:
        """``ROOT/masks``: where masks are read from (and saved by annotators)."""
        return self.data_root / "masks"

    def refresh_masks(self) -> None:
        """Rescan ``masks/`` (masks saved since the dataset was opened become visible)."""
        folder = self.masks_dir
        self._masks = scan_files(folder, MASK_EXTENSIONS)[0] if folder.is_dir() else {}

    def has_mask(self, sample_id: str) -> bool:
        """Whether ``masks/<id>.*`` exists (scanned when opened, or by :meth:`refresh_masks`)."""
        return sample_id in self._masks

    def _load_spec(self) -> ClassSpec:
        if self._classes_file is not None:
            return load_classes_file(self._classes_file)
        for folder in dict.fromkeys((self.root, self.data_root)):
            for name in CLASSES_FILE_NAMES:
                if (folder / name).is_file():
                    return load_classes_file(folder / name)
        raise DatasetNotFoundError(
            f"no classes file for the folder dataset {self.root}: pass --classes-file FILE or "
            f"put classes.yaml in {self.root}. Minimal example:\n"
            "  classes: [{name: background, value: 0}, {name: building, value: 1}]\n"
            "  ignore_values: [255]"
        )

    def _probe_channels(self) -> int:
        """Bands the samples will have, checked against the first image's band count."""
        if not self.ids:
            return len(self.bands) if self.bands else 3
        path = self.image_path(self.ids[0])
        if path.suffix.lower() not in GEOTIFF_SUFFIXES and not self.bands:
            count = int(read_raster(path, None).shape[2])
        else:
            count = band_count(path)
        if self.bands:
            missing = [band for band in self.bands if band > count]
            if missing:
                raise DataError(
                    f"{path} has {count} band(s); band(s) {missing} do not exist. Choose "
                    f"--bands between 1 and {count}."
                )
            return len(self.bands)
        return min(3, count)

    def discover_ids(self) -> list[str]:
        """Every image id; those without a mask are unlabelled (reported once)."""
        without = sorted(set(self._images) - set(self._masks))
        if without:
            logger.info(
                "%d image(s) in %s have no mask in %s: unlabelled (e.g. %s)",
                len(without),
                self.data_root / "images",
                self.masks_dir,
                self._images[without[0]].name,
            )
        orphans = sorted(set(self._masks) - set(self._images))
        if orphans:
            logger.warning(
                "%d mask(s) in %s have no image and are ignored (e.g. %s)",
                len(orphans),
                self.masks_dir,
                self._masks[orphans[0]].name,
            )
        return sorted(self._images)

    def image_path(self, sample_id: str) -> Path:
        """``images/<id>.*``."""
        path = self._images.get(sample_id)
        if path is None:
            raise DatasetNotFoundError(
                f"no image for id '{sample_id}' in {self.data_root / 'images'}. {LAYOUT_HELP}"
            )
        return path

    def mask_path(self, sample_id: str) -> Path:
        """``masks/<id>.*``."""
        path = self._masks.get(sample_id)
        if path is None:
            raise DatasetNotFoundError(
                f"no mask for image {self._images.get(sample_id, sample_id)} in "
                f"{self.data_root / 'masks'} (expected {sample_id}.png or .tif). Add it or drop "
                "the id from the split."
            )
        return path

    def load_image(self, sample_id: str) -> np.ndarray:
        """(H, W, bands) image: ``uint8`` as stored, else float32 in [0, 1] (NaN = no data).

        Raises:
            DataError: If the pixels need ``--image-max`` (see
                :func:`als4gan.data.imageio.scale_to_unit`) or the band count differs.
        """
        path = self.image_path(sample_id)
        image, nodata = read_raster_with_nodata(path, self.bands)
        expected = len(self.bands) if self.bands else self._probed_channels
        if expected is not None and image.shape[2] != expected:
            raise DataError(
                f"{path} has {image.shape[2]} band(s) but the dataset reads {expected} (from "
                f"the first image). Give all images the same bands, or pass --bands."
            )
        if image.dtype == np.uint8 and self.image_max is None and nodata is None:
            return image
        return scale_to_unit(image, self.image_max, source=path, nodata=nodata)

    def preprocessing(self) -> dict[str, Any]:
        """The ``bands`` and ``image_max`` this dataset reads with."""
        return {"bands": self.bands, "image_max": self.image_max}

    def load_mask(self, sample_id: str) -> np.ndarray:
        """Class indices (255 = ignore) from an index or colour mask.

        Raises:
            DataError: If the mask holds values/colours outside the classes file (unless it says
                ``unknown: ignore``) or is a colour mask while the file gives no colours.
        """
        path = self.mask_path(sample_id)
        spec = self.spec
        stored = read_mask_array(path, palette_colors=spec.has_colors)
        if stored.ndim == 2:
            value_map = {value: index for index, value in enumerate(spec.values)}
            mask, bad = decode_index_mask(
                stored, self.num_classes, value_map, ignore_values=spec.ignore_values
            )
            unmatched = int(np.isin(stored, bad).sum()) if bad.size else 0
            described = f"value(s) {bad.tolist()[:10]}"
            table = (
                f"values {list(spec.values)} for {self.num_classes} classes, ignore "
                f"{list(spec.ignore_values)}"
            )
        else:
            if not spec.has_colors:
                raise DataError(
                    f"{path} is a colour mask but the classes file {spec.source} gives no "
                    "colours. Add 'color: [r, g, b]' to every class, or store index masks."
                )
            mask, unmatched = decode_color_mask(
                stored, self.classes.colors, spec.ignore_colors, IGNORE_INDEX
            )
            described = ""
            if unmatched:
                rgb = stored[:, :, :3].astype(np.int64)
                packed = (rgb[:, :, 0] << 16) | (rgb[:, :, 1] << 8) | rgb[:, :, 2]
                known = [(r << 16) | (g << 8) | b for r, g, b in self.classes.colors]
                known += [(r << 16) | (g << 8) | b for r, g, b in spec.ignore_colors]
                stray = np.unique(packed[~np.isin(packed, known)])[:10]
                colors = [(int(k) >> 16, (int(k) >> 8) & 255, int(k) & 255) for k in stray]
                described = f"colour(s) {colors}"
            table = f"colours of {self.num_classes} classes"
        if unmatched:
            if spec.unknown == "error":
                raise DataError(
                    f"{path} holds {described} ({unmatched} px) outside the class table of "
                    f"{spec.source} ({table}). Add the missing classes to the classes file "
                    "(a wrong class count?), fix the mask, or set 'unknown: ignore'."
                )
            self.unmatched_pixels += unmatched
            self.unmatched_masks += 1
        return mask


def _folder_splits(
    dataset: FolderDataset,
    groups: dict[str, str] | None,
    split: tuple[float, float, int],
    stratify: bool,
    show_progress: bool,
) -> dict[str, list[str]]:
    """Train/val/test ids of a folder dataset (``split``: val and test fractions, seed).

    Validation and test need masks: they are drawn from the masked images only, and every
    image without a mask joins the training split as unlabelled pool.
    """
    from als4gan.runtime import progress

    val_fraction, test_fraction, seed = split
    masked = [sample_id for sample_id in dataset.ids if dataset.has_mask(sample_id)]
    unmasked = [sample_id for sample_id in dataset.ids if not dataset.has_mask(sample_id)]
    if groups is not None and masked:
        from als4gan.data.folder_tiles import grouped_split

        splits = grouped_split(masked, groups, val_fraction, test_fraction, seed)
    elif stratify and masked:
        bar = progress(masked, desc="reading masks", unit="img", disable=not show_progress or None)
        labels = [
            dominant_class(dataset.load_mask(sample_id), dataset.num_classes) for sample_id in bar
        ]
        splits = stratified_split(masked, labels, val_fraction, test_fraction, seed)
    elif masked:
        splits = random_split(masked, val_fraction, test_fraction, seed)
    else:
        splits = {"train": [], "val": [], "test": []}
    if unmasked:
        splits["train"] = sorted([*splits["train"], *unmasked])
    return splits


def _prepare_params(
    dataset: FolderDataset,
    src_root: Path,
    split: tuple[float, float, int],
    stratify: bool,
    tile_size: int,
    remainder: str,
) -> dict[str, Any]:
    """The parameters recorded in ``dataset.json`` (a re-run with the same ones does nothing)."""
    val_fraction, test_fraction, seed = split
    return {
        "source": str(src_root.resolve()),
        "classes": dataset.spec.to_dict(),
        "bands": dataset.bands,
        "image_max": dataset.image_max,
        "val_fraction": val_fraction,
        "test_fraction": test_fraction,
        "seed": seed,
        "stratify": stratify,
        **({"tile_size": tile_size, "remainder": remainder} if tile_size else {}),
    }


def _write_prepared(
    out_root: Path,
    src_root: Path,
    dataset: FolderDataset,
    params: dict[str, Any],
    splits: dict[str, list[str]],
) -> dict[str, Any]:
    """Write ``classes.yaml``, the split lists and (last) ``dataset.json``; its content."""
    unmasked = [sample_id for sample_id in dataset.ids if not dataset.has_mask(sample_id)]
    classes_out = out_root / "classes.yaml"
    if not (classes_out.is_file() and classes_out.resolve() == Path(dataset.spec.source).resolve()):
        write_yaml(classes_out, dataset.spec.to_dict())
    written = write_splits(out_root, splits)
    return finish_prepare(
        out_root,
        "folder",
        params,
        source=source_reference(out_root, src_root),
        bands=dataset.bands,
        image_max=dataset.image_max,
        in_channels=dataset.in_channels,
        num_images=len(dataset.ids),
        num_unlabelled=len(unmasked),
        split_sizes={name: len(ids) for name, ids in splits.items()},
        splits=sorted(written),
        summary=describe_splits(splits),
    )


def prepare_folder(
    src: str | Path,
    out: str | Path,
    classes_file: str | Path | None = None,
    bands: Sequence[int] | None = None,
    image_max: float | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    stratify: bool = False,
    force: bool = False,
    show_progress: bool = True,
    tile_size: int = 0,
    remainder: str = "overlap",
) -> dict[str, Any]:
    """Write split lists for a folder dataset without copying its images (unless tiled).

    ``out/splits/*.txt`` list ids; ``out/classes.yaml`` holds the validated class table;
    ``out/dataset.json`` records where the data is and the ``bands``/``image_max`` options,
    so later stages need only ``--dataset folder --root OUT``. ``out`` may be ``src``.

    Args:
        src: Folder with ``images/`` and ``masks/``.
        out: Output folder (may equal ``src``).
        classes_file: Classes file (default: ``src/classes.yaml``).
        bands: 1-based bands to read from multi-band images.
        image_max: Pixel value mapped to 1.0.
        val_fraction: Share of images for validation.
        test_fraction: Share of images for test.
        seed: Seed of the split.
        stratify: Keep the share of each dominant class in every split (reads every mask).
        force: Overwrite an earlier preparation with other parameters.
        show_progress: Progress bar while reading masks for ``stratify``.
        tile_size: Cut images and masks into tiles of this side first, into ``out/tiles``
            (see :mod:`als4gan.data.folder_tiles`); each raster's tiles share a split. 0 = no.
        remainder: Border tiles with ``tile_size``: ``"overlap"`` or ``"drop"``.

    Returns:
        The metadata written to ``dataset.json``.
    """
    out_root = Path(out)
    src_root, groups, classes_file = tiled_source(
        Path(src), out_root, classes_file, tile_size, remainder
    )
    dataset = FolderDataset(
        src_root, ALL_SPLIT, classes_file=classes_file, bands=bands, image_max=image_max
    )
    if dataset.ids:  # one image read now: pixels that need --image-max are refused here
        dataset.load_image(dataset.ids[0])
    split = (val_fraction, test_fraction, seed)
    params = _prepare_params(dataset, src_root, split, stratify, tile_size, remainder)
    out_root.mkdir(parents=True, exist_ok=True)
    if start_prepare(out_root, "folder", params, force) == "complete":
        meta: dict[str, Any] = read_meta(out_root) or {}
        return meta
    splits = _folder_splits(dataset, groups, split, stratify, show_progress)
    return _write_prepared(out_root, src_root, dataset, params, splits)


__all__ = [
    "ClassSpec",
    "FolderDataset",
    "default_colors",
    "load_classes_file",
    "parse_classes",
    "prepare_folder",
]
