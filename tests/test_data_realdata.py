"""Real DeepGlobe samples from ../shared/data, read in place (skipped when absent)."""

from pathlib import Path

import pytest

from als4gan.cli import main
from als4gan.data import build_dataset
from als4gan.io import read_ids, read_json

pytestmark = pytest.mark.realdata


def test_deepglobe_512_decoding(shared_data: Path, tmp_path: Path) -> None:
    root = shared_data / "deepglobe_512"
    out_json = tmp_path / "stats.json"
    base = ["data", "stats", "--dataset", "deepglobe", "--root", str(root), "--split", "all"]
    assert main([*base, "--json", str(out_json)]) == 0
    stats = read_json(out_json)
    assert stats["num_read"] == 257 and not stats["problems"]
    shares = {c["name"]: c["share"] for c in stats["classes"]}
    # agriculture dominates at ~61.5% of pixels, water is rare at ~3.2% (PROVENANCE.txt)
    assert max(shares, key=shares.__getitem__) == "agriculture"
    assert 0.58 < shares["agriculture"] < 0.65
    assert 0.025 < shares["water"] < 0.04
    # 932 black "unknown" pixels plus 7 stray pure-red ones all become ignore, and only the
    # red ones count as colours that matched no class
    assert stats["unmatched_pixels"] == 7
    assert stats["pixels"]["ignore"] == 939
    labels = {label["name"]: label["images"] for label in stats["labels"]}
    assert max(labels, key=labels.__getitem__) == "agriculture"


def test_deepglobe_full_gives_208_tiles(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "dg_full"
    src = shared_data / "deepglobe_full"
    assert main(["prepare", "deepglobe", "--src", str(src), "--out", str(out)]) == 0
    images = sorted((out / "images").glob("*_sat.png"))
    masks = sorted((out / "masks").glob("*_mask.png"))
    assert len(images) == len(masks) == 13 * 16 == 208
    splits = [read_ids(out / "splits" / f"{name}.txt") for name in ("train", "val", "test")]
    assert sum(len(ids) for ids in splits) == 208
    # split at image level before tiling: every source image's 16 tiles share one split
    sources = [{tile.split("_y")[0] for tile in ids} for ids in splits]
    assert sum(len(s) for s in sources) == 13 and set.union(*sources) == {
        line.split()[1] for line in (src / "filelist.txt").read_text().splitlines()
    }
    tiles = build_dataset("deepglobe", out, "val")
    sample = tiles[0]
    assert sample["image"].shape == (3, 612, 612) and sample["mask"].shape == (612, 612)
