"""Benchmark of ``als4gan predict`` on large generated GeoTIFFs: tiles/s and peak memory.

Generates RGB GeoTIFFs (default 4,096^2 and 16,384^2 pixels, written by windows), saves a
randomly initialised DeepLab-v2 ResNet-18 checkpoint (output stride 16 by default, to keep the
16k run to minutes on a CPU; timing does not depend on the weights), and runs
``als4gan predict`` on each raster in a fresh subprocess that reports its own peak RSS. Memory
must not grow with the raster area: the script prints the ratio of the peak RSS of the largest
to the smallest raster (target < 1.3).

    python bench/predict_bench.py            # 4096^2 and 16384^2 (the 16k run takes minutes)
    python bench/predict_bench.py --quick    # 512^2 and 2048^2, window 256: a sanity run

The last line is ``RESULT tiles_per_s=... rss_ratio=...``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def write_raster(path: Path, size: int, seed: int) -> None:
    """A size x size RGB uint8 GeoTIFF with field-like texture, written 256 rows at a time."""
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    rng = np.random.default_rng(seed)
    profile = {
        "driver": "GTiff",
        "height": size,
        "width": size,
        "count": 3,
        "dtype": "uint8",
        "crs": "EPSG:32633",
        "transform": Affine(0.5, 0.0, 500_000.0, 0.0, -0.5, 4_600_000.0),
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "BIGTIFF": "IF_SAFER",
    }
    base = np.array([[120, 140, 90], [90, 110, 70], [160, 150, 120], [60, 90, 120]], np.float32)
    cols = np.arange(size, dtype=np.float32)
    with rasterio.open(path, "w", **profile) as dst:
        for top in range(0, size, 256):
            rows = np.arange(top, min(top + 256, size), dtype=np.float32)[:, None]
            parcel = ((rows // 300).astype(np.int64) * 7 + (cols // 300).astype(np.int64)) % 4
            stripes = 12 * np.sin((rows + 0.7 * cols) / 6.0)
            noise = rng.normal(0, 10, (rows.shape[0], size)).astype(np.float32)
            band = base[parcel] + (stripes + noise)[:, :, None]
            block = np.clip(band, 0, 255).astype(np.uint8).transpose(2, 0, 1)
            dst.write(block, window=Window(0, top, size, block.shape[1]))


def write_model(path: Path, backbone: str, output_stride: int, window: int) -> None:
    """A randomly initialised DeepLab-v2 checkpoint with the synthetic dataset's classes."""
    import torch

    from als4gan.checkpoint import save_checkpoint
    from als4gan.data.synthetic import SYNTHETIC_CLASSES
    from als4gan.models import build_segmentation_model

    spec: dict[str, Any] = {
        "arch": "deeplabv2",
        "backbone": backbone,
        "num_classes": SYNTHETIC_CLASSES.num_classes,
        "in_channels": 3,
        "output_stride": output_stride,
    }
    torch.manual_seed(0)
    model = build_segmentation_model(**spec)
    save_checkpoint(
        path,
        {
            "kind": "segmentation",
            "model_spec": spec,
            "dataset": {
                "name": "synthetic",
                "classes": SYNTHETIC_CLASSES.to_dict(),
                "in_channels": 3,
                "label_names": list(SYNTHETIC_CLASSES.names),
            },
            "model": model.state_dict(),
            "step": 0,
            "config": {"crop_size": window},
        },
    )


def worker(args: argparse.Namespace) -> int:
    """Run one prediction in this (fresh) process and print its figures as JSON."""
    from als4gan.cli import main

    started = time.perf_counter()
    code = main(
        [
            "predict",
            "--checkpoint",
            args.checkpoint,
            args.input,
            "--out",
            args.out,
            "--window",
            str(args.window),
            "--overlap",
            str(args.overlap),
            "--batch-size",
            str(args.batch_size),
            "--confidence",
            "--force",
        ]
    )
    wall = time.perf_counter() - started
    summary = json.loads((Path(args.out) / f"{Path(args.input).stem}.json").read_text())
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "code": code,
                "tiles": summary["tiles"],
                "predict_s": summary["seconds"],
                "wall_s": wall,
                "peak_rss_mb": peak_kb / 1024,
            }
        )
    )
    return code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small rasters: a sanity run")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="raster sides")
    parser.add_argument("--window", type=int, default=None, help="tile side (default 512)")
    parser.add_argument("--overlap", type=float, default=0.25)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--output-stride", type=int, default=16, choices=(8, 16))
    parser.add_argument("--workdir", default=None, help="keep rasters and outputs here")
    parser.add_argument("--progress", action="store_true", help="show the predict progress bar")
    # worker mode (internal)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    sizes = args.sizes or ([512, 2048] if args.quick else [4096, 16384])
    window = args.window or (256 if args.quick else 512)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="predbench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    model_name = f"DeepLab-v2 {args.backbone} (output stride {args.output_stride}, random init)"
    try:
        checkpoint = workdir / "model.pt"
        write_model(checkpoint, args.backbone, args.output_stride, window)
        import torch

        print(
            f"model: {model_name}; window {window}, overlap {args.overlap}, "
            f"batch {args.batch_size}, {torch.get_num_threads()} torch threads, "
            f"{os.cpu_count()} CPUs"
        )
        results = []
        for size in sizes:
            raster = workdir / f"raster_{size}.tif"
            if not raster.is_file():
                started = time.perf_counter()
                write_raster(raster, size, seed=size)
                print(f"generated {raster.name} in {time.perf_counter() - started:.1f} s")
            env = dict(os.environ)
            if not args.progress:
                env["ALS4GAN_NO_PROGRESS"] = "1"
            command = [
                sys.executable,
                __file__,
                "--worker",
                "--checkpoint",
                str(checkpoint),
                "--input",
                str(raster),
                "--out",
                str(workdir / f"out_{size}"),
                "--window",
                str(window),
                "--overlap",
                str(args.overlap),
                "--batch-size",
                str(args.batch_size),
            ]
            completed = subprocess.run(
                command, env=env, stdout=subprocess.PIPE, text=True, check=False
            )
            if completed.returncode != 0:
                print(completed.stdout)
                raise SystemExit(f"predict on {raster} failed ({completed.returncode})")
            figures = json.loads(completed.stdout.strip().splitlines()[-1])
            figures["size"] = size
            figures["tiles_per_s"] = figures["tiles"] / figures["predict_s"]
            results.append(figures)
            print(
                f"{size:>6}^2 px: {figures['tiles']:>5} tiles in {figures['predict_s']:8.1f} s "
                f"= {figures['tiles_per_s']:6.2f} tiles/s, "
                f"peak RSS {figures['peak_rss_mb']:7.0f} MB"
            )
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    small, large = results[0], results[-1]
    ratio = large["peak_rss_mb"] / small["peak_rss_mb"]
    print(
        f"RESULT tiles_per_s={large['tiles_per_s']:.3f} rss_ratio={ratio:.3f} "
        f"rss_small_mb={small['peak_rss_mb']:.0f} rss_large_mb={large['peak_rss_mb']:.0f} "
        f"sizes={small['size']},{large['size']} window={window}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
