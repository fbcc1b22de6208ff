from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from als4gan.cli import main
from als4gan.data import build_dataset
from als4gan.data.ucm import DLRSD_CLASSES, UCM_SCENES, prepare_ucm, scene_of
from als4gan.errors import DataError, DatasetNotFoundError
from als4gan.io import read_ids, read_json
from tests.data.ucm.data import LAYOUTS, write_label, write_ucm


def test_class_tables_follow_spec() -> None:
    assert len(UCM_SCENES) == 21 and list(UCM_SCENES) == sorted(UCM_SCENES)
    assert DLRSD_CLASSES.num_classes == 17
    assert DLRSD_CLASSES.names[0] == "airplane" and DLRSD_CLASSES.names[-1] == "water"
    assert len(set(DLRSD_CLASSES.colors)) == 17
    assert scene_of("tenniscourt07") == "tenniscourt"
    assert scene_of("notascene01") is None and scene_of("forest") is None


@pytest.mark.parametrize("layout", LAYOUTS)
def test_layouts_map_values_and_scene_labels(tmp_path: Path, layout: str) -> None:
    expected = write_ucm(tmp_path, layout=layout, per_scene=2)
    dataset = build_dataset("ucm", tmp_path, "all")
    assert dataset.ids == sorted(expected)
    assert dataset.label_names == UCM_SCENES and dataset.num_classes == 17
    sample = dataset[dataset.ids.index("harbor01")]
    assert np.array_equal(sample["mask"].numpy(), expected["harbor01"])  # 1..17 -> 0..16
    assert sample["label"] == UCM_SCENES.index("harbor")
    assert dataset.image_label("forest00") == UCM_SCENES.index("forest")
    described = dataset.describe()
    assert described["label_names"] == list(UCM_SCENES)
    assert len(described["classes"]["names"]) == 17


def test_smaller_image_is_resized_to_its_label(tmp_path: Path) -> None:
    expected = write_ucm(tmp_path, per_scene=2, smaller="beach01")
    dataset = build_dataset("ucm", tmp_path, "all")
    assert dataset.load_image("beach01").shape == (11, 12, 3)  # as stored
    image, mask = dataset.load_pair("beach01")
    assert image.shape == (12, 12, 3)  # resized to the label; the label is untouched
    assert np.array_equal(mask, expected["beach01"])


def test_far_off_label_size_is_an_error(tmp_path: Path) -> None:
    write_ucm(tmp_path, per_scene=1)
    write_label(tmp_path / "Labels" / "forest" / "forest00.png", np.ones((6, 12), np.uint8))
    dataset = build_dataset("ucm", tmp_path, "all")
    with pytest.raises(
        DataError, match=r"forest00\.tif is 12x12 but label .*forest00\.png is 12x6"
    ):
        dataset.load_pair("forest00")


@pytest.mark.parametrize("value", [0, 18, 200])
def test_values_outside_dlrsd_are_errors(tmp_path: Path, value: int) -> None:
    write_ucm(tmp_path, per_scene=1)
    values = np.ones((12, 12), np.uint8)
    values[3, 4] = value
    write_label(tmp_path / "Labels" / "beach" / "beach00.png", values)
    dataset = build_dataset("ucm", tmp_path, "all")
    with pytest.raises(DataError, match=rf"beach00\.png holds value\(s\) \[{value}\] outside"):
        dataset.load_mask("beach00")


def test_missing_labels_folder_says_what_to_download(tmp_path: Path) -> None:
    write_ucm(tmp_path, layout="flat", per_scene=1)
    for path in (tmp_path / "UCMerced_Labels").iterdir():
        path.unlink()
    (tmp_path / "UCMerced_Labels").rmdir()
    with pytest.raises(DatasetNotFoundError, match="Download DLRSD"):
        build_dataset("ucm", tmp_path, "all")


def test_prepare_writes_stratified_split_without_copying(tmp_path: Path) -> None:
    src = tmp_path / "UCMerced"
    write_ucm(src, per_scene=10)
    out = tmp_path / "prepared"
    assert main(["prepare", "ucm", "--src", str(src), "--out", str(out), "--seed", "1"]) == 0
    assert not (out / "Images").exists()  # nothing copied
    meta = read_json(out / "dataset.json")
    assert meta["source"] == str(src.resolve()) and meta["split_sizes"] == {
        "train": 28,
        "val": 6,
        "test": 6,
    }
    for split in ("val", "test"):
        per_scene = Counter(scene_of(i) for i in read_ids(out / "splits" / f"{split}.txt"))
        # 6 of 40 images over 4 scenes of 10: 1.5 each -> two scenes get 2, two get 1
        assert sorted(per_scene.values()) == [1, 1, 2, 2]
    train = build_dataset("ucm", out, "train")
    assert len(train) == 28 and train[0]["image"].shape == (3, 12, 12)
    all_ids = sorted(
        read_ids(out / "splits" / "train.txt")
        + read_ids(out / "splits" / "val.txt")
        + read_ids(out / "splits" / "test.txt")
    )
    assert all_ids == sorted(build_dataset("ucm", src, "all").ids)


def test_prepare_in_place(tmp_path: Path) -> None:
    write_ucm(tmp_path, layout="flat", per_scene=5)
    meta = prepare_ucm(tmp_path, tmp_path, seed=0)
    assert meta["source"] == "."
    assert len(build_dataset("ucm", tmp_path, "test")) == meta["split_sizes"]["test"] > 0


def test_moved_source_is_a_clear_error(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_ucm(src, per_scene=3)
    prepare_ucm(src, tmp_path / "out")
    src.rename(tmp_path / "moved")
    with pytest.raises(DatasetNotFoundError, match="re-run 'als4gan prepare' with the new --src"):
        build_dataset("ucm", tmp_path / "out", "train")
