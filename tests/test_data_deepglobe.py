import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from als4gan.cli import main
from als4gan.data import build_dataset
from als4gan.data.deepglobe import DEEPGLOBE_CLASSES, DeepGlobePrepareConfig, prepare_deepglobe
from als4gan.data.encoding import decode_binary_color_mask
from als4gan.errors import ConfigError, RunExistsError
from als4gan.io import read_ids, read_json, write_json
from tests.data.deepglobe.data import LAYOUTS, write_deepglobe


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_decodes_colours_per_spec(tmp_path: Path, layout: str) -> None:
    expected = write_deepglobe(tmp_path, layout=layout, num_images=3, stray=(0, 4))
    dataset = build_dataset("deepglobe", tmp_path, "all")
    assert dataset.ids == sorted(expected)
    for index, sample_id in enumerate(dataset.ids):
        sample = dataset[index]
        assert sample["image"].shape == (3, 16, 16)
        assert sample["mask"].dtype == torch.int64
        assert np.array_equal(sample["mask"].numpy(), expected[sample_id])
        counts = np.bincount(expected[sample_id][expected[sample_id] != 255], minlength=6)
        assert sample["label"] == int(np.argmax(counts))  # dominant class, ignore excluded
    assert dataset.unmatched_pixels == 4 and dataset.unmatched_masks == 1


def test_unmatched_colours_warn_once_in_aggregate(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_deepglobe(tmp_path, num_images=4, stray=(2, 3, 0, 5))
    dataset = build_dataset("deepglobe", tmp_path, "all")
    with caplog.at_level(logging.WARNING):
        for index in range(len(dataset)):
            dataset[index]
    warnings = [r for r in caplog.records if "match no DeepGlobe colour" in r.getMessage()]
    assert len(warnings) == 1  # one warning, not one per mask
    assert "100_mask.png" in warnings[0].getMessage()
    assert dataset.unmatched_summary() == (
        "10 pixel(s) in 3 mask(s) matched no DeepGlobe colour and were set to ignore (255)"
    )


def test_black_is_unknown_but_not_counted_as_unmatched() -> None:
    rgb = np.array([[[0, 0, 0], [250, 250, 10], [255, 0, 0], [127, 128, 128]]], dtype=np.uint8)
    mask, unmatched = decode_binary_color_mask(
        rgb, DEEPGLOBE_CLASSES.colors, ignore_colors=((0, 0, 0),)
    )
    # black -> ignore (not counted); noisy yellow -> agriculture; red -> ignore (counted);
    # 127 thresholds to 0 -> (0, 255, 255) urban
    assert mask.tolist() == [[255, 1, 255, 0]]
    assert unmatched == 1


def test_images_without_mask_are_left_out(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_deepglobe(tmp_path, num_images=3)
    (tmp_path / "masks" / "101_mask.png").unlink()
    with caplog.at_level(logging.WARNING):
        dataset = build_dataset("deepglobe", tmp_path, "all")
    assert dataset.ids == ["100", "102"]
    assert "have no <id>_mask.png" in caplog.text


def test_prepare_splits_images_before_tiling(tmp_path: Path) -> None:
    src = tmp_path / "src"
    expected = write_deepglobe(src, layout="flat", num_images=8, size=(20, 20), stray=(1,))
    out = tmp_path / "out"
    args = ["--tile-size", "8", "--workers", "1", "--seed", "3"]
    code = main(["prepare", "deepglobe", "--src", str(src), "--out", str(out), *args])
    assert code == 0
    meta = read_json(out / "dataset.json")
    # 20 px with 8 px tiles and the default overlap remainder: starts 0, 8, 12 -> 3 x 3 tiles
    assert meta["num_tiles"] == 8 * 9 and meta["complete"] is True
    assert meta["unmatched_pixels"] == 1
    splits = {name: read_ids(out / "splits" / f"{name}.txt") for name in ("train", "val", "test")}
    assert sum(len(ids) for ids in splits.values()) == 72
    sources = {name: {tile.split("_y")[0] for tile in ids} for name, ids in splits.items()}
    assert not sources["train"] & sources["val"] and not sources["train"] & sources["test"]
    assert not sources["val"] & sources["test"]
    assert all(sources.values())  # 8 images: every split gets at least one
    # tiles are exact, lossless crops of the decoded source; masks stay class indices
    train = build_dataset("deepglobe", out, "train")
    tile_id = "101_y00012_x00008"
    split_of_101 = next(name for name, ids in sources.items() if "101" in ids)
    dataset = build_dataset("deepglobe", out, split_of_101)
    source_image = np.asarray(Image.open(src / "101_sat.jpg").convert("RGB"))
    image, mask = dataset.load_pair(tile_id)
    assert np.array_equal(image, source_image[12:20, 8:16])
    assert np.array_equal(mask, expected["101"][12:20, 8:16])
    labels = read_json(out / "image_labels.json")
    assert labels[tile_id] == dataset.image_label(tile_id)
    assert len(train) == len(splits["train"])
    # same options again: nothing to do; other options: refused without --force
    assert (
        main(
            [
                "prepare",
                "deepglobe",
                "--src",
                str(src),
                "--out",
                str(out),
                "--tile-size",
                "8",
                "--workers",
                "1",
                "--seed",
                "3",
            ]
        )
        == 0
    )
    with pytest.raises(RunExistsError, match="--force"):
        prepare_deepglobe(src, out, DeepGlobePrepareConfig(tile_size=10), show_progress=False)


def test_prepare_force_replaces_tiles_and_no_tiling_copies_files(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_deepglobe(src, num_images=4, size=(16, 16))
    out = tmp_path / "out"
    prepare_deepglobe(src, out, DeepGlobePrepareConfig(tile_size=8), workers=1)
    assert len(list((out / "images").iterdir())) == 16
    prepare_deepglobe(src, out, DeepGlobePrepareConfig(tile_size=0), force=True, workers=1)
    images = sorted(p.name for p in (out / "images").iterdir())
    assert images == ["100_sat.jpg", "101_sat.jpg", "102_sat.jpg", "103_sat.jpg"]
    assert (out / "images" / "100_sat.jpg").read_bytes() == (
        src / "images" / "100_sat.jpg"
    ).read_bytes()
    assert len(list((out / "masks").iterdir())) == 4


def test_prepare_scale_resizes_masks_with_nearest_only(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_deepglobe(src, num_images=3, size=(16, 16))
    out = tmp_path / "out"
    prepare_deepglobe(
        src, out, DeepGlobePrepareConfig(tile_size=0, scale=0.5, val_fraction=0.34), workers=1
    )
    dataset = build_dataset("deepglobe", out, "all")
    for sample_id in dataset.ids:
        image, mask = dataset.load_pair(sample_id)
        assert image.shape == (8, 8, 3) and mask.shape == (8, 8)
        assert set(np.unique(mask).tolist()) <= {0, 1, 2, 3, 4, 5, 255}  # no blended values


def test_prepare_with_parallel_workers_matches_inline(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_deepglobe(src, num_images=4, size=(16, 16), stray=(2,))
    inline = prepare_deepglobe(src, tmp_path / "a", DeepGlobePrepareConfig(tile_size=8), workers=1)
    pooled = prepare_deepglobe(src, tmp_path / "b", DeepGlobePrepareConfig(tile_size=8), workers=2)
    assert inline["split_sizes"] == pooled["split_sizes"]
    assert inline["unmatched_pixels"] == pooled["unmatched_pixels"] == 2
    assert read_json(tmp_path / "a" / "image_labels.json") == read_json(
        tmp_path / "b" / "image_labels.json"
    )


def test_prepare_refuses_writing_into_the_source(tmp_path: Path) -> None:
    write_deepglobe(tmp_path, num_images=3)
    with pytest.raises(ConfigError, match="source folder"):
        prepare_deepglobe(tmp_path, tmp_path, DeepGlobePrepareConfig())
    other = tmp_path / "other"
    write_deepglobe(other, num_images=3)
    with pytest.raises(ConfigError, match="not written by 'als4gan prepare'"):
        prepare_deepglobe(tmp_path, other, DeepGlobePrepareConfig())


def test_wrong_dataset_name_for_a_prepared_root(synthetic_root: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--dataset synthetic"):
        build_dataset("deepglobe", synthetic_root, "train")
    # and the other way round: a prepared DeepGlobe folder read as the synthetic dataset
    src, out = tmp_path / "src", tmp_path / "out"
    write_deepglobe(src, num_images=3, size=(16, 16))
    prepare_deepglobe(src, out, DeepGlobePrepareConfig(tile_size=8), workers=1)
    with pytest.raises(ConfigError, match="--dataset deepglobe"):
        build_dataset("synthetic", out, "train")


def test_interrupted_prepare_resumes_keeping_finished_tiles(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_deepglobe(src, num_images=3, size=(16, 16))
    out = tmp_path / "out"
    config = DeepGlobePrepareConfig(tile_size=8)
    prepare_deepglobe(src, out, config, workers=1)
    # simulate an interruption: dataset.json not complete, some tiles missing
    meta = read_json(out / "dataset.json")
    write_json(out / "dataset.json", {**meta, "complete": False})
    kept = out / "images" / "100_y00000_x00000_sat.png"
    kept_mtime = kept.stat().st_mtime_ns
    (out / "images" / "102_y00008_x00008_sat.png").unlink()
    (out / "masks" / "102_y00008_x00008_mask.png").unlink()
    resumed = prepare_deepglobe(src, out, config, workers=1)
    assert resumed["complete"] is True and resumed["num_tiles"] == 12
    assert (out / "masks" / "102_y00008_x00008_mask.png").is_file()
    assert kept.stat().st_mtime_ns == kept_mtime  # finished work is not redone
