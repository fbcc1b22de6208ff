"""``als4gan predict``: segment new images and GeoTIFFs of any size (tiled, georeference kept)."""

from __future__ import annotations

import argparse

from als4gan.config import add_config_arguments, resolve_config
from als4gan.stages.predict import PredictConfig

HELP = "segment new images and GeoTIFFs of any size (tiled, georeference kept)"
DESCRIPTION = """\
Segment image files, folders of images and GeoTIFFs of any size with a trained checkpoint.
Inputs are cut into overlapping tiles whose predictions are blended. GeoTIFFs are read and
written window by window, so memory stays bounded whatever the raster size.

Pixels are read and scaled as the model was trained (bands and --image-max recorded in the
checkpoint); a different --bands or --image-max is refused. No-data pixels (NaN, or the
raster's no-data value) are written as class 255 (the GeoTIFF's no-data value).

Outputs in --out, per input NAME:
  GeoTIFF input   NAME_classes.tif  class indices (CRS + transform kept, colour table embedded)
                  NAME_color.tif    class colours, full size;  NAME_color.png  preview + legend
  other images    NAME_classes.png  class indices (palette PNG); NAME_color.png  full size + legend
  --confidence    NAME_confidence.tif/.png   max class probability x 255 (uint8)
  --overlay       NAME_overlay.png  class colours over the image (preview for GeoTIFFs)
  always          NAME.json         size, georeference, class shares, timing (written last;
                                    inputs with one are skipped on a re-run unless --force)

examples:
  als4gan predict --checkpoint runs/s4gan scene.tif --out predictions --overlay
  als4gan predict --checkpoint runs/s4gan/checkpoints/best.pt tiles/ --out predictions \\
      --confidence --window 512
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``predict``."""
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders, GeoTIFFs")
    parser.add_argument(
        "--checkpoint",
        required=True,
        metavar="CKPT",
        help="checkpoint file, or a run folder (uses RUN_DIR/checkpoints/best.pt)",
    )
    parser.add_argument("--out", required=True, help="output folder")
    from als4gan.argtypes import image_max_arg

    parser.add_argument(
        "--bands",
        type=int,
        nargs="+",
        default=None,
        help=(
            "1-based input bands to feed the model (default: the bands recorded in the "
            "checkpoint, else the first ones); a value other than the recorded one is refused"
        ),
    )
    parser.add_argument(
        "--image-max",
        type=image_max_arg,
        default=None,
        help=(
            "pixel value that maps to 1.0 (default: the one recorded in the checkpoint); only "
            "for checkpoints that record none, a different value is refused"
        ),
    )
    parser.add_argument(
        "--classes-file",
        default=None,
        help="YAML/JSON class table whose colours to use; must list the checkpoint's classes",
    )
    add_config_arguments(parser, PredictConfig, title="prediction")
    parser.add_argument("--config", default=None, help="YAML file with prediction options")
    parser.add_argument("--force", action="store_true", help="redo inputs already predicted")


def run(args: argparse.Namespace) -> int:
    """Predict every input."""
    from als4gan.stages.predict import predict

    config = resolve_config(PredictConfig, args, args.config)
    result = predict(
        args.inputs,
        args.checkpoint,
        args.out,
        config,
        bands=args.bands,
        image_max=args.image_max,
        classes_file=args.classes_file,
        force=args.force,
    )
    print(result.message)
    return 0
