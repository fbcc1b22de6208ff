import pytest

from als4gan.data import build_dataset, dataset_options
from als4gan.errors import ConfigError


def test_dataset_options_keeps_only_what_was_set() -> None:
    assert dataset_options() == {}
    assert dataset_options(classes_file="", bands=[]) == {}
    assert dataset_options(classes_file="c.yaml", bands=(4, 3, 2), image_max=255) == {
        "classes_file": "c.yaml",
        "bands": [4, 3, 2],
        "image_max": 255.0,
    }


def test_dataset_options_are_refused_by_datasets_without_them(tmp_path: object) -> None:
    with pytest.raises(ConfigError, match="--bands cannot be used with --dataset synthetic"):
        build_dataset("synthetic", str(tmp_path), "train", **dataset_options(bands=[1, 2, 3]))
