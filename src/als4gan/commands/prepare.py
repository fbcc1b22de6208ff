"""``als4gan prepare``: write a dataset to disk in the layout every later stage reads."""

from __future__ import annotations

import argparse
from typing import Any

HELP = "write a dataset (generated default or real) to disk with split lists"
DESCRIPTION = """\
Prepare a dataset folder that every later stage reads with --dataset NAME --root DIR.

  als4gan prepare synthetic --out data/synthetic --num-images 600 --image-size 128 --seed 0
      Generate the built-in default dataset (no download): images/, masks/, splits/.
  als4gan prepare deepglobe --src DeepGlobe/train --out data/deepglobe
      Split DeepGlobe Land Cover at image level, then cut 612 px tiles (4x4 per image).
  als4gan prepare deepglobe --src deepglobe_512 --out data/dg512 --tile-size 0
      Split without tiling (images already small).
  als4gan prepare ucm --src UCMerced --out data/ucm
      Scene-stratified split of UC Merced + DLRSD (lists only; images stay in --src).
  als4gan prepare folder --src my_data --out data/mine --classes-file classes.yaml
      Split any images/ + masks/ folder (lists only; images stay in --src).

Every variant writes OUT/splits/{train,val,test}.txt and OUT/dataset.json. Re-running with the
same options does nothing; other options need --force. See docs/data.md.
"""


def _add_split_options(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--val-fraction", type=float, default=0.15, help=f"share of {what} for validation (0.15)"
    )
    parser.add_argument(
        "--test-fraction", type=float, default=0.15, help=f"share of {what} for test (0.15)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the split (0)")
    parser.add_argument(
        "--force", action="store_true", help="overwrite OUT prepared with other options"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Sub-commands: one per dataset."""
    sub = parser.add_subparsers(dest="prepare_dataset", metavar="<dataset>", required=True)
    _add_synthetic(sub)
    _add_deepglobe(sub)
    _add_ucm(sub)
    _add_folder(sub)


def _add_synthetic(sub: Any) -> None:
    synthetic = sub.add_parser(
        "synthetic",
        help="generate the built-in default dataset",
        description="Generate procedural aerial-like scenes with 6 land-cover classes.",
    )
    synthetic.add_argument("--out", required=True, help="output folder")
    synthetic.add_argument("--num-images", type=int, default=600, help="number of scenes (600)")
    synthetic.add_argument("--image-size", type=int, default=128, help="side in pixels (128)")
    synthetic.add_argument("--seed", type=int, default=0, help="generator seed (0)")
    synthetic.add_argument(
        "--val-fraction", type=float, default=0.15, help="share of scenes for validation (0.15)"
    )
    synthetic.add_argument(
        "--test-fraction", type=float, default=0.15, help="share of scenes for test (0.15)"
    )
    synthetic.add_argument(
        "--force",
        action="store_true",
        help="replace OUT holding another dataset, or this one generated with other options",
    )


def _add_deepglobe(sub: Any) -> None:
    deepglobe = sub.add_parser(
        "deepglobe",
        help="split and tile DeepGlobe Land Cover",
        description=(
            "Split DeepGlobe Land Cover at image level (seeded), then cut every image into "
            "tiles. Writes OUT/images/<tile>_sat.png (lossless), OUT/masks/<tile>_mask.png "
            "(palette PNG: class index 0-5, 255 = ignore), OUT/splits/*.txt (tile ids), "
            "OUT/image_labels.json and OUT/dataset.json. Masks are decoded as in docs/data.md "
            "(threshold 128; unknown and unmatched colours -> ignore) and resized only with "
            "nearest neighbour."
        ),
    )
    deepglobe.add_argument(
        "--src", required=True, help="DeepGlobe folder (<id>_sat.jpg + <id>_mask.png, any layout)"
    )
    deepglobe.add_argument("--out", required=True, help="output folder")
    deepglobe.add_argument(
        "--tile-size",
        type=int,
        default=612,
        help="tile side in pixels; 0 = no tiling (612: 4x4 tiles per 2448 px image)",
    )
    deepglobe.add_argument(
        "--remainder",
        choices=("overlap", "pad", "drop"),
        default="overlap",
        help="sides not a multiple of the tile size: shift the last tile back (overlap, "
        "default), pad it with ignore (pad), or drop the strip (drop)",
    )
    deepglobe.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="resize whole images by this factor before tiling, e.g. 0.5 (default 1)",
    )
    deepglobe.add_argument(
        "--workers", type=int, default=0, help="parallel processes (default 0 = one per CPU)"
    )
    _add_split_options(deepglobe, "source images")


def _add_ucm(sub: Any) -> None:
    ucm = sub.add_parser(
        "ucm",
        help="scene-stratified split of UC Merced + DLRSD",
        description=(
            "Write a split of UC Merced images with DLRSD labels, stratified by scene class. "
            "Only OUT/splits/*.txt and OUT/dataset.json (recording --src) are written; the "
            "images stay where they are. --out may equal --src."
        ),
    )
    ucm.add_argument("--src", required=True, help="folder with Images/ and DLRSD labels")
    ucm.add_argument("--out", required=True, help="output folder (may equal --src)")
    _add_split_options(ucm, "images")


def _add_folder(sub: Any) -> None:
    from als4gan.argtypes import image_max_arg

    folder = sub.add_parser(
        "folder",
        help="split any images/ + masks/ folder described by a classes file",
        description=(
            "Write a split of a folder with images/ and masks/ (same file stems). Only "
            "OUT/splits/*.txt, OUT/classes.yaml and OUT/dataset.json (recording --src, --bands "
            "and --image-max) are written; images stay where they are. --out may equal --src. "
            "Images without a mask are unlabelled: they join the training split (the pool). "
            "--tile-size S first cuts large images and their masks into S-pixel tiles in "
            "OUT/tiles (GeoTIFF tiles keep their georeference), splitting by source image."
        ),
    )
    folder.add_argument("--src", required=True, help="folder with images/ and masks/")
    folder.add_argument("--out", required=True, help="output folder (may equal --src)")
    folder.add_argument(
        "--classes-file",
        default=None,
        help="YAML/JSON class table (default: SRC/classes.yaml); see docs/data.md",
    )
    folder.add_argument(
        "--bands",
        type=int,
        nargs="+",
        default=None,
        help="1-based image bands to read from GeoTIFFs (default: first three)",
    )
    folder.add_argument(
        "--image-max",
        type=image_max_arg,
        default=None,
        help=(
            "pixel value that maps to 1.0, e.g. 10000 for Sentinel-2 reflectance; required for "
            "integer images other than 8-bit and floats outside [0, 1] (default: 255 for 8-bit)"
        ),
    )
    folder.add_argument(
        "--tile-size",
        type=int,
        default=0,
        help="cut large images (and their masks) into tiles of this side in pixels, written to "
        "OUT/tiles (GeoTIFF tiles keep their georeference); 0 = no tiling (default)",
    )
    folder.add_argument(
        "--remainder",
        choices=("overlap", "drop"),
        default="overlap",
        help="with --tile-size, sides not a multiple of it: shift the last tile back "
        "(overlap, default) or drop the strip (drop)",
    )
    folder.add_argument(
        "--stratify",
        action="store_true",
        help="keep each dominant class's share in every split (reads every mask)",
    )
    _add_split_options(folder, "images")


def run(args: argparse.Namespace) -> int:
    """Build the preparation's config from the flags, prepare, and print what was written."""
    from als4gan.stages.prepare import KIND_OPTIONS, PrepareConfig, prepare

    kind = args.prepare_dataset
    options = {name: getattr(args, name) for name in KIND_OPTIONS[kind]}
    config = PrepareConfig(kind=kind, out=args.out, **options)
    print(prepare(config).message)
    return 0
