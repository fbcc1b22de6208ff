"""Benchmark of ``als4gan select``: scoring speed, memory vs pool size, and whole-selection time.

One invocation prints:

1. pool-scoring throughput (images/s) of the acquisition classifier (MobileNetV2 and
   ResNet-18 at 128 px by default, ``--score-models``), each in a fresh subprocess: fp32 with
   channels_last, fp32 contiguous, each of them eager and through ``torch.compile``
   (``--no-compile`` skips it: compiling takes a minute or more per setting on a small CPU),
   and bf16 autocast (used only where ``runtime.resolve_amp`` says it is fast; on CPUs without
   AVX512-BF16/AMX it is slower, and this shows by how much); then the ratios contiguous vs
   channels_last and compiled vs eager, and the fastest fp32 setting (what ``auto`` should
   pick on this machine). ``--threads N`` fixes torch's threads (a loaded machine: 1);
2. the peak RSS of a whole selection on pools of 1,000 and 8,000 generated images, each in a
   fresh subprocess (target: ratio < 1.15, i.e. memory does not grow with the pool);
3. the wall time (and peak RSS) of a whole selection at the paper's schedule shape (alpha 0.1,
   beta 0.5, same epochs) with our defaults (streamed pool, default refit), with
   ``--refit incremental``, and with the reference behaviour (the whole pool held in memory and
   scored as one batch, full refit on every labelled image every round), each in a fresh
   subprocess.

``--compare-refit`` also runs the three refit modes (full / reinit / incremental) on the same
pool over several seeds and prints time, class coverage, rare-class share and the classifier's
accuracy on the unlabelled pool (the measurement behind the default ``--refit``).

    python bench/select_bench.py                 # ~10 minutes on 2 CPU cores (compiling)
    python bench/select_bench.py --parts 1 --threads 1   # scoring settings only
    python bench/select_bench.py --quick         # a sanity run (smaller everything)
    python bench/select_bench.py --compare-refit --seeds 3

Pools are generated scenes written to a temporary folder (a base set from the synthetic
generator, the rest as flipped / rotated / re-tinted variants, so 8,000 images take seconds).
The last line is ``RESULT key=value ...``.
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

# ---------------------------------------------------------------------------- data


def write_pool(root: Path, count: int, size: int, unique: int = 500, seed: int = 11) -> None:
    """Write ``count`` scenes of ``size`` px as a synthetic-format dataset (split ``train``).

    ``unique`` scenes come from the synthetic generator; the others are dihedral transforms of
    them with a per-image colour gain, so every image differs and generation stays fast.
    """
    from PIL import Image

    from als4gan.data.synthetic import generate_scene

    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    (root / "splits").mkdir(parents=True, exist_ok=True)
    base = [generate_scene(seed, index, size) for index in range(min(unique, count))]
    rng = np.random.default_rng(seed)
    ids = []
    for index in range(count):
        image, mask = base[index % len(base)]
        variant = index // len(base)
        if variant:
            turns, flip = variant % 4, (variant // 4) % 2
            image, mask = np.rot90(image, turns), np.rot90(mask, turns)
            if flip:
                image, mask = image[:, ::-1], mask[:, ::-1]
            gain = rng.uniform(0.85, 1.15, size=3)
            image = np.clip(image * gain, 0, 255).astype(np.uint8)
        sample_id = f"pool_{index:05d}"
        Image.fromarray(np.ascontiguousarray(image)).save(
            root / "images" / f"{sample_id}.png", compress_level=1
        )
        Image.fromarray(np.ascontiguousarray(mask)).save(
            root / "masks" / f"{sample_id}.png", compress_level=1
        )
        ids.append(sample_id)
    (root / "splits" / "train.txt").write_text("".join(f"{i}\n" for i in ids))


def write_split(root: Path, name: str, count: int) -> Path:
    """A split file with the first ``count`` ids of ``train``."""
    ids = (root / "splits" / "train.txt").read_text().split()[:count]
    path = root / "splits" / f"{name}.txt"
    path.write_text("".join(f"{i}\n" for i in ids))
    return path


# ---------------------------------------------------------------------------- child jobs


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _reference_factory() -> Any:
    """An acquisition model that handles the pool like the reference code (defect 9)."""
    import torch

    from als4gan.active.acquisition import ClassifierAcquisition, PoolOutputs
    from als4gan.active.data import PoolImages

    class ReferenceClassifier(ClassifierAcquisition):
        """Every pool image loaded into one tensor up front; each round scored as one batch."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.pool_tensor: torch.Tensor | None = None
            self.pool_index: dict[str, int] = {}

        def score_pool(
            self,
            ids: Any,
            round_index: int,
            *,
            with_scores: bool,
            with_embeddings: bool,
            with_labels: bool = False,
            desc: str = "",
        ) -> PoolOutputs:
            start = time.perf_counter()
            if self.pool_tensor is None:
                every = list(self.dataset.ids)
                data = PoolImages(self.dataset, every, self.config.image_size)
                self.pool_tensor = torch.stack([data[k]["image"] for k in range(len(every))])
                self.pool_index = {sample_id: k for k, sample_id in enumerate(every)}
            assert self.network is not None
            batch = self.pool_tensor[[self.pool_index[i] for i in ids]].to(self.device)
            if self.channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            self.network.eval()
            with torch.no_grad():
                outputs = self.pool_outputs(self.network, batch, None)
            scores = self.strategy.score(outputs["probs"]) if with_scores else None
            embeddings = (
                outputs["embeddings"].numpy().astype(np.float16) if with_embeddings else None
            )
            return PoolOutputs(scores, embeddings, None, time.perf_counter() - start)

    return ReferenceClassifier


def child_select(job: dict[str, Any]) -> dict[str, Any]:
    """Run one whole selection; report wall time, peak RSS and selection quality."""
    from als4gan.active.config import SelectConfig
    from als4gan.active.loop import run_selection
    from als4gan.config import config_from_dict
    from als4gan.io import read_json

    config = config_from_dict(SelectConfig, job["config"], source="bench")
    factory = _reference_factory() if job.get("reference") else None
    start = time.perf_counter()
    result = run_selection(config, job["out"], force=True, acquisition_factory=factory)
    seconds = time.perf_counter() - start
    selection = read_json(Path(job["out"]) / "selection" / "selection.json")
    histogram = selection["labelled"]["histogram"]
    accuracies = [r["pool_accuracy"] for r in selection["rounds"] if "pool_accuracy" in r]
    return {
        "seconds": seconds,
        "max_rss_mb": _max_rss_mb(),
        "train_seconds": result.timing["train_seconds"],
        "score_seconds": result.timing["score_seconds"],
        "labelled": len(result.labelled),
        "classes_covered": sum(1 for v in (histogram["labels"] or {}).values() if v),
        "pixel_share": histogram["pixel_share"],
        "final_pool_accuracy": accuracies[-1] if accuracies else None,
        "mean_pool_accuracy": float(np.mean(accuracies)) if accuracies else None,
    }


#: Part 1 settings: name -> (bf16 autocast, channels_last, torch.compile).
SCORE_SETTINGS: dict[str, tuple[bool, bool, bool]] = {
    "fp32_channels_last": (False, True, False),
    "fp32_contiguous": (False, False, False),
    "bf16_channels_last": (True, True, False),
    "compiled_channels_last": (False, True, True),
    "compiled_contiguous": (False, False, True),
}


def child_score(job: dict[str, Any]) -> dict[str, Any]:
    """Pool-scoring throughput (images/s) of a randomly initialised classifier, per setting.

    Every setting gets its own classifier (compiled ones through ``torch.compile`` of the
    embedding network, compiled and warmed up before timing); the settings are timed in turn,
    ``repeats`` times, and the best throughput of each is kept (the machine may be shared).
    """
    import torch

    from als4gan.active.acquisition import ClassifierAcquisition
    from als4gan.active.config import SelectConfig
    from als4gan.active.strategies import build_strategy
    from als4gan.config import config_from_dict
    from als4gan.data import build_dataset
    from als4gan.models.classifier import ImageClassifier
    from als4gan.runtime import resolve_amp

    if job.get("threads"):
        torch.set_num_threads(int(job["threads"]))
    base = config_from_dict(SelectConfig, job["config"], source="bench")
    dataset = build_dataset("synthetic", job["root"], "train")
    ids = dataset.ids[: job["images"]]
    device = torch.device("cpu")
    results: dict[str, Any] = {"auto_amp": resolve_amp("auto", device)}
    models: dict[str, ClassifierAcquisition] = {}
    for name in job["settings"]:
        amp, channels_last, compiled = SCORE_SETTINGS[name]
        model = ClassifierAcquisition(
            dataset,
            base,
            device,
            amp=amp,
            channels_last=channels_last,
            num_workers=job["num_workers"],
            strategy=build_strategy("entropy"),
        )
        model.reset()
        start = time.perf_counter()
        if compiled:
            network = model.network
            assert isinstance(network, ImageClassifier)
            network.embed = torch.compile(network.embed, dynamic=False)  # type: ignore[method-assign]
        for _ in range(2 if compiled else 1):  # warm-up (and compilation)
            model.score_pool(
                ids[: base.score_batch_size], 1, with_scores=True, with_embeddings=False
            )
        results[f"{name}_warmup_s"] = time.perf_counter() - start
        models[name] = model
    for _ in range(job.get("repeats", 1)):
        for name, model in models.items():
            cpu = _cpu_seconds()
            outputs = model.score_pool(ids, 1, with_scores=True, with_embeddings=False)
            cpu = _cpu_seconds() - cpu
            results[name] = max(results.get(name, 0.0), len(ids) / outputs.seconds)
            results[f"{name}_cpu"] = max(results.get(f"{name}_cpu", 0.0), len(ids) / cpu)
    return results


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (DataLoader workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


CHILDREN = {"select": child_select, "score": child_score}


def run_child(kind: str, job: dict[str, Any]) -> dict[str, Any]:
    """Run a job in a fresh Python process (so its peak RSS is its own)."""
    env = {**os.environ, "ALS4GAN_NO_PROGRESS": "1"}
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, json.dumps(job)],
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"benchmark child '{kind}' failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a sanity run")
    parser.add_argument("--model", default="resnet18", help="acquisition backbone (resnet18)")
    parser.add_argument(
        "--score-models",
        nargs="+",
        default=["mobilenet_v2", "resnet18"],
        help="part 1 backbones (mobilenet_v2 resnet18)",
    )
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="part 1: also time torch.compile'd scoring (default; compiling takes minutes)",
    )
    parser.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="part 1: also time bf16 autocast (default)",
    )
    parser.add_argument("--score-repeats", type=int, default=2, help="part 1 timings, best (2)")
    parser.add_argument("--threads", type=int, default=None, help="part 1 torch threads")
    parser.add_argument("--score-images", type=int, default=256, help="images scored (256)")
    parser.add_argument("--score-size", type=int, default=128, help="scoring input px (128)")
    parser.add_argument("--score-batch", type=int, default=32, help="scoring batch (32)")
    parser.add_argument(
        "--pool-sizes", type=int, nargs=2, default=[1000, 8000], help="RSS pools (1000 8000)"
    )
    parser.add_argument("--rss-image-size", type=int, default=64, help="RSS network input (64)")
    parser.add_argument("--select-pool", type=int, default=300, help="whole-selection pool (300)")
    parser.add_argument("--select-size", type=int, default=64, help="whole-selection px (64)")
    parser.add_argument("--ratio", type=float, default=0.1, help="labelled ratio (0.1)")
    parser.add_argument("--alpha", type=float, default=0.1, help="alpha (0.1, paper)")
    parser.add_argument("--beta", type=float, default=0.5, help="beta (0.5, paper)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per round (10)")
    parser.add_argument("--strategy", default="entropy", help="strategy (entropy)")
    parser.add_argument("--num-workers", type=int, default=None, help="DataLoader workers")
    parser.add_argument("--compare-refit", action="store_true", help="also run part 4 (refit)")
    parser.add_argument(
        "--parts",
        type=int,
        nargs="+",
        default=[1, 2, 3],
        help="parts to run: 1 scoring, 2 RSS, 3 whole selection, 4 refit modes (1 2 3)",
    )
    parser.add_argument("--seeds", type=int, default=3, help="seeds for --compare-refit (3)")
    parser.add_argument("--first-seed", type=int, default=0, help="first seed of part 4 (0)")
    parser.add_argument(
        "--refit-modes",
        nargs="+",
        default=["full", "reinit", "incremental"],
        help="part 4 modes; MODE:E sets --refit-epochs E (full reinit incremental)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.compare_refit and 4 not in args.parts:
        args.parts.append(4)
    if args.quick:
        args.score_images, args.score_size = 64, 64
        args.score_models, args.score_repeats = ["mobilenet_v2"], 1
        args.compile = args.bf16 = False
        args.pool_sizes = [200, 1600]
        args.select_pool, args.epochs = 120, 3
    return args


def main() -> None:
    args = parse_args()
    if args.child:
        kind, job = args.child
        print(json.dumps(CHILDREN[kind](json.loads(job))))
        return
    from als4gan.runtime import default_num_workers

    workers = args.num_workers if args.num_workers is not None else default_num_workers()
    tmp = Path(tempfile.mkdtemp(prefix="select_bench_"))
    try:
        results = _run(args, tmp, workers)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print("RESULT " + " ".join(f"{key}={value}" for key, value in results.items()))


def _run(args: argparse.Namespace, tmp: Path, workers: int) -> dict[str, Any]:
    import torch

    print(
        f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, threads "
        f"{args.threads or torch.get_num_threads()}, DataLoader workers {workers}"
    )
    results: dict[str, Any] = {}
    common = {"model": args.model, "num_workers": workers, "pretrained": "none"}

    if 1 in args.parts:
        results.update(_part_scoring(args, tmp, common))
    if 2 in args.parts:
        results.update(_part_rss(args, tmp, common))
    schedule = _schedule(args, tmp, common) if {3, 4} & set(args.parts) else {}
    if 3 in args.parts:
        results.update(_part_whole_selection(args, tmp, schedule))
    if 4 in args.parts:
        results.update(_compare_refit(args, tmp, schedule))
    return results


def _part_scoring(args: argparse.Namespace, tmp: Path, common: dict[str, Any]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    start = time.perf_counter()
    score_root = tmp / "score"
    write_pool(score_root, args.score_images, args.score_size, unique=args.score_images)
    print(f"[1] wrote {args.score_images} scenes of {args.score_size}px "
          f"({time.perf_counter() - start:.1f}s)")  # fmt: skip
    settings = ["fp32_channels_last", "fp32_contiguous"]
    settings += ["compiled_channels_last", "compiled_contiguous"] if args.compile else []
    settings += ["bf16_channels_last"] if args.bf16 else []
    for model in args.score_models:
        score = run_child(
            "score",
            {
                "root": str(score_root),
                "images": args.score_images,
                "num_workers": common["num_workers"],
                "settings": settings,
                "repeats": args.score_repeats,
                "threads": args.threads,
                "config": {
                    **common,
                    "model": model,
                    "root": str(score_root),
                    "image_size": args.score_size,
                    "score_batch_size": args.score_batch,
                },
            },
        )
        results.update(_report_scoring(args, model, settings, score))
    return results


def _report_scoring(
    args: argparse.Namespace, model: str, settings: list[str], score: dict[str, Any]
) -> dict[str, Any]:
    """Print one model's images/s per setting and the ratios; its RESULT keys."""
    results: dict[str, Any] = {}
    where = f"{model} at {args.score_size}px, batch {args.score_batch}"
    for name in settings:
        extra = (
            f" (warm-up incl. compile {score[name + '_warmup_s']:.0f}s)"
            if "compiled" in name
            else ""
        )
        print(
            f"[1] pool scoring, {where}: {name} {score[name]:.1f} img/s wall, "
            f"{score[name + '_cpu']:.1f} img per CPU s{extra}"
        )
        results[f"score_{model}_{name}"] = round(score[name], 1)
        results[f"score_{model}_{name}_cpu"] = round(score[name + "_cpu"], 1)
    ratios = {"contiguous_vs_channels_last": ("fp32_contiguous", "fp32_channels_last")}
    if args.compile:
        ratios["compiled_vs_eager_channels_last"] = ("compiled_channels_last", "fp32_channels_last")
        ratios["compiled_vs_eager_contiguous"] = ("compiled_contiguous", "fp32_contiguous")
    for key, (top, bottom) in ratios.items():
        ratio = score[top] / score[bottom]
        cpu_ratio = score[top + "_cpu"] / score[bottom + "_cpu"]
        print(
            f"[1] {model}: {key.replace('_', ' ')} = {ratio:.3f}x images/s, {cpu_ratio:.3f}x "
            "images per CPU second (the figure a loaded machine does not distort)"
        )
        results[f"score_{model}_{key}"] = round(ratio, 3)
        results[f"score_{model}_{key}_cpu"] = round(cpu_ratio, 3)
    fastest = max(settings, key=lambda name: score[name] if "bf16" not in name else 0.0)
    leanest = max(settings, key=lambda name: score[name + "_cpu"] if "bf16" not in name else 0.0)
    print(f"[1] {model}: fastest fp32 setting here: {fastest} (wall), {leanest} (CPU)")
    if "bf16_channels_last" in settings:
        print(f"[1] (--amp auto uses bf16 here: {score['auto_amp']})")
    if model == args.model:
        results["score_img_s"] = round(score["fp32_channels_last"], 1)
        results["score_img_s_contiguous"] = round(score["fp32_contiguous"], 1)
        if "bf16_channels_last" in settings:
            results["score_img_s_bf16"] = round(score["bf16_channels_last"], 1)
    return results


def _part_rss(args: argparse.Namespace, tmp: Path, common: dict[str, Any]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    small, large = args.pool_sizes
    start = time.perf_counter()
    rss_root = tmp / "rss"
    write_pool(rss_root, large, 32)
    print(f"[2] wrote {large} scenes of 32px ({time.perf_counter() - start:.1f}s)")
    rss: dict[int, float] = {}
    for size in (small, large):
        split = write_split(rss_root, f"pool{size}", size)
        job = {
            "out": str(tmp / f"rss_run{size}"),
            "config": {
                **common,
                "root": str(rss_root),
                "split": str(split),
                "budget": 20,
                "alpha": 0.5,
                "beta": 1.0,
                "strategy": "hybrid",
                "epochs": 1,
                "image_size": args.rss_image_size,
                "num_workers": 0,
            },
        }
        outcome = run_child("select", job)
        rss[size] = outcome["max_rss_mb"]
        print(
            f"[2] pool of {size}: peak RSS {rss[size]:.0f} MB (hybrid: scores + float16 "
            f"embeddings; {args.model} at {args.rss_image_size}px, one query round, "
            f"num_workers 0 so all reading happens in the measured process), "
            f"{outcome['seconds']:.1f}s"
        )
    ratio = rss[large] / rss[small]
    print(f"[2] RSS ratio {large}/{small} = {ratio:.3f} (target < 1.15)")
    results[f"rss_mb_{small}"] = round(rss[small])
    results[f"rss_mb_{large}"] = round(rss[large])
    results["rss_ratio"] = round(ratio, 3)
    return results


def _schedule(args: argparse.Namespace, tmp: Path, common: dict[str, Any]) -> dict[str, Any]:
    start = time.perf_counter()
    select_root = tmp / "select"
    write_pool(select_root, args.select_pool, args.select_size, unique=args.select_pool)
    print(f"[3] wrote {args.select_pool} scenes of {args.select_size}px "
          f"({time.perf_counter() - start:.1f}s)")  # fmt: skip
    schedule = {
        **common,
        "root": str(select_root),
        "labeled_ratio": args.ratio,
        "alpha": args.alpha,
        "beta": args.beta,
        "strategy": args.strategy,
        "epochs": args.epochs,
        "image_size": args.select_size,
    }
    return schedule


def _part_whole_selection(
    args: argparse.Namespace, tmp: Path, schedule: dict[str, Any]
) -> dict[str, Any]:
    from als4gan.active.budget import plan_budget

    results: dict[str, Any] = {}
    plan = plan_budget(args.select_pool, labeled_ratio=args.ratio, alpha=args.alpha, beta=args.beta)
    print(
        f"[3] schedule: {plan.describe()}; {args.strategy}, {args.model} at "
        f"{args.select_size}px, {args.epochs} epochs (paper: 50 at 320px, ResNet-50)"
    )
    ours = run_child("select", {"out": str(tmp / "ours"), "config": schedule})
    reference = run_child(
        "select",
        {"out": str(tmp / "ref"), "reference": True, "config": {**schedule, "refit": "full"}},
    )
    incremental = run_child(
        "select", {"out": str(tmp / "incr"), "config": {**schedule, "refit": "incremental"}}
    )
    from als4gan.active.config import SelectConfig

    default_refit = SelectConfig().refit
    for name, outcome in ((f"ours (streamed, refit {default_refit}, the default)", ours),
                          ("ours with --refit incremental", incremental),
                          ("reference (pool in memory, full refit)", reference)):  # fmt: skip
        print(
            f"[3] {name}: {outcome['seconds']:.1f}s (fit {outcome['train_seconds']:.1f}s, "
            f"score {outcome['score_seconds']:.1f}s), peak RSS {outcome['max_rss_mb']:.0f} MB"
        )
    speedup = reference["seconds"] / ours["seconds"]
    speedup_incremental = reference["seconds"] / incremental["seconds"]
    print(
        f"[3] speed-up over the reference: {speedup:.2f}x (default), "
        f"{speedup_incremental:.2f}x (--refit incremental)"
    )
    results["select_s"] = round(ours["seconds"], 1)
    results["select_reference_s"] = round(reference["seconds"], 1)
    results["select_speedup"] = round(speedup, 2)
    results["select_incremental_s"] = round(incremental["seconds"], 1)
    results["select_incremental_speedup"] = round(speedup_incremental, 2)
    results["select_rss_mb"] = round(ours["max_rss_mb"])
    results["select_reference_rss_mb"] = round(reference["max_rss_mb"])
    return results


def _compare_refit(args: argparse.Namespace, tmp: Path, schedule: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    for mode in args.refit_modes:
        refit, _, epochs = mode.partition(":")
        options: dict[str, Any] = {"refit": refit, "eval_pool": True}
        if epochs:
            options["refit_epochs"] = int(epochs)
        runs = [
            run_child(
                "select",
                {
                    "out": str(tmp / f"refit_{refit}{epochs}_{seed}"),
                    "config": {**schedule, **options, "seed": seed},
                },
            )
            for seed in seeds
        ]
        seconds = float(np.mean([r["seconds"] for r in runs]))
        accuracy = [r["final_pool_accuracy"] for r in runs]
        mean_accuracy = float(np.mean([r["mean_pool_accuracy"] for r in runs]))
        covered = float(np.mean([r["classes_covered"] for r in runs]))
        water = [r["pixel_share"]["water"] for r in runs]
        print(
            f"[4] refit {mode:14s}: {seconds:6.1f}s, pool accuracy last round "
            f"{np.mean(accuracy):.3f} (per seed {' '.join(f'{a:.3f}' for a in accuracy)}; mean "
            f"over rounds {mean_accuracy:.3f}), classes covered {covered:.2f}/6, water pixel "
            f"share {np.mean(water):.3f} (per seed {' '.join(f'{w:.3f}' for w in water)}); "
            f"seeds {seeds.start}-{seeds.stop - 1}"
        )
        key = mode.replace(":", "")
        summary[f"refit_{key}_s"] = round(seconds, 1)
        summary[f"refit_{key}_acc"] = round(float(np.mean(accuracy)), 3)
        summary[f"refit_{key}_water"] = round(float(np.mean(water)), 4)
    return summary


if __name__ == "__main__":
    main()
