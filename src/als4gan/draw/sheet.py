"""The contact sheet: a grid of captioned thumbnails, each with its colourised mask, and a legend.

``als4gan select`` writes one for the chosen images (``selection/contact_sheet.png``) and the
report draws one the same way for runs that only list their labelled images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageFont

if TYPE_CHECKING:
    from als4gan.data.encoding import ClassTable


#: Font size of the sheet's captions in pixels: legible when the sheet is shown slightly
#: downscaled in the report (11 px or more on screen).
CAPTION_PX = 14

Font = ImageFont.ImageFont | ImageFont.FreeTypeFont
LegendItem = tuple[int, int, str, tuple[int, int, int]]


@dataclass
class Tile:
    """One cell of the sheet: the image thumbnail, its mask thumbnail and a caption.

    Attributes:
        caption: Text under the image (shortened with an ellipsis to fit the cell).
        image: Thumbnail of the image.
        mask: Thumbnail of the colourised mask; ``None`` when the mask could not be read
            (the cell says "no mask").
    """

    caption: str
    image: Image.Image
    mask: Image.Image | None


def caption_font() -> Font:
    """Pillow's built-in font at :data:`CAPTION_PX` (its fixed small bitmap on Pillow < 10.1)."""
    try:
        return ImageFont.load_default(size=CAPTION_PX)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def shrink(array: np.ndarray, size: int, resample: Image.Resampling) -> Image.Image:
    """An (H, W, 3) ``uint8`` array scaled so that its longer side is ``size``."""
    image = Image.fromarray(array)
    scale = size / max(image.size)
    new = (max(1, round(image.size[0] * scale)), max(1, round(image.size[1] * scale)))
    return image.resize(new, resample)


def make_tile(caption: str, rgb: np.ndarray, mask_rgb: np.ndarray | None, thumb: int) -> Tile:
    """A tile from a display image and its colourised mask (bilinear / nearest shrinking)."""
    image = shrink(rgb, thumb, Image.Resampling.BILINEAR)
    mask = None if mask_rgb is None else shrink(mask_rgb, thumb, Image.Resampling.NEAREST)
    return Tile(caption, image, mask)


def _legend_items(classes: ClassTable, width: int, font: Font) -> tuple[list[LegendItem], int]:
    """Position (x, line) of each class swatch, wrapped to ``width``; and the line count."""
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    items: list[LegendItem] = []
    x, line = 6, 0
    for name, color in zip(classes.names, classes.colors, strict=True):
        item_width = 22 + int(measure.textlength(name, font=font))
        if x + item_width > width and x > 6:
            x, line = 6, line + 1
        items.append((x, line, name, color))
        x += item_width
    return items, line + 1


def _draw_tile(
    sheet: Image.Image,
    draw: ImageDraw.ImageDraw,
    tile: Tile,
    x: int,
    y: int,
    geometry: tuple[int, int],
) -> None:
    """Paste one tile at (x, y): image, mask with an outline (or "no mask"), caption."""
    thumb, cell_w = geometry
    font = caption_font()
    sheet.paste(tile.image, (x, y))
    if tile.mask is not None:
        sheet.paste(tile.mask, (x + thumb + 2, y))
        # outline: white (barren) masks would vanish into the background otherwise
        draw.rectangle(
            (x + thumb + 1, y - 1, x + thumb + 2 + tile.mask.size[0], y + tile.mask.size[1]),
            outline=(150, 150, 150),
        )
    else:
        draw.text((x + thumb + 8, y + thumb // 2), "no mask", fill=(120, 0, 0), font=font)
    label = tile.caption
    while len(label) > 4 and draw.textlength(label, font=font) > cell_w - 6:
        label = label[:-2] + "…"
    draw.text((x, y + thumb + 1), label, fill=(0, 0, 0), font=font)


def contact_sheet(
    tiles: Sequence[Tile],
    total: int,
    title: str,
    classes: ClassTable,
    thumb: int = 96,
    columns: int = 6,
) -> Image.Image:
    """The sheet: a title, "N images[, first M shown]", the tiles in a grid, the class legend.

    Args:
        tiles: The cells, in order (thumbnails of side ``thumb`` at most).
        total: Images the sheet stands for (more than ``len(tiles)`` when some are left out).
        title: First line of the sheet.
        classes: Class names and colours of the legend.
        thumb: Thumbnail side in pixels.
        columns: Image/mask pairs per row.
    """
    font = caption_font()
    caption = CAPTION_PX + 6
    header = 2 * CAPTION_PX + 16
    cell_w, cell_h = 2 * thumb + 6, thumb + caption + 6
    columns = max(1, min(columns, len(tiles) or 1))
    rows = max(1, -(-len(tiles) // columns))
    width = max(columns * cell_w + 8, 480)
    legend_items, lines = _legend_items(classes, width, font)
    legend = (CAPTION_PX + 8) * lines + 4
    sheet = Image.new("RGB", (width, header + rows * cell_h + legend + 8), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    note = f"{total} images" + (f", first {len(tiles)} shown" if len(tiles) < total else "")
    draw.text((6, 4), title, fill=(0, 0, 0), font=font)
    draw.text((6, CAPTION_PX + 8), note, fill=(60, 60, 60), font=font)
    for index, tile in enumerate(tiles):
        x = 4 + (index % columns) * cell_w
        y = header + (index // columns) * cell_h
        _draw_tile(sheet, draw, tile, x, y, (thumb, cell_w))
    top = header + rows * cell_h + 4
    for x, line, name, color in legend_items:
        y = top + (CAPTION_PX + 8) * line
        draw.rectangle((x, y, x + 12, y + 12), fill=tuple(color), outline=(0, 0, 0))
        draw.text((x + 16, y), name, fill=(0, 0, 0), font=font)
    return sheet
