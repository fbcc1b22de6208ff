"""Procedural aerial-looking land-cover scenes: the generator behind the synthetic dataset.

Six DeepGlobe-like classes with their own textures (urban blocks with buildings and roads,
agricultural parcels with field stripes, rangeland, forest canopy, water, barren ground),
colour jitter so that colour alone does not separate them, and real-world-like imbalance.
Scene ``i`` depends only on (seed, i, size). :mod:`als4gan.data.synthetic` writes the scenes
to disk and reads them back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image

URBAN, AGRICULTURE, RANGELAND, FOREST, WATER, BARREN = range(6)


#: Probability of each class as the theme (most likely dominant class) of a scene.
THEME_PRIOR = np.array([0.16, 0.34, 0.22, 0.16, 0.02, 0.10])
#: Probability of each class for the non-theme regions of a scene.
REGION_PRIOR = np.array([0.14, 0.30, 0.26, 0.16, 0.04, 0.10])


def _smooth_noise(rng: np.random.Generator, size: int, cell: float) -> np.ndarray:
    """Value noise in [-1, 1]: a random grid with spacing ``cell`` pixels, bicubic-upsampled."""
    grid = max(2, math.ceil(size / cell) + 2)
    coarse = rng.uniform(-1.0, 1.0, size=(grid, grid)).astype(np.float32)
    image = Image.fromarray(coarse, mode="F").resize((size, size), Image.Resampling.BICUBIC)
    return np.clip(np.asarray(image, dtype=np.float32), -1.5, 1.5)


def _rotated_coords(size: int, angle: float) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    cos, sin = math.cos(angle), math.sin(angle)
    return xs * cos + ys * sin, -xs * sin + ys * cos


# ---------------------------------------------------------------------------- layout
def _region_layout(
    rng: np.random.Generator, size: int, theme: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Warped Voronoi regions: returns (class map, region id map, number of regions)."""
    num_regions = int(rng.integers(4, 9))
    seeds = rng.uniform(0, size, size=(num_regions, 2)).astype(np.float32)
    region_classes = np.where(
        rng.uniform(size=num_regions) < 0.5,
        theme,
        rng.choice(6, size=num_regions, p=REGION_PRIOR),
    )
    region_classes[0] = theme
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    warp = size / 7.0
    wx = xs + warp * _smooth_noise(rng, size, size / 3)
    wy = ys + warp * _smooth_noise(rng, size, size / 3)
    dist = (wx[None] - seeds[:, 0, None, None]) ** 2 + (wy[None] - seeds[:, 1, None, None]) ** 2
    region = np.argmin(dist, axis=0).astype(np.int32)
    classes = region_classes[region].astype(np.uint8)
    # Occasional river: a sinuous water band across the scene.
    if rng.uniform() < 0.22:
        angle = rng.uniform(0, math.pi)
        u, v = _rotated_coords(size, angle)
        centre = rng.uniform(0.25, 0.75) * size * 1.2
        meander = (size / 8) * np.sin(u / size * rng.uniform(2, 5) + rng.uniform(0, 6.3))
        width = rng.uniform(size / 40, size / 18)
        river = np.abs(v - centre - meander + size * 0.1) < width
        classes[river] = WATER
        region[river] = num_regions
        num_regions += 1
    return classes, region, num_regions


# ---------------------------------------------------------------------------- textures
def _jitter(rng: np.random.Generator, base: Sequence[float], amount: float) -> np.ndarray:
    return np.asarray(base, dtype=np.float32) + rng.uniform(-amount, amount, size=3)


def _texture_agriculture(rng: np.random.Generator, size: int) -> np.ndarray:
    """Parcels of parallel field stripes, each parcel with its own orientation and crop colour."""
    out = np.zeros((size, size, 3), dtype=np.float32)
    parcels = int(rng.integers(3, 7))
    seeds = rng.uniform(0, size, size=(parcels, 2))
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    owner = np.argmin(
        (xs[None] - seeds[:, 0, None, None]) ** 2 + (ys[None] - seeds[:, 1, None, None]) ** 2,
        axis=0,
    )
    crops = [(95, 135, 60), (150, 150, 85), (125, 110, 75), (110, 145, 70), (170, 160, 105)]
    for parcel in range(parcels):
        angle = rng.choice([0.0, math.pi / 2]) + rng.normal(0, 0.25)
        u, _ = _rotated_coords(size, angle)
        period = rng.uniform(3.0, 7.0)
        stripes = 0.5 + 0.5 * np.sin(2 * math.pi * u / period)
        base = _jitter(rng, crops[int(rng.integers(len(crops)))], 12)
        dark = base * rng.uniform(0.62, 0.78)
        texture = dark[None, None] + (base - dark)[None, None] * stripes[..., None]
        sel = owner == parcel
        out[sel] = texture[sel]
    # parcel borders (tracks between fields)
    border = np.zeros((size, size), dtype=bool)
    border[:, 1:] |= owner[:, 1:] != owner[:, :-1]
    border[1:, :] |= owner[1:, :] != owner[:-1, :]
    out[border] = out[border] * 0.6 + np.array([150, 140, 110], dtype=np.float32) * 0.4
    return out


def _texture_rangeland(rng: np.random.Generator, size: int) -> np.ndarray:
    """Dry grass and shrubs: mid-frequency patchy noise over a green-brown base."""
    base = _jitter(rng, (140, 135, 92), 14)
    patches = _smooth_noise(rng, size, 9) * 0.6 + _smooth_noise(rng, size, 4) * 0.4
    shrubs = (_smooth_noise(rng, size, 2.5) > 0.7).astype(np.float32)
    value = base[None, None] * (1.0 + 0.16 * patches[..., None])
    value -= shrubs[..., None] * np.array([45, 35, 30], dtype=np.float32)
    return value


def _texture_forest(rng: np.random.Generator, size: int) -> np.ndarray:
    """Tree canopy: dense bumpy crowns with dark gaps."""
    base = _jitter(rng, (52, 82, 42), 10)
    crowns = _smooth_noise(rng, size, 3.0)
    crowns = np.maximum(crowns, _smooth_noise(rng, size, 5.0))
    shade = 0.55 + 0.55 * np.clip(crowns, -1, 1)
    texture: np.ndarray = base[None, None] * shade[..., None]
    texture += 10 * _smooth_noise(rng, size, 20)[..., None]
    return texture


def _texture_water(rng: np.random.Generator, size: int) -> np.ndarray:
    """Water: dark, smooth, with a gentle gradient and faint ripples."""
    base = _jitter(rng, (38, 62, 88), 10)
    gradient = _smooth_noise(rng, size, size / 2)
    ripples = _smooth_noise(rng, size, 6) * 0.03
    return base[None, None] * (1.0 + 0.12 * gradient[..., None] + ripples[..., None])


def _texture_barren(rng: np.random.Generator, size: int) -> np.ndarray:
    """Bare soil / sand: bright beige with dunes and fine grain."""
    base = _jitter(rng, (185, 165, 132), 15)
    dunes = _smooth_noise(rng, size, 14)
    grain = rng.normal(0, 1, size=(size, size)).astype(np.float32)
    return base[None, None] * (1.0 + 0.08 * dunes[..., None] + 0.05 * grain[..., None])


def _texture_urban(rng: np.random.Generator, size: int) -> np.ndarray:
    """Urban blocks: a road grid with buildings of various roof colours and cast shadows."""
    ground = _jitter(rng, (128, 126, 116), 10)
    out = np.broadcast_to(ground, (size, size, 3)).astype(np.float32).copy()
    out *= 1.0 + 0.06 * _smooth_noise(rng, size, 5)[..., None]
    block = int(rng.integers(14, 24))
    road = int(rng.integers(2, 4))
    angle = rng.normal(0, 0.15)
    u, v = _rotated_coords(size, angle)
    u += rng.uniform(0, block)
    v += rng.uniform(0, block)
    in_road = ((u % block) < road) | ((v % block) < road)
    roofs = [(175, 172, 168), (150, 82, 62), (205, 195, 178), (96, 98, 110), (160, 120, 95)]
    cell_u = np.floor(u / block).astype(np.int64)
    cell_v = np.floor(v / block).astype(np.int64)
    local_u = (u % block) - road
    local_v = (v % block) - road
    inner = block - road
    # up to two buildings per block; sizes and roof colours drawn per block
    cells = (cell_u * 7919 + cell_v * 104729) % 4096
    rng_table = rng.uniform(size=(4096, 6)).astype(np.float32)
    params = rng_table[cells]
    for half in range(2):
        start_u = 1 + params[..., 0 + half] * inner * 0.35 + half * inner * 0.5
        len_u = inner * (0.2 + 0.25 * params[..., 2])
        start_v = 1 + params[..., 3] * inner * 0.3
        len_v = inner * (0.35 + 0.4 * params[..., 4])
        building = (
            (local_u >= start_u)
            & (local_u < start_u + len_u)
            & (local_v >= start_v)
            & (local_v < start_v + len_v)
        )
        building &= params[..., 5] < (0.92 if half == 0 else 0.55)
        roof_index = ((params[..., 2] * 10).astype(np.int64) + half) % len(roofs)
        roof_colors = np.asarray(roofs, dtype=np.float32)[roof_index]
        shadow = (
            (local_u >= start_u + len_u)
            & (local_u < start_u + len_u + 1.6)
            & (local_v >= start_v)
            & (local_v < start_v + len_v + 1.6)
        ) & ~building
        out[shadow] *= 0.55
        out[building] = roof_colors[building]
    out[in_road] = _jitter(rng, (78, 78, 80), 6)
    return out


TEXTURES = {
    URBAN: _texture_urban,
    AGRICULTURE: _texture_agriculture,
    RANGELAND: _texture_rangeland,
    FOREST: _texture_forest,
    WATER: _texture_water,
    BARREN: _texture_barren,
}


def generate_scene(seed: int, index: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Generate scene ``index`` of the dataset with master ``seed``.

    Args:
        seed: Master seed.
        index: Scene number; each scene has its own random stream (seed, index).
        size: Side length in pixels.

    Returns:
        (H, W, 3) ``uint8`` image and (H, W) ``uint8`` class-index mask.
    """
    rng = np.random.default_rng([seed, index, size])
    theme = int(rng.choice(6, p=THEME_PRIOR))
    classes, region, num_regions = _region_layout(rng, size, theme)
    image = np.zeros((size, size, 3), dtype=np.float32)
    for region_id in range(num_regions):
        sel = region == region_id
        if not sel.any():
            continue
        cls = int(classes[sel][0])
        texture = TEXTURES[cls](rng, size)
        # per-region tint: the same class varies in colour between regions and scenes
        texture = texture * rng.uniform(0.88, 1.12, size=3).astype(np.float32)
        image[sel] = texture[sel]
    # soften region borders slightly (real boundaries are not pixel-sharp)
    blurred = np.asarray(
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
        .resize((size // 2, size // 2), Image.Resampling.BILINEAR)
        .resize((size, size), Image.Resampling.BILINEAR),
        dtype=np.float32,
    )
    edge = np.zeros((size, size), dtype=bool)
    edge[:, 1:] |= region[:, 1:] != region[:, :-1]
    edge[1:, :] |= region[1:, :] != region[:-1, :]
    image[edge] = 0.5 * image[edge] + 0.5 * blurred[edge]
    # scene-level illumination and sensor jitter (colour alone must not solve the task)
    gain = rng.uniform(0.78, 1.22) * rng.uniform(0.92, 1.08, size=3)
    offset = rng.uniform(-14, 14, size=3)
    haze = rng.uniform(0, 0.18)
    image = image * gain.astype(np.float32) + offset.astype(np.float32)
    image = image * (1 - haze) + 170 * haze
    image += rng.normal(0, 3.5, size=image.shape).astype(np.float32)
    return np.clip(image, 0, 255).round().astype(np.uint8), classes


__all__ = ["REGION_PRIOR", "TEXTURES", "THEME_PRIOR", "generate_scene"]
