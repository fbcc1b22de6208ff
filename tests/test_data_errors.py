"""Every kind of bad input gets a clear error naming the file and the fix."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from als4gan.cli import main
from als4gan.data import DATASETS, build_dataset
from als4gan.errors import DataError, DatasetNotFoundError
from tests.data.deepglobe.data import write_deepglobe
from tests.data.folder.data import write_folder
from tests.data.ucm.data import write_ucm


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_missing_root(tmp_path: Path, name: str) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetNotFoundError, match=f"{missing} does not exist"):
        build_dataset(name, missing, "train")


def test_missing_root_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["data", "stats", "--dataset", "deepglobe", "--root", str(tmp_path / "x")])
    assert code == 2
    assert "error: deepglobe dataset root" in capsys.readouterr().err


def test_empty_and_missing_split(tmp_path: Path) -> None:
    write_deepglobe(tmp_path, num_images=2)
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "train.txt").write_text("\n")
    with pytest.raises(DataError, match=r"splits/train\.txt is empty"):
        build_dataset("deepglobe", tmp_path, "train")
    with pytest.raises(DatasetNotFoundError, match="Available splits: train"):
        build_dataset("deepglobe", tmp_path, "val")


def test_split_listing_unknown_ids(tmp_path: Path) -> None:
    write_deepglobe(tmp_path, num_images=2)
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "train.txt").write_text("100\n999\n")
    with pytest.raises(DatasetNotFoundError, match="'999'"):
        build_dataset("deepglobe", tmp_path, "train")


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_or_truncated_deepglobe_image(tmp_path: Path, damage: str) -> None:
    write_deepglobe(tmp_path, num_images=2, size=(64, 64))
    path = tmp_path / "images" / "101_sat.jpg"
    if damage == "garbage":
        path.write_bytes(b"this is not a jpeg")
    else:
        _truncate(path)
    dataset = build_dataset("deepglobe", tmp_path, "all")
    with pytest.raises(DataError, match=r"101_sat\.jpg could not be read .* corrupt or truncated"):
        dataset[1]


def test_truncated_mask_png(tmp_path: Path) -> None:
    write_deepglobe(tmp_path, num_images=2, size=(64, 64))
    _truncate(tmp_path / "masks" / "100_mask.png")
    dataset = build_dataset("deepglobe", tmp_path, "all")
    with pytest.raises(DataError, match=r"100_mask\.png could not be read"):
        dataset[0]


def test_truncated_ucm_tiff(tmp_path: Path) -> None:
    write_ucm(tmp_path, per_scene=1, size=64)
    _truncate(tmp_path / "Images" / "beach" / "beach00.tif")
    dataset = build_dataset("ucm", tmp_path, "all")
    with pytest.raises(DataError, match=r"beach00\.tif could not be read"):
        dataset.load_image("beach00")


def test_corrupt_geotiff(tmp_path: Path) -> None:
    write_folder(tmp_path, image_format="geotiff", size=32)
    (tmp_path / "images" / "tile_002.tif").write_bytes(b"II*\x00garbage")
    dataset = build_dataset("folder", tmp_path, "all")
    with pytest.raises(DataError, match=r"tile_002\.tif could not be read as a raster"):
        dataset.load_image("tile_002")


def test_image_mask_size_mismatch(tmp_path: Path) -> None:
    write_deepglobe(tmp_path, num_images=2, size=(16, 16))
    Image.new("RGB", (16, 12), (255, 255, 0)).save(tmp_path / "masks" / "101_mask.png")
    dataset = build_dataset("deepglobe", tmp_path, "all")
    with pytest.raises(DataError, match=r"101_sat\.jpg is 16x16 but mask .*101_mask\.png is 16x12"):
        dataset[1]


def test_single_channel_deepglobe_mask_outside_the_classes(tmp_path: Path) -> None:
    write_deepglobe(tmp_path, num_images=1)
    Image.fromarray(np.full((16, 16), 9, np.uint8)).save(tmp_path / "masks" / "100_mask.png")
    dataset = build_dataset("deepglobe", tmp_path, "all")
    with pytest.raises(DataError, match=r"value\(s\) \[9\] outside the DeepGlobe classes"):
        dataset.load_mask("100")


def test_missing_mask_of_a_listed_id(tmp_path: Path) -> None:
    write_folder(tmp_path, image_format="png")
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "train.txt").write_text("tile_000\ntile_001\n")
    (tmp_path / "masks" / "tile_001.png").unlink()
    dataset = build_dataset("folder", tmp_path, "train")
    with pytest.raises(DatasetNotFoundError, match=r"no mask for image .*tile_001\.png"):
        dataset[1]


def test_empty_pool(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code = main(["prepare", "deepglobe", "--src", str(empty), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "no DeepGlobe images (<id>_sat.jpg) found" in capsys.readouterr().err
    write_folder(tmp_path / "f", image_format="png", num_images=2)
    for path in (tmp_path / "f" / "masks").iterdir():
        path.unlink()
    # Images without masks are an unlabelled pool, not an error; no image at all is one.
    unlabelled = build_dataset("folder", tmp_path / "f", "all")
    assert len(unlabelled) == 2 and not unlabelled.has_mask(unlabelled.ids[0])
    for path in (tmp_path / "f" / "images").iterdir():
        path.unlink()
    with pytest.raises(DataError, match="no folder image/mask pairs found"):
        build_dataset("folder", tmp_path / "f", "all")
