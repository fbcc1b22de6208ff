from pathlib import Path

import numpy as np
import pytest

from als4gan.cli import main
from als4gan.data import build_dataset
from als4gan.data.folder import load_classes_file, parse_classes, prepare_folder
from als4gan.data.imageio import read_raster
from als4gan.errors import ConfigError, DataError, DatasetNotFoundError
from als4gan.io import read_json, read_yaml
from tests.data.folder.data import CLASSES, write_classes, write_folder, write_geotiff


@pytest.mark.parametrize("mask_format", ["index", "color", "tiff"])
def test_mask_formats_decode_to_the_same_classes(tmp_path: Path, mask_format: str) -> None:
    expected = write_folder(tmp_path, image_format="png", mask_format=mask_format)
    dataset = build_dataset("folder", tmp_path, "all")
    assert dataset.classes.names == ("background", "building", "road")
    for index, sample_id in enumerate(dataset.ids):
        assert np.array_equal(dataset[index]["mask"].numpy(), expected[sample_id])


def test_geotiff_band_selection(tmp_path: Path) -> None:
    write_folder(tmp_path, image_format="geotiff", bands=5)
    default = build_dataset("folder", tmp_path, "all", image_max=10000)
    assert default.in_channels == 3 and default[0]["image"].shape == (3, 10, 10)
    chosen = build_dataset("folder", tmp_path, "all", bands=[5, 1], image_max=10000)
    assert chosen.in_channels == 2
    image = chosen[0]["image"]
    assert image.shape == (2, 10, 10)
    raw = read_raster(default.image_path(default.ids[0]))  # uint16 as stored, bands 1..3
    assert raw.dtype == np.uint16
    assert np.allclose(image[1].numpy(), raw[:, :, 0] / 10000.0)
    with pytest.raises(DataError, match=r"band\(s\) \[7\] do not exist"):
        build_dataset("folder", tmp_path, "all", bands=[7])


def test_classes_file_forms(tmp_path: Path) -> None:
    short = parse_classes({"names": ["a", "b"], "values": [1, 2]}, "x.yaml")
    assert short.values == (1, 2) and not short.has_colors and len(short.table.colors) == 2
    plain = parse_classes({"classes": ["a", "b", "c"]}, "x.yaml")
    assert plain.values == (0, 1, 2) and plain.ignore_values == (255,)
    json_file = write_classes(tmp_path / "c.json")
    assert load_classes_file(json_file).table.colors[1] == (255, 0, 0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"classes": []}, "non-empty list"),
        ({"names": ["a", "a"]}, "duplicate class name"),
        ({"classes": [{"name": "a", "value": 255}]}, "both a class and an ignore value"),
        ({"classes": [{"name": "a", "color": [1, 2]}]}, "three integers"),
        ({"classes": [{"name": "a", "color": [1, 2, 3]}, "b"]}, "every class or for none"),
        ({"classes": ["a"], "unknown": "maybe"}, "'unknown' must be one of"),
        ({"classes": ["a"], "colours": []}, "unknown key"),
        ({"labels": ["a"]}, "no 'classes' list"),
    ],
)
def test_bad_classes_files_name_the_file(tmp_path: Path, content: dict, message: str) -> None:
    path = write_classes(tmp_path / "classes.yaml", content)
    with pytest.raises(ConfigError, match=message) as info:
        load_classes_file(path)
    assert str(path) in str(info.value)


def test_missing_classes_file_explains_the_format(tmp_path: Path) -> None:
    write_folder(tmp_path, image_format="png", with_classes=False)
    with pytest.raises(DatasetNotFoundError, match="--classes-file"):
        build_dataset("folder", tmp_path, "all")


def test_value_outside_the_table_and_wrong_class_count(tmp_path: Path) -> None:
    write_folder(tmp_path, image_format="png")
    two_classes = {"classes": CLASSES["classes"][:2], "ignore_values": [255]}
    small = write_classes(tmp_path / "two.yaml", two_classes)
    dataset = build_dataset("folder", tmp_path, "all", classes_file=str(small))
    road_tile = "tile_002"  # its top half is class 2 (value 20), unknown to the 2-class table
    with pytest.raises(DataError, match=r"value\(s\) \[20\].*wrong class count"):
        dataset.load_mask(road_tile)
    lenient = write_classes(tmp_path / "lenient.yaml", {**two_classes, "unknown": "ignore"})
    dataset = build_dataset("folder", tmp_path, "all", classes_file=str(lenient))
    mask = dataset[0]["mask"].numpy()
    assert set(np.unique(mask).tolist()) <= {0, 1, 255} and dataset.unmatched_pixels > 0


def test_unknown_colour_is_an_error_listing_it(tmp_path: Path) -> None:
    write_folder(tmp_path, image_format="png", mask_format="color")
    from PIL import Image

    path = tmp_path / "masks" / "tile_001.png"
    rgb = np.asarray(Image.open(path)).copy()
    rgb[2, 3] = (1, 2, 3)
    Image.fromarray(rgb).save(path)
    dataset = build_dataset("folder", tmp_path, "all")
    with pytest.raises(DataError, match=r"tile_001\.png holds colour\(s\) \[\(1, 2, 3\)\]"):
        dataset.load_mask("tile_001")


def test_colour_mask_without_colours_in_the_table(tmp_path: Path) -> None:
    write_folder(tmp_path, image_format="png", mask_format="color")
    names_only = write_classes(tmp_path / "n.yaml", {"names": ["a", "b", "c"]})
    dataset = build_dataset("folder", tmp_path, "all", classes_file=str(names_only))
    with pytest.raises(DataError, match="gives no colours"):
        dataset.load_mask(dataset.ids[0])


def test_inconsistent_band_count_is_an_error(tmp_path: Path) -> None:
    write_folder(tmp_path, image_format="geotiff", bands=5)
    write_geotiff(tmp_path / "images" / "tile_003.tif", np.zeros((10, 10, 2), np.uint16))
    dataset = build_dataset("folder", tmp_path, "all")
    with pytest.raises(DataError, match=r"tile_003\.tif has 2 band\(s\) but the dataset reads 3"):
        dataset.load_image("tile_003")


def test_other_datasets_reject_folder_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="applies to --dataset folder"):
        build_dataset("synthetic", tmp_path, "all", classes_file="x.yaml")


def test_prepare_folder_records_options_and_does_not_copy(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_folder(src, image_format="geotiff", bands=5, num_images=10, with_classes=False)
    classes = write_classes(tmp_path / "my_classes.json")
    out = tmp_path / "out"
    code = main(
        [
            "prepare",
            "folder",
            "--src",
            str(src),
            "--out",
            str(out),
            "--classes-file",
            str(classes),
            "--bands",
            "4",
            "3",
            "2",
            "1",
            "--image-max",
            "10000",
            "--stratify",
        ]
    )
    assert code == 0
    listed = sorted(p.name for p in out.iterdir() if p.name != ".lock")  # .lock: see guarantees
    assert listed == ["classes.yaml", "dataset.json", "splits"]
    meta = read_json(out / "dataset.json")
    assert meta["bands"] == [4, 3, 2, 1] and meta["image_max"] == 10000
    assert meta["in_channels"] == 4 and meta["source"] == str(src.resolve())
    assert read_yaml(out / "classes.yaml")["classes"][2]["name"] == "road"
    # later stages need only --dataset folder --root OUT
    train = build_dataset("folder", out, "train")
    assert train.in_channels == 4
    image = train[0]["image"]
    assert image.shape == (4, 10, 10) and float(image.max()) <= 1.0
    assert float(image.max()) > 0.5  # scaled by 10000, not by 65535
    sizes = meta["split_sizes"]
    assert sum(sizes.values()) == 10 and min(sizes.values()) >= 1


def test_prepare_folder_in_place_keeps_the_users_classes_file(tmp_path: Path) -> None:
    write_folder(tmp_path, image_format="png")
    original = (tmp_path / "classes.yaml").read_text()
    meta = prepare_folder(tmp_path, tmp_path, seed=2)
    assert meta["source"] == "."
    assert (tmp_path / "classes.yaml").read_text() == original
    assert len(build_dataset("folder", tmp_path, "val")) == meta["split_sizes"]["val"]
