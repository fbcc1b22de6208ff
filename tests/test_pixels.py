"""Pixels are read one way everywhere: scaling, preprocessing, no-data, palettes, safe ids.

Covers the datasets, ``data stats``, ``train``, ``evaluate`` and ``predict``.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from PIL import Image

from als4gan.checkpoint import (
    load_checkpoint,
    preprocessing_record,
    resolve_preprocessing,
    save_checkpoint,
)
from als4gan.cli import main
from als4gan.data import build_dataset
from als4gan.data.base import check_sample_id
from als4gan.data.imageio import check_image_max, scale_to_unit
from als4gan.data.transforms import TrainAugment
from als4gan.errors import ConfigError, DataError
from tests.data.deepglobe.data import write_deepglobe
from tests.data.folder.data import COLORS, write_classes, write_geotiff
from tests.data.ucm.data import write_ucm

COLOR_CLASSES = {
    "classes": [
        {"name": "background", "color": [0, 0, 0]},
        {"name": "building", "color": [255, 0, 0]},
        {"name": "road", "color": [128, 128, 128]},
    ],
}


def write_tif(path: Path, array: np.ndarray, nodata: float | None = None) -> None:
    """(H, W, C) array -> GeoTIFF, with an optional no-data value."""
    height, width, count = array.shape
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=height,
        width=width,
        count=count,
        dtype=array.dtype,
        crs="EPSG:32633",
        transform=rasterio.transform.Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0),
        nodata=nodata,
    ) as dst:
        dst.write(np.moveaxis(array, -1, 0))


def raster_folder(
    root: Path, images: list[np.ndarray], nodata: float | None = None, size: int = 16
) -> list[np.ndarray]:
    """A folder dataset of GeoTIFF ``images`` with random index masks (values 0-2)."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    masks = []
    for index, image in enumerate(images):
        write_tif(root / "images" / f"t{index}.tif", image, nodata)
        mask = rng.integers(0, 3, image.shape[:2]).astype(np.uint8)
        Image.fromarray(mask).save(root / "masks" / f"t{index}.png")
        masks.append(mask)
    write_classes(root / "classes.yaml", {"names": ["a", "b", "c"]})
    return masks


# --------------------------------------------------------------------------- scaling rule
def test_scaling_rule_needs_an_explicit_scale_beyond_8_bits() -> None:
    assert np.allclose(scale_to_unit(np.array([[0, 255]], np.uint8)), [[0.0, 1.0]])
    assert np.allclose(scale_to_unit(np.array([[0.0, 0.5]], np.float32)), [[0.0, 0.5]])
    assert np.allclose(scale_to_unit(np.array([[500, 20000]], np.uint16), 10000), [[0.05, 1.0]])
    sentinel = np.array([[120, 1400, 3712]], np.uint16)  # reflectance x 10000: 0-0.37
    with pytest.raises(DataError) as err:
        scale_to_unit(sentinel, source="s2.tif")
    message = str(err.value)
    assert "s2.tif" in message and "uint16" in message
    assert "observed range 120 to 3712" in message and "--image-max 5000" in message
    with pytest.raises(
        DataError, match=r"float32 pixels outside \[0, 1\], observed range 0 to 5000"
    ):
        scale_to_unit(np.array([[0.0, 5000.0]], np.float32))
    with pytest.raises(DataError, match="int16 pixels"):
        scale_to_unit(np.array([[-3, 900]], np.int16))
    assert np.array_equal(scale_to_unit(np.array([[True, False]])), [[1.0, 0.0]])
    with pytest.raises(DataError, match="--image-max 65535"):  # capped at the dtype's maximum
        scale_to_unit(np.array([[0, 65000]], np.uint16))


@pytest.mark.parametrize("value", [0, -1, "nan", "inf", float("nan"), "ten"])
def test_image_max_must_be_finite_and_positive(value: object) -> None:
    with pytest.raises(ConfigError, match="finite positive number"):
        check_image_max(value)


@pytest.mark.parametrize("value", ["0", "nan"])
def test_prepare_refuses_a_useless_image_max(
    tmp_path: Path, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    raster_folder(tmp_path / "src", [np.full((16, 16, 3), 700, np.uint16)] * 3)
    args = ["prepare", "folder", "--src", str(tmp_path / "src"), "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--image-max", value])
    assert exit_info.value.code == 2
    assert "finite positive number" in capsys.readouterr().err
    assert not (tmp_path / "out" / "dataset.json").exists()


def test_prepare_refuses_16_bit_images_without_a_scale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sentinel_folder(tmp_path / "src", count=3, size=16)
    args = ["prepare", "folder", "--src", str(tmp_path / "src"), "--out", str(tmp_path / "out")]
    assert main([*args, "--bands", "4", "3", "2"]) == 2
    err = capsys.readouterr().err
    assert "t0.tif holds uint16 pixels" in err and "--image-max 5000" in err
    assert main([*args, "--bands", "4", "3", "2", "--image-max", "10000"]) == 0


def test_datasets_refuse_unscaled_wide_pixels(tmp_path: Path) -> None:
    for name, image in (
        ("u16", np.full((16, 16, 3), 1200, np.uint16)),
        ("f32", np.full((16, 16, 3), 2500.0, np.float32)),
        ("i16", np.full((16, 16, 3), 300, np.int16)),
    ):
        raster_folder(tmp_path / name, [image])
        dataset = build_dataset("folder", tmp_path / name, "all")
        with pytest.raises(DataError, match="--image-max"):
            dataset[0]
        scaled = build_dataset("folder", tmp_path / name, "all", image_max=10000)
        assert torch.allclose(scaled[0]["image"], torch.full((3, 16, 16), image.flat[0] / 1e4))


# --------------------------------------------------------------------------- no-data
def test_nan_and_nodata_pixels_are_ignored_in_samples_and_stats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = np.full((16, 16, 3), 0.25, np.float32)
    image[:4] = np.nan  # 64 NaN pixels
    image[4:6, :, 1] = -9999.0  # 32 pixels with the raster's no-data value in one band
    masks = raster_folder(tmp_path, [image], nodata=-9999.0)
    dataset = build_dataset("folder", tmp_path, "all")
    sample = dataset[0]
    assert not torch.isnan(sample["image"]).any()
    assert (sample["image"][:, :6] == 0).all()  # fed as 0
    assert (sample["mask"][:6] == 255).all()  # ignored by losses and metrics
    assert torch.equal(sample["mask"][6:], torch.from_numpy(masks[0][6:].astype(np.int64)))
    from als4gan.train.data import UnlabelledImages

    unlabelled = UnlabelledImages(dataset)[0]  # validity map of the self-training loss
    assert (unlabelled["mask"][:6] == 255).all() and (unlabelled["mask"][6:] == 0).all()
    assert (unlabelled["image"][:, :6] == 0).all()
    out = tmp_path / "stats.json"
    assert (
        main(
            [
                *("data", "stats", "--dataset", "folder", "--root", str(tmp_path)),
                *("--split", "all", "--workers", "0", "--json", str(out)),
            ]
        )
        == 0
    )
    stats = json.loads(out.read_text())
    assert stats["channel_mean"] == [0.25, 0.25, 0.25]
    assert "channel mean 0.2500 0.2500 0.2500" in capsys.readouterr().out


# --------------------------------------------------------------------------- palette masks
def test_palette_and_rgb_masks_decode_to_the_same_classes(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    classes = np.zeros((8, 8), np.uint8)
    classes[2:5] = 1
    classes[6:] = 2
    for sample_id in ("rgb", "pal"):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(
            tmp_path / "images" / f"{sample_id}.png"
        )
    Image.fromarray(COLORS[classes]).save(tmp_path / "masks" / "rgb.png")
    # a palette whose index order differs from the class order: index 0 = grey, 1 = black...
    palette_order = [2, 0, 1]
    indices = np.argsort(palette_order)[classes].astype(np.uint8)
    palette_image = Image.fromarray(indices, mode="P")
    palette_image.putpalette(COLORS[palette_order].reshape(-1).tolist())
    palette_image.save(tmp_path / "masks" / "pal.png")
    assert Image.open(tmp_path / "masks" / "pal.png").mode == "P"
    write_classes(tmp_path / "classes.yaml", COLOR_CLASSES)
    dataset = build_dataset("folder", tmp_path, "all")
    assert dataset.ids == ["pal", "rgb"]
    assert np.array_equal(dataset.load_mask("rgb"), classes)
    assert np.array_equal(dataset.load_mask("pal"), classes)


def test_palette_masks_keep_their_indices_when_classes_are_values(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "images" / "a.png")
    indices = np.array([[0, 1], [2, 255]], np.uint8).repeat(2, 0).repeat(2, 1)
    palette_image = Image.fromarray(indices, mode="P")
    palette_image.putpalette([9, 9, 9] * 256)
    palette_image.save(tmp_path / "masks" / "a.png")
    write_classes(tmp_path / "classes.yaml", {"names": ["a", "b", "c"]})
    dataset = build_dataset("folder", tmp_path, "all")
    assert np.array_equal(dataset.load_mask("a"), indices)


# --------------------------------------------------------------------------- ids and sizes
@pytest.mark.parametrize(
    "bad", ["../outside", "a/../../b", "/etc/passwd", "..\\x", "C:/x", "", "a\x00b"]
)
def test_ids_leaving_the_root_are_refused(bad: str) -> None:
    with pytest.raises(DataError, match="sample id"):
        check_sample_id(bad, "train.txt")


def test_every_dataset_refuses_ids_outside_its_root(synthetic_root: Path, tmp_path: Path) -> None:
    stolen = tmp_path / "secret"
    (stolen / "images").mkdir(parents=True)
    (stolen / "masks").mkdir()
    bad_split = tmp_path / "bad.txt"
    relative = Path("..") / ".." / stolen.relative_to(tmp_path.parent) / "x"
    bad_split.write_text(f"{relative}\n")
    with pytest.raises(DataError, match=r"'\.\.' component"):
        build_dataset("synthetic", synthetic_root, str(bad_split))
    with pytest.raises(DataError, match=r"'\.\.' component"):
        build_dataset("synthetic", synthetic_root, ids=["../x"])
    dataset = build_dataset("synthetic", synthetic_root, "train")
    with pytest.raises(DataError, match="absolute path"):
        dataset.subset(["/tmp/x"])
    raster_folder(tmp_path / "folder", [np.zeros((16, 16, 3), np.uint8)])
    write_ucm(tmp_path / "ucm", per_scene=1)
    write_deepglobe(tmp_path / "deepglobe", num_images=2)
    for name in ("folder", "ucm", "deepglobe"):
        with pytest.raises(DataError, match=r"'\.\.' component"):
            build_dataset(name, tmp_path / name, str(bad_split))


def test_images_smaller_than_the_crop_are_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    augment = TrainAugment(8, scale_range=None, mirror=False)
    sample = {"image": torch.ones(3, 1, 1), "mask": torch.zeros(1, 1, dtype=torch.long), "id": "t"}
    with caplog.at_level(logging.WARNING, logger="als4gan.data.transforms"):
        for _ in range(3):
            out = augment(dict(sample), torch.Generator().manual_seed(0))
    assert out["image"].shape == (3, 8, 8) and int((out["mask"] == 255).sum()) == 63
    warnings = [r for r in caplog.records if "smaller than the 8 px training crop" in r.message]
    assert len(warnings) == 1 and "'t' is 1x1 px" in warnings[0].message


# --------------------------------------------------------------------------- recorded preprocessing
def sentinel_folder(root: Path, count: int = 6, size: int = 32) -> None:
    """Five-band uint16 reflectance x 10000 (0-4000), index masks."""
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 4000, (size, size, 5)).astype(np.uint16) for _ in range(count)]
    raster_folder(root, images)


def test_training_records_preprocessing_and_predict_uses_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sentinel_folder(tmp_path / "src")
    prepared = tmp_path / "prepared"
    assert (
        main(
            [
                *("prepare", "folder", "--src", str(tmp_path / "src"), "--out", str(prepared)),
                *("--bands", "4", "3", "2", "--image-max", "10000"),
            ]
        )
        == 0
    )
    run = tmp_path / "run"
    assert (
        main(
            [
                *("train", "--dataset", "folder", "--root", str(prepared), "--out", str(run)),
                *("--backbone", "resnet18", "--crop-size", "32", "--batch-size", "2"),
                *("--num-workers", "0", "--iterations", "1", "--val-every", "0"),
                *("--method", "supervised", "--labeled-ratio", "0.5"),
            ]
        )
        == 0
    )
    record = load_checkpoint(run)["preprocessing"]
    assert record["bands"] == [4, 3, 2] and record["image_max"] == 10000.0
    assert record["normalization"]["mean"] == pytest.approx([0.485, 0.456, 0.406])
    scene = tmp_path / "scene.tif"
    write_geotiff(scene, np.random.default_rng(2).integers(0, 4000, (40, 40, 5)).astype(np.uint16))
    base = ["predict", "--checkpoint", str(run), scene.as_posix()]
    assert main([*base, "--out", str(tmp_path / "a")]) == 0
    explicit = ["--bands", "4", "3", "2", "--image-max", "10000"]
    assert main([*base, "--out", str(tmp_path / "b"), *explicit]) == 0
    with (
        rasterio.open(tmp_path / "a" / "scene_classes.tif") as a,
        rasterio.open(tmp_path / "b" / "scene_classes.tif") as b,
    ):
        assert np.array_equal(a.read(), b.read())
    capsys.readouterr()
    assert main([*base, "--out", str(tmp_path / "c"), "--bands", "1", "2", "3"]) == 2
    assert "trained on bands 4 3 2" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "c"), "--image-max", "65535"]) == 2
    assert "trained with --image-max 10000" in capsys.readouterr().err
    # evaluate reads the recorded scale; a folder prepared with another one is refused
    assert (
        main(
            ["evaluate", "--checkpoint", str(run), "--split", "val", "--out", str(tmp_path / "e1")]
        )
        == 0
    )
    capsys.readouterr()
    evaluate = ["evaluate", "--checkpoint", str(run), "--split", "val"]
    assert main([*evaluate, "--bands", "1", "2", "3", "--out", str(tmp_path / "e3")]) == 2
    assert "trained on bands 4 3 2" in capsys.readouterr().err
    other = tmp_path / "other"
    assert (
        main(
            [
                *("prepare", "folder", "--src", str(tmp_path / "src"), "--out", str(other)),
                *("--bands", "4", "3", "2", "--image-max", "5000"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(run),
                "--root",
                str(other),
                "--split",
                "val",
                "--out",
                str(tmp_path / "e2"),
            ]
        )
        == 2
    )
    assert "prepared with --image-max 5000" in capsys.readouterr().err


def test_resolve_preprocessing_for_old_and_new_checkpoints(
    caplog: pytest.LogCaptureFixture,
) -> None:
    new = {"preprocessing": preprocessing_record({"bands": [4, 3, 2], "image_max": 10000}, 3)}
    assert resolve_preprocessing(new, None, None, 3) == ([4, 3, 2], 10000.0)
    assert resolve_preprocessing(new, [4, 3, 2], 10000.0, 3) == ([4, 3, 2], 10000.0)
    with pytest.raises(ConfigError, match="Omit --bands"):
        resolve_preprocessing(new, [1, 2, 3], None, 3)
    with pytest.raises(ConfigError, match="trained with --image-max 10000"):
        resolve_preprocessing(new, None, 65535.0, 3)
    # trained on 8-bit images, first bands: explicit values for other inputs, with a warning
    plain = {"preprocessing": preprocessing_record({"bands": None, "image_max": None}, 3)}
    assert resolve_preprocessing(plain, None, None, 3) == (None, None)
    with caplog.at_level(logging.WARNING, logger="als4gan.checkpoint"):
        assert resolve_preprocessing(plain, [3, 2, 1], 65535.0, 3) == ([3, 2, 1], 65535.0)
    assert "trained on 8-bit" in caplog.text and "first 3 band(s)" in caplog.text
    old: dict[str, object] = {"config": {"bands": [2, 3, 4]}}  # written before the record
    assert resolve_preprocessing(old, None, 65535.0, 3) == ([2, 3, 4], 65535.0)
    with pytest.raises(ConfigError, match="trained on bands 2 3 4"):
        resolve_preprocessing(old, [1, 2, 3], None, 3)


# --------------------------------------------------------------------------- predict no-data
def test_predict_writes_nodata_over_nan_pixels(synthetic_root: Path, tmp_path: Path) -> None:
    from tests.fake_runs import make_checkpoint

    checkpoint = make_checkpoint(tmp_path / "model.pt", synthetic_root, crop_size=32)
    pixels = np.random.default_rng(5).uniform(0, 1, (48, 40, 3)).astype(np.float32)
    pixels[:10, :12] = np.nan
    write_tif(tmp_path / "scene.tif", pixels)
    out = tmp_path / "out"
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(checkpoint),
                str(tmp_path / "scene.tif"),
                "--out",
                str(out),
                "--confidence",
            ]
        )
        == 0
    )
    with rasterio.open(out / "scene_classes.tif") as classes:
        assert classes.nodata == 255
        values = classes.read(1)
    with rasterio.open(out / "scene_confidence.tif") as confidence:
        conf = confidence.read(1)
    assert (values[:10, :12] == 255).all()
    valid = np.ones_like(values, dtype=bool)
    valid[:10, :12] = False
    assert (values[valid] < 6).all()
    assert (conf[valid] > 0).all()  # NaN did not poison the tiles around it
    summary = json.loads((out / "scene.json").read_text())
    assert math.isclose(sum(v for v in summary["class_shares"].values() if v), 1.0)


def test_checkpoint_preprocessing_survives_a_save_and_load(tmp_path: Path) -> None:
    record = preprocessing_record({"bands": [2], "image_max": 255.0}, 1)
    save_checkpoint(tmp_path / "c.pt", {"preprocessing": record})
    assert load_checkpoint(tmp_path / "c.pt")["preprocessing"] == record
