"""Big pools: peak RSS and time of a whole ``als4gan select`` as the pool grows to 100,000 images.

Each selection is the real command (``python -m als4gan select ...``) in a fresh subprocess, so
its peak RSS (``ru_maxrss`` of that child, from ``os.wait4``) is its own: Python, torch, the
network, the dataset's id list, the pool state, the scores and whatever else grows with the
pool. The pool is written once (generated 64 px scenes: a few hundred from the synthetic
generator, the rest dihedral transforms of them with a colour gain, see ``write_pool`` in
bench/select_bench.py); smaller pools are the first ids of it through a split file. Every run
starts with an empty check cache (``$ALS4GAN_CACHE_DIR``), like a first run on new data.

The selection is kept small apart from the pool (budget 20, alpha 0.5, beta 1.0: 10 random
images, then one query round of 10; one training epoch), so its time is the pool's: scoring
every unlabelled image once (and, for typiclust, embedding every image once).

    python bench/bigpool_bench.py                       # ~20 min on 2 busy CPU cores
    python bench/bigpool_bench.py --quick               # seconds: a sanity run (CI test)
    python bench/bigpool_bench.py --runs entropy:1000,10000,100000 hybrid:1000,10000

The last line is ``RESULT key=value ...``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from select_bench import write_pool, write_split

#: Default runs: strategy -> pool sizes (entropy to 100k; the embedding strategies smaller,
#: their memory grows with the pool by design: one float16/float32 vector per image).
DEFAULT_RUNS = ["entropy:1000,10000,100000", "hybrid:1000,10000", "typiclust:1000,10000"]
QUICK_RUNS = ["entropy:60,240", "typiclust:60,240"]


def parse_runs(items: list[str]) -> list[tuple[str, list[int]]]:
    """``["entropy:1000,10000"]`` -> ``[("entropy", [1000, 10000])]``."""
    runs = []
    for item in items:
        name, _, sizes = item.partition(":")
        if not sizes:
            raise SystemExit(f"--runs takes STRATEGY:SIZE,SIZE,...; got '{item}'")
        runs.append((name, sorted(int(size) for size in sizes.split(","))))
    return runs


def select_command(
    args: argparse.Namespace, root: Path, split: Path, strategy: str, out: Path
) -> list[str]:
    """The ``als4gan select`` command line of one measurement."""
    return [
        sys.executable, "-m", "als4gan", "select",
        "--threads", str(args.threads),
        "--root", str(root), "--split", str(split),
        "--budget", str(args.budget), "--alpha", "0.5", "--beta", "1.0",
        "--strategy", strategy, "--model", args.model, "--pretrained", "none",
        "--image-size", str(args.image_size), "--epochs", "1",
        "--num-workers", "0", "--sheet-max", "20", "--out", str(out),
    ]  # fmt: skip


def measure(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run ``command``; its wall time, CPU time and peak RSS (MB) from ``os.wait4``."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    output = proc.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(output)
        raise SystemExit(f"'{' '.join(command[:4])} ...' failed (exit {proc.returncode})")
    return {
        "seconds": seconds,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "max_rss_mb": usage.ru_maxrss / 1024.0,
    }


def scored_images(strategy: str, pool: int, budget: int) -> int:
    """Images passed through the network once by one measurement (see the module doc)."""
    initial = max(1, budget // 2)
    if strategy in ("typiclust", "probcover"):
        return pool  # every pool image embedded once
    if strategy in ("hybrid", "coreset"):
        return pool  # the unlabelled pool scored, the labelled images embedded
    return pool - initial


def run_one(
    args: argparse.Namespace, tmp: Path, root: Path, strategy: str, size: int
) -> dict[str, Any]:
    """One fresh ``als4gan select`` on the first ``size`` images of the pool."""
    split = write_split(root, f"pool{size}", size)
    out = tmp / f"{strategy}_{size}"
    cache = tmp / f"cache_{strategy}_{size}"
    env = {
        **os.environ,
        "ALS4GAN_NO_PROGRESS": "1",
        "ALS4GAN_CACHE_DIR": str(cache),
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).resolve().parents[1] / "src"), os.environ.get("PYTHONPATH", "")]
        ),
    }
    outcome = measure(select_command(args, root, split, strategy, out), env)
    timing = json.loads((out / "selection" / "timing.json").read_text())
    outcome["score_seconds"] = float(timing["score_seconds"])
    outcome["train_seconds"] = float(timing["train_seconds"])
    outcome["scored"] = scored_images(strategy, size, args.budget)
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)
    return outcome


def report_strategy(strategy: str, rows: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Print one strategy's table and its RSS ratio / time per 1,000 images; RESULT keys."""
    results: dict[str, Any] = {}
    for size, row in rows.items():
        per_k = 1000 * row["score_seconds"] / max(1, row["scored"])
        print(
            f"[big] {strategy:9s} pool {size:>7d}: peak RSS {row['max_rss_mb']:6.0f} MB, wall "
            f"{row['seconds']:7.1f} s (CPU {row['cpu_seconds']:7.1f} s), scoring "
            f"{row['score_seconds']:7.1f} s for {row['scored']} images = {per_k:.2f} s per 1,000",
            flush=True,
        )
        results[f"{strategy}_rss_mb_{size}"] = round(row["max_rss_mb"])
        results[f"{strategy}_s_per_1k_{size}"] = round(per_k, 3)
        results[f"{strategy}_wall_s_{size}"] = round(row["seconds"], 1)
        results[f"{strategy}_cpu_s_{size}"] = round(row["cpu_seconds"], 1)
    sizes = sorted(rows)
    for low, high in itertools.pairwise(sizes):
        # CPU time does not count waiting for a shared core: the load-independent cost
        marginal = 1000 * (rows[high]["cpu_seconds"] - rows[low]["cpu_seconds"]) / (high - low)
        print(
            f"[big] {strategy}: {marginal:.2f} CPU s per 1,000 more pool images ({low} -> {high})"
        )
        results[f"{strategy}_cpu_s_per_1k_{low}_{high}"] = round(marginal, 3)
    small, large = sizes[0], sizes[-1]
    if small != large:
        ratio = rows[large]["max_rss_mb"] / rows[small]["max_rss_mb"]
        growth = (rows[large]["max_rss_mb"] - rows[small]["max_rss_mb"]) / (large - small)
        print(
            f"[big] {strategy}: RSS ratio {large}/{small} = {ratio:.3f} (target <= 1.15 for "
            f"strategies without embeddings); growth {1024 * growth:.1f} kB per pool image",
            flush=True,
        )
        results[f"{strategy}_rss_ratio"] = round(ratio, 3)
        results[f"{strategy}_kb_per_image"] = round(1024 * growth, 2)
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny pools: a sanity run")
    parser.add_argument(
        "--runs", nargs="+", default=None, help=f"STRATEGY:SIZE,... ({' '.join(DEFAULT_RUNS)})"
    )
    parser.add_argument("--model", default="resnet18", help="acquisition backbone (resnet18)")
    parser.add_argument("--image-size", type=int, default=64, help="tile and input px (64)")
    parser.add_argument("--budget", type=int, default=20, help="budget B (20)")
    parser.add_argument("--threads", type=int, default=1, help="--threads of select (1)")
    parser.add_argument("--unique", type=int, default=500, help="generated base scenes (500)")
    parser.add_argument("--tmp", default=None, help="folder for the pool (default: a temp dir)")
    parser.add_argument(
        "--pool", default=None, help="reuse this pool folder (from --keep) instead of writing one"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    if args.runs is None:
        args.runs = QUICK_RUNS if args.quick else DEFAULT_RUNS
    if args.quick:
        args.unique, args.image_size, args.budget = 40, 32, 8
        args.model = "mobilenet_v2"
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Write the pool, run every measurement, print the tables and the RESULT line."""
    args = parse_args(argv)
    runs = parse_runs(args.runs)
    largest = max(size for _, sizes in runs for size in sizes)
    tmp = Path(tempfile.mkdtemp(prefix="bigpool_", dir=args.tmp))
    try:
        load = os.getloadavg()
        print(
            f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} "
            f"{load[2]:.2f}; select --threads {args.threads}, --num-workers 0, {args.model} at "
            f"{args.image_size}px, budget {args.budget} (one query round, 1 epoch)",
            flush=True,
        )
        start = time.perf_counter()
        root = Path(args.pool) if args.pool else tmp / "pool"
        if args.pool is None:
            write_pool(root, largest, args.image_size, unique=min(args.unique, largest))
        available = len((root / "splits" / "train.txt").read_text().split())
        if available < largest:
            raise SystemExit(f"{root} holds {available} scenes, fewer than {largest}")
        print(f"[big] pool of {available} scenes of {args.image_size}px in {root} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)  # fmt: skip
        results: dict[str, Any] = {"threads": args.threads, "model": args.model}
        for strategy, sizes in runs:
            rows = {}
            for size in sizes:
                rows[size] = run_one(args, tmp, root, strategy, size)
                print(f"[big] {strategy} pool {size}: done ({rows[size]['seconds']:.0f} s)",
                      flush=True)  # fmt: skip
            results.update(report_strategy(strategy, rows))
        results["total_s"] = round(time.perf_counter() - start)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print("RESULT " + " ".join(f"{key}={value}" for key, value in results.items()), flush=True)
    return results


if __name__ == "__main__":
    main()
