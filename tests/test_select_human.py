"""``select --oracle human``: an unlabelled pool, rounds that wait for masks saved by a person."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image

from als4gan.cli import main
from als4gan.io import read_ids, read_json

from .data.folder.data import write_folder

SYNTHETIC_NAMES = ("urban", "agriculture", "rangeland", "forest", "water", "barren")
SMALL = ("--labeled-ratio", "0.5", "--alpha", "0.5", "--beta", "0.5")  # B 11, n0 5, q 3: 3 + 3
FAST = ("--model", "resnet18", "--image-size", "64", "--epochs", "1", "--num-workers", "0")


def _folder_pool(synthetic_root: Path, root: Path, with_masks: bool) -> Path:
    """The synthetic training scenes as a ``folder`` dataset; masks withheld unless asked."""
    ids = read_ids(synthetic_root / "splits" / "train.txt")
    (root / "images").mkdir(parents=True)
    (root / "splits").mkdir()
    for sample_id in ids:
        shutil.copy(synthetic_root / "images" / f"{sample_id}.png", root / "images")
    if with_masks:
        (root / "masks").mkdir()
        for sample_id in ids:
            shutil.copy(synthetic_root / "masks" / f"{sample_id}.png", root / "masks")
    (root / "splits" / "train.txt").write_text("".join(f"{i}\n" for i in ids))
    classes = {"classes": [{"name": n, "value": v} for v, n in enumerate(SYNTHETIC_NAMES)]}
    (root / "classes.yaml").write_text(yaml.safe_dump(classes))
    return root


def _select(root: Path, out: Path, *extra: str) -> int:
    return main(["select", "--dataset", "folder", "--root", str(root), *FAST, *SMALL,
                 "--out", str(out), *extra])  # fmt: skip


def _annotate(hidden: Path, root: Path, out: Path) -> list[str]:
    """The scripted annotator: copy the masks of exactly the requested ids from ``hidden``."""
    requested = read_ids(out / "selection" / "to_label.txt")
    (root / "masks").mkdir(exist_ok=True)
    for sample_id in requested:
        shutil.copy(hidden / f"{sample_id}.png", root / "masks" / f"{sample_id}.png")
    return requested


@pytest.mark.parametrize("strategy", ["random", "entropy", "margin", "hybrid"])
def test_scripted_annotator_matches_the_simulation(
    strategy: str, synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    simulated_root = _folder_pool(synthetic_root, tmp_path / "full", with_masks=True)
    simulated = tmp_path / "simulated"
    assert _select(simulated_root, simulated, "--strategy", strategy) == 0

    root = _folder_pool(synthetic_root, tmp_path / "pool", with_masks=False)
    hidden = synthetic_root / "masks"
    out = tmp_path / "human"
    asked: list[list[str]] = []
    for _ in range(10):
        capsys.readouterr()
        assert _select(root, out, "--strategy", strategy, "--oracle", "human") == 0
        printed = capsys.readouterr().out
        status = read_json(out / "status.json")["select"]["state"]
        if status == "done":
            break
        assert status == "waiting"
        assert "waiting" in printed and "then continue with: als4gan select" in printed
        round_dir = out / "selection" / f"round_{len(asked)}"
        tasks = read_json(round_dir / "label_studio.json")
        assert [t["meta"]["id"] for t in tasks] == read_ids(out / "selection" / "to_label.txt")
        assert all(t["data"]["image"].startswith("/data/local-files/?d=") for t in tasks)
        assert (round_dir / "tasks.csv").read_text().startswith("id,image,score,mask,status\n")
        assert len(list((round_dir / "images").iterdir())) == len(tasks)
        main(["select", "--status", str(out)])
        assert f"round {len(asked)} waits for {len(tasks)} mask(s)" in capsys.readouterr().out
        asked.append(_annotate(hidden, root, out))
    assert [len(ids) for ids in asked] == [5, 3, 3]
    for name in ("labeled.txt", "unlabeled.txt", "labeled_names.npy"):
        assert (out / "selection" / name).read_bytes() == (
            simulated / "selection" / name
        ).read_bytes(), name
    human_rounds = read_json(out / "selection" / "selection.json")["rounds"]
    simulated_rounds = read_json(simulated / "selection" / "selection.json")["rounds"]
    assert human_rounds == simulated_rounds  # same ids, scores, seeds and class histograms
    assert not (out / "selection" / "to_label.txt").exists()
    # Running the same command once more only reports the finished selection.
    assert _select(root, out, "--strategy", strategy, "--oracle", "human") == 0
    assert "done; 11 of 11 images labelled" in capsys.readouterr().out


def test_simulation_of_an_unlabelled_pool_is_refused(
    synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _folder_pool(synthetic_root, tmp_path / "pool", with_masks=False)
    assert _select(root, tmp_path / "run", "--strategy", "random") != 0
    assert "has no mask" in capsys.readouterr().err


def test_bad_masks_block_the_round_and_extra_masks_join(
    synthetic_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    root = _folder_pool(synthetic_root, tmp_path / "pool", with_masks=False)
    hidden = synthetic_root / "masks"
    out = tmp_path / "run"
    args = ("--strategy", "random", "--oracle", "human")
    assert _select(root, out, *args) == 0
    requested = _annotate(hidden, root, out)
    first, second = requested[0], requested[1]
    # A mask of the wrong size: the round does not advance, the file is named.
    Image.fromarray(np.zeros((5, 7), np.uint8)).save(root / "masks" / f"{first}.png")
    assert _select(root, out, *args) != 0
    err = capsys.readouterr().err
    assert f"masks/{first}.png is 7x5" in err and "nothing was run" in err
    assert len(read_json(out / "selection" / "state.json")["rounds"]) == 0
    # Values outside the classes file: blocked too.
    shutil.copy(hidden / f"{first}.png", root / "masks" / f"{first}.png")
    Image.fromarray(np.full((64, 64), 9, np.uint8)).save(root / "masks" / f"{second}.png")
    assert _select(root, out, *args) != 0
    assert f"{second}.png" in capsys.readouterr().err
    shutil.copy(hidden / f"{second}.png", root / "masks" / f"{second}.png")
    # A mask nobody asked for joins the labelled set (and the log says so).
    pool = read_ids(root / "splits" / "train.txt")
    volunteer = next(i for i in pool if i not in requested)
    shutil.copy(hidden / f"{volunteer}.png", root / "masks" / f"{volunteer}.png")
    with caplog.at_level(logging.INFO, logger="als4gan.active.oracle"):
        assert _select(root, out, *args) == 0
    assert "not asked for join the labelled set" in caplog.text
    state = read_json(out / "selection" / "state.json")
    assert state["rounds"][0]["volunteered"] == [volunteer]
    assert volunteer in state["labelled"]
    # Deleting a mask that was already used is refused.
    (root / "masks" / f"{first}.png").unlink()
    _annotate(hidden, root, out)
    assert _select(root, out, *args) != 0
    assert "already used by earlier rounds are gone" in capsys.readouterr().err
    shutil.copy(hidden / f"{first}.png", root / "masks" / f"{first}.png")
    for _ in range(5):
        assert _select(root, out, *args) == 0
        if read_json(out / "status.json")["select"]["state"] == "done":
            break
        _annotate(hidden, root, out)
    labelled = read_ids(out / "selection" / "labeled.txt")
    assert len(labelled) == 12 and volunteer in labelled  # the budget of 11 + the volunteer
    assert len(read_ids(out / "selection" / "unlabeled.txt")) == 22 - 12


def _rasterio_crs(path: Path) -> Any:
    import rasterio

    with rasterio.open(path) as src:
        return src.crs


def test_folder_of_geotiffs_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("rasterio")
    source = tmp_path / "geotiffs"
    write_folder(source, image_format="geotiff", num_images=8, size=16, bands=4)
    hidden = tmp_path / "hidden"
    shutil.move(source / "masks", hidden)  # an unlabelled folder of GeoTIFFs
    data = tmp_path / "data"
    assert main(["prepare", "folder", "--src", str(source), "--out", str(data),
                 "--image-max", "10000"]) == 0  # fmt: skip
    assert len(read_ids(data / "splits" / "train.txt")) == 8  # no mask: all in the pool
    out = tmp_path / "run"
    args = ["select", "--dataset", "folder", "--root", str(data), "--budget", "4",
            "--strategy", "entropy", "--oracle", "human", "--out", str(out), *FAST]  # fmt: skip
    for _ in range(6):
        assert main(args) == 0
        if read_json(out / "status.json")["select"]["state"] == "done":
            break
        for sample_id in read_ids(out / "selection" / "to_label.txt"):
            (source / "masks").mkdir(exist_ok=True)
            shutil.copy(hidden / f"{sample_id}.png", source / "masks" / f"{sample_id}.png")
    linked = out / "selection" / "round_0" / "images"
    first = sorted(linked.iterdir())[0]
    assert str(_rasterio_crs(first)) == "EPSG:32633"  # georeference kept
    assert len(read_ids(out / "selection" / "labeled.txt")) == 4


def test_train_uses_maskless_pool_images_as_unlabelled(
    synthetic_root: Path, tmp_path: Path
) -> None:
    root = _folder_pool(synthetic_root, tmp_path / "pool", with_masks=False)
    ids = read_ids(root / "splits" / "train.txt")
    labelled = ids[:4]
    (root / "masks").mkdir()
    for sample_id in labelled:
        shutil.copy(synthetic_root / "masks" / f"{sample_id}.png", root / "masks")
    selection = tmp_path / "labeled.txt"
    selection.write_text("".join(f"{i}\n" for i in labelled))
    run = tmp_path / "train"
    code = main(["train", "--dataset", "folder", "--root", str(root), "--selection",
                 str(selection), "--backbone", "resnet18", "--crop-size", "48",
                 "--batch-size", "2", "--num-workers", "0", "--iterations", "1",
                 "--val-every", "0", "--out", str(run)])  # fmt: skip
    assert code == 0
    assert read_ids(run / "train_labeled.txt") == labelled
    assert read_ids(run / "train_unlabeled.txt") == ids[4:]  # the mask-less pool images
    # A labelled image whose mask is missing is refused before any work.
    (root / "masks" / f"{labelled[0]}.png").unlink()
    code = main(["train", "--dataset", "folder", "--root", str(root), "--selection",
                 str(selection), "--backbone", "resnet18", "--crop-size", "48",
                 "--batch-size", "2", "--num-workers", "0", "--iterations", "1",
                 "--val-every", "0", "--out", str(tmp_path / "again")])  # fmt: skip
    assert code != 0


def test_initial_file_replaces_the_random_draw(
    synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _folder_pool(synthetic_root, tmp_path / "pool", with_masks=False)
    full = _folder_pool(synthetic_root, tmp_path / "full", with_masks=True)
    pool = read_ids(root / "splits" / "train.txt")
    initial = tmp_path / "initial.txt"
    initial.write_text(f"{pool[7]}\n{pool[2]}\n{pool[11]}\n")
    args = ("--strategy", "entropy", "--initial", str(initial))
    simulated = tmp_path / "simulated"
    assert _select(full, simulated, *args) == 0
    out = tmp_path / "human"
    assert _select(root, out, *args, "--oracle", "human") == 0
    assert read_ids(out / "selection" / "to_label.txt") == [pool[7], pool[2], pool[11]]
    state = read_json(out / "selection" / "state.json")
    assert state["plan"]["initial_size"] == 3 and state["plan"]["round_sizes"] == [2, 2, 2, 2]
    other = tmp_path / "other.txt"
    other.write_text(f"{pool[0]}\n")
    assert _select(root, out, "--strategy", "entropy", "--initial", str(other),
                   "--oracle", "human") != 0  # fmt: skip
    assert "another --initial list" in capsys.readouterr().err
    for _ in range(8):
        if read_json(out / "status.json")["select"]["state"] == "done":
            break
        _annotate(synthetic_root / "masks", root, out)
        assert _select(root, out, *args, "--oracle", "human") == 0
    assert read_ids(out / "selection" / "labeled.txt")[:3] == [pool[7], pool[2], pool[11]]
    assert (out / "selection" / "labeled.txt").read_bytes() == (
        simulated / "selection" / "labeled.txt"
    ).read_bytes()


def test_prepare_folder_tiles_large_geotiffs(tmp_path: Path) -> None:
    rasterio = pytest.importorskip("rasterio")
    source = tmp_path / "rasters"
    write_folder(source, image_format="geotiff", num_images=6, size=40, bands=4)
    for sample_id in ("tile_004", "tile_005"):  # two rasters without masks: unlabelled
        (source / "masks" / f"{sample_id}.png").unlink()
    data = tmp_path / "data"
    assert main(["prepare", "folder", "--src", str(source), "--out", str(data),
                 "--image-max", "10000", "--tile-size", "16", "--val-fraction", "0.25",
                 "--test-fraction", "0.25"]) == 0  # fmt: skip
    tiles = sorted(p.stem for p in (data / "tiles" / "images").iterdir())
    assert len(tiles) == 6 * 9  # 40 px -> tiles at 0, 16 and 24 (the last shifted back)
    assert len(list((data / "tiles" / "masks").iterdir())) == 4 * 9
    with rasterio.open(data / "tiles" / "images" / "tile_000_y00016_x00024.tif") as src:
        assert src.count == 4 and (src.width, src.height) == (16, 16)
        assert str(src.crs) == "EPSG:32633"
        assert (src.transform.c, src.transform.f) == (500000.0 + 240.0, 4000000.0 - 160.0)
    with rasterio.open(source / "images" / "tile_000.tif") as src:
        whole = src.read()
    with rasterio.open(data / "tiles" / "images" / "tile_000_y00016_x00024.tif") as src:
        assert np.array_equal(src.read(), whole[:, 16:32, 24:40])
    splits = {name: read_ids(data / "splits" / f"{name}.txt") for name in ("train", "val", "test")}
    unlabelled = {t for t in tiles if t.startswith(("tile_004", "tile_005"))}
    assert unlabelled <= set(splits["train"])
    for name in ("val", "test"):  # whole rasters with masks only
        assert splits[name] and not set(splits[name]) & unlabelled
        assert len({t[:8] for t in splits[name]}) * 9 == len(splits[name])
    assert sum(len(ids) for ids in splits.values()) == len(tiles)


def test_rerun_while_waiting_and_interruption_change_nothing(
    synthetic_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from als4gan.active import acquisition

    root = _folder_pool(synthetic_root, tmp_path / "pool", with_masks=False)
    full = _folder_pool(synthetic_root, tmp_path / "full", with_masks=True)
    args = ("--strategy", "entropy")
    simulated = tmp_path / "simulated"
    assert _select(full, simulated, *args) == 0
    out = tmp_path / "human"
    original_fit = acquisition.AcquisitionModel.fit
    calls: list[int] = []

    def counting_fit(self: Any, ids: Any, round_index: int, epochs: int) -> Any:
        calls.append(round_index)
        if round_index == 2 and calls.count(2) == 1:
            raise KeyboardInterrupt  # killed while refitting after round 1's masks arrived
        return original_fit(self, ids, round_index, epochs)

    monkeypatch.setattr(acquisition.AcquisitionModel, "fit", counting_fit)
    assert _select(root, out, *args, "--oracle", "human") == 0
    _annotate(synthetic_root / "masks", root, out)
    assert _select(root, out, *args, "--oracle", "human") == 0
    asked = read_ids(out / "selection" / "to_label.txt")
    assert _select(root, out, *args, "--oracle", "human") == 0  # no masks saved: same request
    assert read_ids(out / "selection" / "to_label.txt") == asked and calls == [1]
    _annotate(synthetic_root / "masks", root, out)
    assert _select(root, out, *args, "--oracle", "human") == 130  # interrupted in round 2
    assert len(read_json(out / "selection" / "state.json")["rounds"]) == 2
    for _ in range(3):
        assert _select(root, out, *args, "--oracle", "human") == 0
        if read_json(out / "status.json")["select"]["state"] == "done":
            break
        _annotate(synthetic_root / "masks", root, out)
    assert calls == [1, 2, 2]
    assert (out / "selection" / "labeled.txt").read_bytes() == (
        simulated / "selection" / "labeled.txt"
    ).read_bytes()
