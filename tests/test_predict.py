"""``als4gan predict``: the streaming tile engine, outputs for images and GeoTIFFs, and errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image

from als4gan.cli import main
from als4gan.inference import tent_profile
from als4gan.predict import ArraySource, MemorySink, TileGrid, predict_tiles
from tests.fake_runs import make_checkpoint

NUM_CLASSES = 4


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def tile_dependent_forward(weights: np.ndarray):  # type: ignore[no-untyped-def]
    """A fake network whose output depends on the position inside the tile.

    Like the padding effects of a CNN: blending of the overlaps matters and is checked exactly.
    """

    def forward(tiles: np.ndarray) -> np.ndarray:
        logits = np.einsum("kc,bchw->bkhw", weights, tiles)
        height, width = tiles.shape[-2:]
        ramp = (
            np.linspace(-1, 1, width)[None, None, None, :]
            * np.arange(NUM_CLASSES)[None, :, None, None]
        )
        ramp = ramp + np.linspace(1, -1, height)[None, None, :, None] * 0.5
        return _softmax(logits * 3 + ramp).astype(np.float32)

    return forward


def reference_blend(image: np.ndarray, forward, grid: TileGrid) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Naive in-memory blending over the same windows (the whole probability map at once)."""
    _, height, width = image.shape
    total = np.zeros((NUM_CLASSES, height, width))
    norm = np.zeros((height, width))
    weight = np.outer(tent_profile(grid.tile_height).numpy(), tent_profile(grid.tile_width).numpy())
    for top in grid.tops:
        for left in grid.lefts:
            tile = image[:, top : top + grid.tile_height, left : left + grid.tile_width]
            probs = forward(tile[None])[0]
            total[:, top : top + grid.tile_height, left : left + grid.tile_width] += probs * weight
            norm[top : top + grid.tile_height, left : left + grid.tile_width] += weight
    return total / norm


@pytest.mark.parametrize(
    ("height", "width", "window", "overlap"),
    [(150, 230, 64, 0.3), (97, 300, 40, 0.6), (30, 45, 64, 0.25), (64, 200, 64, 0.0)],
)
def test_streaming_equals_in_memory_blending(
    tmp_path: Path, height: int, width: int, window: int, overlap: float
) -> None:
    rng = np.random.default_rng(height)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "in.png")
    source = ArraySource(tmp_path / "in.png", 3, None)
    forward = tile_dependent_forward(rng.normal(size=(NUM_CLASSES, 3)))
    grid = TileGrid.build(height, width, window, overlap)
    sink = MemorySink(height, width)
    done: list[int] = []
    counts = predict_tiles(
        source, sink, forward, NUM_CLASSES, grid, batch_size=3, on_tiles=done.append
    )
    expected = reference_blend(pixels.transpose(2, 0, 1) / 255.0, forward, grid)
    assert sum(done) == grid.count
    assert np.array_equal(sink.classes, expected.argmax(0))
    assert np.allclose(sink.confidence, expected.max(0), atol=1e-5)
    assert counts.sum() == height * width
    assert counts.tolist() == np.bincount(sink.classes.ravel(), minlength=NUM_CLASSES).tolist()


@pytest.fixture(scope="module")
def checkpoint(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(
        tmp_path_factory.mktemp("ckpt") / "model.pt", synthetic_root, crop_size=48
    )


def write_geotiff(path: Path, pixels: np.ndarray, nodata: float | None = None) -> None:
    """(bands, H, W) array -> GeoTIFF in UTM 33N with 0.5 m pixels."""
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=pixels.shape[1],
        width=pixels.shape[2],
        count=pixels.shape[0],
        dtype=pixels.dtype,
        crs="EPSG:32633",
        transform=Affine(0.5, 0.0, 500_000.0, 0.0, -0.5, 4_600_000.0),
        nodata=nodata,
    ) as dst:
        dst.write(pixels)


def test_predict_png_files_and_folders(
    checkpoint: Path, synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "tiles"
    folder.mkdir()
    images = sorted((synthetic_root / "images").glob("*.png"))
    for image in images[:2]:
        shutil.copy(image, folder / image.name)
    single = images[5]
    out = tmp_path / "out"
    code = main(
        [
            *("predict", "--checkpoint", str(checkpoint), str(single), str(folder)),
            *("--out", str(out), "--overlay", "--confidence", "--window", "40"),
        ]
    )
    assert code == 0
    for image in [single, *images[:2]]:
        stem = image.stem
        classes = Image.open(out / f"{stem}_classes.png")
        assert classes.mode == "P" and classes.size == (64, 64)
        assert np.asarray(classes).max() < 6
        color = Image.open(out / f"{stem}_color.png")
        assert color.height >= 64 and color.width > 64  # the legend sits on the right
        assert Image.open(out / f"{stem}_confidence.png").size == (64, 64)
        Image.open(out / f"{stem}_overlay.png").verify()
        summary = json.loads((out / f"{stem}.json").read_text())
        assert summary["tiles"] == 4 and summary["crs"] is None
        assert sum(v for v in summary["class_shares"].values() if v) == pytest.approx(1.0)
    # a re-run skips finished inputs
    capsys.readouterr()
    assert main(["predict", "--checkpoint", str(checkpoint), str(folder), "--out", str(out)]) == 0
    assert "(2 skipped)" in capsys.readouterr().out


def test_predict_geotiff_keeps_georeference_and_matches_png_path(
    checkpoint: Path, tmp_path: Path
) -> None:
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (3, 150, 170), dtype=np.uint8)
    write_geotiff(tmp_path / "scene.tif", pixels)
    Image.fromarray(pixels.transpose(1, 2, 0)).save(tmp_path / "scene.png")
    out = tmp_path / "out"
    args = ["predict", "--checkpoint", str(checkpoint), "--window", "64", "--out", str(out)]
    assert main([*args, str(tmp_path / "scene.tif"), "--confidence", "--overlay"]) == 0
    assert main([*args, str(tmp_path / "scene.png")]) == 0
    # separate calls: the second input may not reuse the first one's output name
    with rasterio.open(out / "scene_classes.tif") as classes:
        assert classes.crs.to_epsg() == 32633
        assert classes.transform == Affine(0.5, 0.0, 500_000.0, 0.0, -0.5, 4_600_000.0)
        assert (classes.count, classes.dtypes[0], classes.nodata) == (1, "uint8", 255)
        assert classes.colormap(1)[4][:3] == (0, 0, 255)  # water, from the class table
        assert json.loads(classes.tags()["class_names"])[0] == "urban"
        streamed = classes.read(1)
    in_memory = np.asarray(Image.open(out / "scene_png_classes.png"))
    assert np.array_equal(streamed, in_memory)
    with rasterio.open(out / "scene_color.tif") as color:
        assert color.count == 3 and color.crs.to_epsg() == 32633
        palette = np.array(
            [[0, 255, 255], [255, 255, 0], [255, 0, 255], [0, 255, 0], [0, 0, 255], [255, 255, 255]]
        )
        assert np.array_equal(np.moveaxis(color.read(), 0, -1), palette[streamed])
    with rasterio.open(out / "scene_confidence.tif") as confidence:
        values = confidence.read(1)
        assert values.min() >= 255 // 6 and confidence.scales[0] == pytest.approx(1 / 255)
    summary = json.loads((out / "scene.json").read_text())
    assert summary["crs"] == "EPSG:32633"
    assert summary["tiles"] == TileGrid.build(150, 170, 64, 0.25).count == 12
    preview = np.asarray(Image.open(out / "scene_color.png").convert("RGB"))
    assert np.array_equal(preview[:150, :170], palette[streamed])  # full size, legend beside
    assert (preview[:, 170:] == 255).mean() > 0.5  # a white legend panel
    Image.open(out / "scene_overlay.png").verify()


def test_large_raster_preview_is_downsampled(checkpoint: Path, tmp_path: Path) -> None:
    pixels = np.random.default_rng(2).integers(0, 256, (3, 90, 260), dtype=np.uint8)
    write_geotiff(tmp_path / "wide.tif", pixels)
    out = tmp_path / "out"
    args = [
        "predict",
        "--checkpoint",
        str(checkpoint),
        str(tmp_path / "wide.tif"),
        "--out",
        str(out),
    ]
    assert main([*args, "--window", "48", "--preview-size", "130", "--overlay"]) == 0
    with rasterio.open(out / "wide_classes.tif") as classes:
        assert (classes.height, classes.width) == (90, 260)  # full size
    for name in ("wide_overlay.png", "wide_color.png"):
        preview = np.asarray(Image.open(out / name).convert("RGB"))
        # 130 x 45 preview (longest side 130), then the white legend panel
        assert (preview[45:, :130] == 255).all() and (preview[:45, :130] != 255).any()
        assert (preview[:45, 130:140] == 255).all()
    assert json.loads((out / "wide.json").read_text())["tiles"] > 6


def test_nodata_pixels_become_no_class(checkpoint: Path, tmp_path: Path) -> None:
    pixels = np.random.default_rng(3).integers(1, 256, (3, 80, 90), dtype=np.uint8)
    pixels[:, :20, :30] = 0
    write_geotiff(tmp_path / "holes.tif", pixels, nodata=0)
    out = tmp_path / "out"
    args = [
        "predict",
        "--checkpoint",
        str(checkpoint),
        str(tmp_path / "holes.tif"),
        "--out",
        str(out),
    ]
    assert main([*args, "--window", "48"]) == 0
    with rasterio.open(out / "holes_classes.tif") as classes:
        values = classes.read(1)
    assert (values[:20, :30] == 255).all()
    assert (values[20:] < 6).all()


def test_band_selection_and_mismatch(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(4)
    write_geotiff(tmp_path / "four.tif", rng.integers(0, 65535, (4, 50, 60), dtype=np.uint16))
    write_geotiff(tmp_path / "one.tif", rng.integers(0, 255, (1, 50, 60), dtype=np.uint8))
    Image.fromarray(rng.integers(0, 255, (50, 60), dtype=np.uint8)).save(tmp_path / "grey.png")
    base = ["predict", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "out")]
    four = [str(tmp_path / "four.tif"), "--bands", "4", "3", "2", "--overlay"]
    assert main([*base, *four, "--image-max", "65535"]) == 0
    assert (tmp_path / "out" / "four_classes.tif").is_file()
    capsys.readouterr()
    assert main([*base, str(tmp_path / "one.tif")]) == 2
    assert "1 band(s) but the model takes 3" in capsys.readouterr().err
    assert main([*base, str(tmp_path / "grey.png")]) == 2
    assert "band-count mismatch" in capsys.readouterr().err
    assert main([*base, str(tmp_path / "four.tif"), "--bands", "1", "2", "--force"]) == 2
    assert "give exactly 3" in capsys.readouterr().err
    assert main([*base, str(tmp_path / "four.tif"), "--bands", "1", "2", "9", "--force"]) == 2
    assert "do not exist" in capsys.readouterr().err


def test_unreadable_and_missing_inputs(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (tmp_path / "broken.tif").write_bytes(b"II*\x00garbage")
    (tmp_path / "empty").mkdir()
    base = ["predict", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "out")]
    for name in ("broken.png", "broken.tif"):
        assert main([*base, str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and name in err and "could not be read" in err
    assert main([*base, str(tmp_path / "absent.png")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main([*base, str(tmp_path / "empty")]) == 2
    assert "holds no images" in capsys.readouterr().err


def test_classes_file_must_match_the_checkpoint(
    checkpoint: Path, synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = sorted((synthetic_root / "images").glob("*.png"))[0]
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("names: [road, building, tree]\ncolors: [[1, 1, 1], [2, 2, 2], [3, 3, 3]]\n")
    base = ["predict", "--checkpoint", str(checkpoint), str(image), "--out", str(tmp_path / "out")]
    assert main([*base, "--classes-file", str(wrong)]) == 2
    err = capsys.readouterr().err
    assert "predicts 6 classes" in err and "road, building, tree" in err
    right = tmp_path / "right.json"
    names = ["urban", "agriculture", "rangeland", "forest", "water", "barren"]
    colors = [[10 * (i + 1), 0, 0] for i in range(6)]
    right.write_text(
        json.dumps(
            {"classes": [{"name": n, "color": c} for n, c in zip(names, colors, strict=True)]}
        )
    )
    assert main([*base, "--classes-file", str(right)]) == 0
    classes = np.asarray(Image.open(tmp_path / "out" / f"{image.stem}_classes.png"))
    color = np.asarray(Image.open(tmp_path / "out" / f"{image.stem}_color.png").convert("RGB"))
    assert np.array_equal(color[:64, :64], np.array(colors, dtype=np.uint8)[classes])


def test_interrupted_raster_leaves_no_partial_outputs(tmp_path: Path) -> None:
    from als4gan.data.synthetic import SYNTHETIC_CLASSES
    from als4gan.predict import PredictSettings, predict_file

    pixels = np.random.default_rng(5).integers(0, 256, (3, 120, 120), dtype=np.uint8)
    write_geotiff(tmp_path / "scene.tif", pixels)
    calls: list[int] = []

    def failing(tiles: np.ndarray) -> np.ndarray:
        calls.append(1)
        if len(calls) > 2:
            raise KeyboardInterrupt
        return np.full((tiles.shape[0], 6, *tiles.shape[2:]), 1 / 6, dtype=np.float32)

    out = tmp_path / "out"
    out.mkdir()
    settings = PredictSettings(window=32, batch_size=2, confidence=True)
    with pytest.raises(KeyboardInterrupt):
        predict_file(tmp_path / "scene.tif", "scene", out, failing, SYNTHETIC_CLASSES, 3, settings)
    assert sorted(p.name for p in out.iterdir()) == []
