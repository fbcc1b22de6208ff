from pathlib import Path

import numpy as np
import pytest

from als4gan.cli import main
from als4gan.data import build_dataset
from als4gan.data.synthetic import SYNTHETIC_CLASSES, generate_scene
from als4gan.errors import ConfigError, DataError, DatasetNotFoundError


def test_scene_is_deterministic_and_independent_of_dataset_size() -> None:
    image, mask = generate_scene(seed=1, index=4, size=64)
    image2, mask2 = generate_scene(seed=1, index=4, size=64)
    assert image.dtype == np.uint8 and image.shape == (64, 64, 3)
    assert np.array_equal(image, image2) and np.array_equal(mask, mask2)
    assert not np.array_equal(image, generate_scene(seed=2, index=4, size=64)[0])


def test_class_balance_is_realistic() -> None:
    masks = np.stack([generate_scene(0, i, 64)[1] for i in range(120)])
    shares = np.bincount(masks.ravel(), minlength=6) / masks.size
    assert (shares > 0).all()  # all six classes occur
    assert shares.min() < 0.05  # at least one rare class (water)
    assert shares.argmax() == SYNTHETIC_CLASSES.names.index("agriculture")
    # image-level labels vary: several classes dominate some scene
    dominant = {int(np.bincount(m.ravel(), minlength=6).argmax()) for m in masks}
    assert len(dominant) >= 5


def test_colour_alone_does_not_separate_classes() -> None:
    # mean colours of classes overlap across scenes: a nearest-mean colour classifier is weak
    pixels, labels = [], []
    for i in range(40):
        image, mask = generate_scene(0, i, 64)
        pixels.append(image.reshape(-1, 3).astype(float))
        labels.append(mask.ravel())
    x, y = np.concatenate(pixels), np.concatenate(labels)
    means = np.stack([x[y == c].mean(0) for c in range(6)])
    predicted = np.argmin(((x[:, None] - means[None]) ** 2).sum(-1), axis=1)
    assert (predicted == y).mean() < 0.75


def test_prepare_writes_readable_dataset(tmp_path: Path) -> None:
    out = tmp_path / "syn"
    assert (
        main(
            [
                "prepare",
                "synthetic",
                "--out",
                str(out),
                "--num-images",
                "12",
                "--image-size",
                "48",
                "--seed",
                "5",
            ]
        )
        == 0
    )
    train = build_dataset("synthetic", out, "train")
    val = build_dataset("synthetic", out, "val")
    test = build_dataset("synthetic", out, "test")
    assert len(train) + len(val) + len(test) == 12
    assert not set(train.ids) & set(val.ids)
    sample = train[0]
    assert sample["image"].shape == (3, 48, 48)
    assert float(sample["image"].min()) >= 0.0 and float(sample["image"].max()) <= 1.0
    assert sample["mask"].dtype.is_floating_point is False
    assert sample["label"] == int(np.bincount(sample["mask"].numpy().ravel()).argmax())
    # re-running with the same parameters is a no-op; bytes are identical
    before = (out / "images" / f"{train.ids[0]}.png").read_bytes()
    assert (
        main(
            [
                "prepare",
                "synthetic",
                "--out",
                str(out),
                "--num-images",
                "12",
                "--image-size",
                "48",
                "--seed",
                "5",
            ]
        )
        == 0
    )
    assert (out / "images" / f"{train.ids[0]}.png").read_bytes() == before


def test_missing_root_and_split_have_clear_errors(tmp_path: Path, synthetic_root: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="prepare synthetic"):
        build_dataset("synthetic", tmp_path / "absent")
    with pytest.raises(DatasetNotFoundError, match="Available splits: test, train, val"):
        build_dataset("synthetic", synthetic_root, "holdout")
    with pytest.raises(ConfigError, match="synthetic"):
        build_dataset("nope", synthetic_root)


def test_bad_mask_value_is_reported_with_file(tmp_path: Path, synthetic_root: Path) -> None:
    import shutil

    from PIL import Image

    root = tmp_path / "copy"
    shutil.copytree(synthetic_root, root)
    dataset = build_dataset("synthetic", root, "train")
    mask_file = root / "masks" / f"{dataset.ids[0]}.png"
    mask = np.array(Image.open(mask_file))
    mask[0, 0] = 9
    Image.fromarray(mask).save(mask_file)
    with pytest.raises(DataError, match=rf"{dataset.ids[0]}\.png holds value\(s\) \[9\]"):
        dataset[0]
