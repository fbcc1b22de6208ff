"""``prepare folder --tile-size S``: cut large rasters (and the masks there are) into tiles.

Each image ``SRC/images/<id>.<ext>`` becomes tiles ``OUT/tiles/images/<id>_y<top>_x<left>.<ext>``
on the grid of :func:`als4gan.data.tiling.tile_grid` (``overlap``: the last tile of a row or
column is shifted back to end at the border; ``drop``: the incomplete strip is left out).
GeoTIFFs are cut with windowed reads and written as GeoTIFFs with every band, the data type,
the no-data value, the CRS and the tile's own geotransform, so each tile stays georeferenced;
other images become lossless PNG tiles. A mask ``SRC/masks/<id>.*`` present is cut on the same
grid (its stored values or colours unchanged; palette PNGs keep their palette); an image
without one gives unlabelled tiles, whose masks are saved later into ``OUT/tiles/masks/``.

Existing tiles are rewritten identically (the cut is deterministic); nothing in
``OUT/tiles/masks/`` is ever deleted, so masks saved there survive a repeated ``prepare``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from als4gan.data.classfile import CLASSES_FILE_NAMES
from als4gan.data.imageio import GEOTIFF_SUFFIXES
from als4gan.data.layout import scan_files
from als4gan.data.tiling import Tile, tile_grid
from als4gan.errors import ConfigError, DataError
from als4gan.io import atomic_open

#: Remainder modes for folder tiles (padding would invent pixels in colour masks).
FOLDER_REMAINDERS: tuple[str, ...] = ("overlap", "drop")
TILES_DIR = "tiles"


def _raster_size(path: Path) -> tuple[int, int]:
    """(height, width) of an image file."""
    if path.suffix.lower() in GEOTIFF_SUFFIXES:
        import rasterio

        with rasterio.open(path) as src:
            return int(src.height), int(src.width)
    from PIL import Image

    with Image.open(path) as image:
        return int(image.size[1]), int(image.size[0])


def _shifted(transform: Any, tile: Tile) -> Any:
    """The geotransform of ``tile``: the raster's, with its origin moved to the tile's corner."""
    from affine import Affine

    a, b, c, d, e, f = transform[:6]
    return Affine(a, b, c + a * tile.left + b * tile.top, d, e, f + d * tile.left + e * tile.top)


def _write_geotiff_tiles(source: Path, tiles: list[tuple[Tile, Path]]) -> None:
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(source) as src:
        profile: dict[str, Any] = dict(src.profile)
        for tile, target in tiles:
            window = Window(tile.left, tile.top, tile.width, tile.height)
            data = src.read(window=window)
            profile.update(
                driver="GTiff",
                width=tile.width,
                height=tile.height,
                transform=_shifted(src.transform, tile),
            )
            for key in ("blockxsize", "blockysize", "tiled"):
                profile.pop(key, None)
            partial = target.with_name(f".{target.name}.partial")
            with rasterio.open(partial, "w", **profile) as dst:
                dst.write(data)
            os.replace(partial, target)


def _write_pil_tiles(source: Path, tiles: list[tuple[Tile, Path]]) -> None:
    from PIL import Image

    with Image.open(source) as image:
        image.load()
        for tile, target in tiles:
            box = (tile.left, tile.top, tile.left + tile.width, tile.top + tile.height)
            with atomic_open(target, "wb") as handle:
                image.crop(box).save(handle, format="PNG")


def _cut(source: Path, folder: Path, grid: list[Tile], source_id: str) -> list[str]:
    """Write the tiles of ``source`` into ``folder``; returns the tile ids."""
    geotiff = source.suffix.lower() in GEOTIFF_SUFFIXES
    suffix = ".tif" if geotiff else ".png"
    tiles = [(tile, folder / f"{tile.tile_id(source_id)}{suffix}") for tile in grid]
    try:
        (_write_geotiff_tiles if geotiff else _write_pil_tiles)(source, tiles)
    except (OSError, ValueError) as err:
        raise DataError(f"{source} could not be tiled ({err}); re-export it") from None
    return [tile.tile_id(source_id) for tile in grid]


def tile_folder(
    src: str | Path, out: str | Path, tile_size: int, remainder: str = "overlap"
) -> tuple[Path, dict[str, str]]:
    """Cut every image of ``src/images`` (and its mask, if any) into ``out/tiles``.

    Args:
        src: Folder with ``images/`` and optionally ``masks/`` (same stems).
        out: Output folder; tiles go to ``out/tiles/images`` and ``out/tiles/masks``.
        tile_size: Tile side in pixels (> 0).
        remainder: ``"overlap"`` or ``"drop"`` (see the module docstring).

    Returns:
        The tiles folder, and tile id -> source image id (splits keep a raster's tiles
        together).

    Raises:
        ConfigError: On a bad tile size or remainder mode.
        DataError: If a mask's size differs from its image's, or a file cannot be read.
    """
    from als4gan.data.folder import IMAGE_EXTENSIONS, MASK_EXTENSIONS

    if tile_size <= 0:
        raise ConfigError(f"--tile-size must be a positive number of pixels, got {tile_size}")
    if remainder not in FOLDER_REMAINDERS:
        raise ConfigError(
            f"--remainder for folder tiles must be one of {', '.join(FOLDER_REMAINDERS)}, "
            f"got '{remainder}'"
        )
    source_root, tiles_root = Path(src), Path(out) / TILES_DIR
    images = scan_files(source_root / "images", IMAGE_EXTENSIONS)[0]
    masks_dir = source_root / "masks"
    masks = scan_files(masks_dir, MASK_EXTENSIONS)[0] if masks_dir.is_dir() else {}
    (tiles_root / "images").mkdir(parents=True, exist_ok=True)
    (tiles_root / "masks").mkdir(parents=True, exist_ok=True)
    groups: dict[str, str] = {}
    for source_id, image_path in images.items():
        height, width = _raster_size(image_path)
        grid = tile_grid(height, width, tile_size, remainder)
        ids = _cut(image_path, tiles_root / "images", grid, source_id)
        mask_path = masks.get(source_id)
        if mask_path is not None:
            if _raster_size(mask_path) != (height, width):
                raise DataError(
                    f"{mask_path} is not the size of its image {image_path} "
                    f"({width}x{height}); re-export it on the image's pixel grid"
                )
            _cut(mask_path, tiles_root / "masks", grid, source_id)
        groups.update(dict.fromkeys(ids, source_id))
    return tiles_root, groups


def tiled_source(
    src_root: Path,
    out_root: Path,
    classes_file: str | Path | None,
    tile_size: int,
    remainder: str,
) -> tuple[Path, dict[str, str] | None, str | Path | None]:
    """What ``prepare folder`` reads: ``src`` itself, or (``tile_size > 0``) its tiles.

    Returns:
        The folder to read, tile id -> source image id (``None`` without tiling), and the
        classes file (with tiling, ``src``'s own classes file when none was given, since the
        tiles folder holds none).
    """
    if not tile_size:
        return src_root, None, classes_file
    if classes_file is None:
        found = [src_root / n for n in CLASSES_FILE_NAMES if (src_root / n).is_file()]
        classes_file = found[0] if found else None
    tiles_root, groups = tile_folder(src_root, out_root, tile_size, remainder)
    return tiles_root, groups, classes_file


def grouped_split(
    ids: list[str],
    groups: dict[str, str],
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> dict[str, list[str]]:
    """Split tiles by their source raster, so no raster has tiles in two splits."""
    from als4gan.data.splits import random_split

    sources = sorted({groups[sample_id] for sample_id in ids})
    by_source = random_split(sources, val_fraction, test_fraction, seed)
    where = {source: name for name, members in by_source.items() for source in members}
    splits: dict[str, list[str]] = {name: [] for name in by_source}
    for sample_id in ids:
        splits[where[groups[sample_id]]].append(sample_id)
    return {name: sorted(members) for name, members in splits.items()}


__all__ = ["FOLDER_REMAINDERS", "TILES_DIR", "grouped_split", "tile_folder", "tiled_source"]
