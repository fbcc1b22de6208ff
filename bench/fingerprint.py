r"""Behaviour fingerprint: run a tiny grid and hash what a refactoring must not change.

A code change that is meant to keep behaviour (a restructuring, a speed-up) must leave the
selections, the training losses and the test metrics of a fixed seed byte-identical. This script
runs a tiny experiment on the built-in synthetic dataset through ``als4gan run`` (every
strategy and every method, a handful of iterations) and writes one JSON file with, per cell:

- the sha256 of the selection's ``labeled.txt`` (which images were chosen, in order);
- the sha256 of the training log with its wall-clock fields removed (every loss, accept rate,
  learning rate and validation metric, at full float precision);
- the test metrics (mIoU, pixel accuracy, per-class IoU) as written by ``evaluate``.

Run it before and after the change and compare::

    python bench/fingerprint.py --out /tmp/fp_before          # on the old commit
    python bench/fingerprint.py --out /tmp/fp_after           # on the new one
    python bench/fingerprint.py --compare /tmp/fp_before/fingerprint.json \
        /tmp/fp_after/fingerprint.json

About 2 minutes on 2 CPU cores. Compare runs made with the same ``--threads`` (default 1):
some of torch's CPU kernels sum in a thread-dependent order. Needs the ImageNet MobileNetV2
weights in the weights cache (``als4gan weights fetch mobilenet_v2-imagenet``) for the
embedding strategies.
The last line is ``RESULT identical=...`` with ``--compare``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

STRATEGIES = ["random", "entropy", "hybrid", "typiclust", "probcover"]
METHODS = ["s4gan", "supervised", "unimatch"]
TIME_KEYS = {"time", "elapsed", "seconds", "wall_s", "images_per_s"}


def experiment(out: Path) -> dict[str, Any]:
    """The tiny experiment: 120 synthetic 64 px images, every strategy and method, 8 iterations."""
    return {
        "name": "fingerprint",
        "out": str(out),
        "dataset": {
            "name": "synthetic",
            "root": str(out / "data"),
            "prepare": {"kind": "synthetic", "num_images": 120, "image_size": 64, "seed": 0},
        },
        "grid": {
            "strategies": STRATEGIES,
            "ratios": [0.1],
            "seeds": [0],
            "methods": METHODS,
            "reference": True,
        },
        "select": {
            "model": "mobilenet_v2",
            "pretrained": "imagenet",
            "image_size": 64,
            "epochs": 2,
            "alpha": 0.5,
            "beta": 0.5,
        },
        "train": {
            "backbone": "mobilenet_v2",
            "pretrained": "imagenet",
            "output_stride": 16,
            "aspp_rates": [2, 4],
            "crop_size": 64,
            "batch_size": 2,
            "iterations": 8,
            "lr": 0.0025,
            "val_every": 4,
            "val_window": 0,
            "checkpoint_every": 4,
        },
        "evaluate": {"split": "test"},
    }


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _strip_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_times(v) for k, v in value.items() if k not in TIME_KEYS}
    if isinstance(value, list):
        return [_strip_times(v) for v in value]
    return value


def fingerprint(out: Path) -> dict[str, Any]:
    """Hashes and metrics of every finished cell under ``out/cells``."""
    cells: dict[str, Any] = {}
    for cell in sorted((out / "cells").iterdir()):
        entry: dict[str, Any] = {}
        labeled = cell / "selection" / "labeled.txt"
        if labeled.is_file():
            entry["selection_sha256"] = _sha(labeled.read_bytes())
        log = cell / "metrics.jsonl"
        if log.is_file():
            records = [
                _strip_times(json.loads(line)) for line in log.read_text().splitlines() if line
            ]
            entry["train_log_sha256"] = _sha(json.dumps(records, sort_keys=True).encode())
            entry["train_records"] = len(records)
        metrics = cell / "eval" / "test" / "metrics.json"
        if metrics.is_file():
            data = _strip_times(json.loads(metrics.read_text()))
            entry["test"] = {
                key: data.get(key) for key in ("miou", "pixel_accuracy", "per_class_iou")
            }
        cells[cell.name] = entry
    return {"cells": cells}


def compare(before: Path, after: Path) -> int:
    """Print the cells whose fingerprints differ; 0 when all are identical."""
    a = json.loads(before.read_text())["cells"]
    b = json.loads(after.read_text())["cells"]
    differ = []
    for name in sorted(set(a) | set(b)):
        if a.get(name) != b.get(name):
            keys = sorted(
                k
                for k in set(a.get(name, {})) | set(b.get(name, {}))
                if a.get(name, {}).get(k) != b.get(name, {}).get(k)
            )
            differ.append(name)
            print(f"DIFFERENT {name}: {', '.join(keys)}")
    print(f"{len(set(a) | set(b)) - len(differ)} cell(s) identical, {len(differ)} different")
    print(f"RESULT identical={not differ} cells={len(set(a) | set(b))} different={len(differ)}")
    return 0 if not differ else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/als4gan_fingerprint"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args(argv)
    if args.compare:
        return compare(*args.compare)
    args.out.mkdir(parents=True, exist_ok=True)
    config = args.out / "fingerprint.yaml"
    config.write_text(yaml.safe_dump(experiment(args.out.resolve()), sort_keys=False))
    command = [sys.executable, "-m", "als4gan", "run", str(config), "--threads", str(args.threads)]
    subprocess.run(command, check=True)
    result = args.out / "fingerprint.json"
    result.write_text(json.dumps(fingerprint(args.out), indent=1, sort_keys=True) + "\n")
    print(f"fingerprint of {len(json.loads(result.read_text())['cells'])} cells -> {result}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
