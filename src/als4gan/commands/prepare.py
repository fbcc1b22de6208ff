"""``als4gan prepare``: write a dataset to disk in the layout every later stage reads."""

from __future__ import annotations

import argparse

HELP = "write a dataset (generated default or real) to disk with split lists"
DESCRIPTION = """\
Prepare a dataset folder that every later stage reads with --dataset NAME --root DIR.

  als4gan prepare synthetic --out data/synthetic --num-images 600 --image-size 128 --seed 0
      Generate the built-in default dataset (no download): images/, masks/, splits/.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Sub-commands: one per dataset."""
    sub = parser.add_subparsers(dest="prepare_dataset", metavar="<dataset>", required=True)
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


def run(args: argparse.Namespace) -> int:
    """Dispatch to the dataset's preparation."""
    if args.prepare_dataset == "synthetic":
        from als4gan.data.synthetic import SyntheticConfig, write_synthetic

        config = SyntheticConfig(
            num_images=args.num_images,
            image_size=args.image_size,
            seed=args.seed,
            val_fraction=args.val_fraction,
            test_fraction=args.test_fraction,
        )
        meta = write_synthetic(args.out, config)
        print(
            f"wrote {meta['num_images']} synthetic scenes of {meta['image_size']}px to {args.out} "
            "(splits: train, val, test)"
        )
        return 0
    raise AssertionError(args.prepare_dataset)  # argparse restricts the choices
