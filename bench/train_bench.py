"""Training benchmark: images/s of s4GAN and supervised, the data-loading share, eager vs compile.

Sections (``--sections``, comma-separated; default ``throughput``, plus ``gpu`` on CUDA):

* ``throughput``: one training iteration exactly as ``als4gan train`` runs it, for s4GAN and
  the supervised baseline, at the demo configuration (DeepLab-v2 MobileNetV2, output stride 16,
  112 px, batch 4), the mini-grid configuration (MobileNetV2, output stride 16, 256 px, batch
  4) and the paper's (ResNet-101, output stride 8, 320 px, batch 10). Prints labelled images/s
  and the data-loading share of a step (time spent waiting for the next batches / step time).
  On CPU the paper configuration takes many minutes per iteration, so it runs only with
  ``--paper``, timing ``--paper-iterations`` iteration(s) (default 1, the first one, without
  warm-up); on CUDA it always runs.
* ``compile``: forward + backward of DeepLab-v2 (cross-entropy, batch 4) in eager mode and
  compiled with ``torch.compile``: steps/s of each, the speed-up and the compilation warm-up
  (first compiled call). ``--compile-configs demo`` (default: MobileNetV2 at 112 px) or ``all``
  (MobileNetV2 and ResNet-18 at 112 and 256 px, with the demo's and the mini grid's model
  options). The warm-up is cold: the compiler's cache is a fresh folder. Minutes per
  configuration on a CPU, hence not a default section.
* ``overhead``: the full s4GAN step against its forward/backward passes alone (DeepLab-v2
  ResNet-18, 320 px, batch 2), and the passes in fp32, fp32 channels_last and bf16.
* ``gpu`` (CUDA only): the paper configuration in fp32 and bf16 autocast: images/s, peak GPU
  memory (``torch.cuda.max_memory_allocated``) and the time 20,000 iterations would take.

Timed steps of the compared variants take turns inside every repetition, so their ratios stay
meaningful on a loaded machine; compare ratios, not absolute numbers, across machines.

Usage::

    python bench/train_bench.py --threads 1                  # demo and mini grid, 1-5 minutes
    python bench/train_bench.py --threads 1 --paper          # + the paper config (~20 min)
    python bench/train_bench.py --threads 1 --sections compile --compile-configs all  # ~25 min
    python bench/train_bench.py --device cuda --sections gpu # on a GPU machine

The last line is ``RESULT key=value ...``.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

os.environ.setdefault("ALS4GAN_NO_PROGRESS", "1")

import torch

from als4gan.data.synthetic import SyntheticConfig, write_synthetic
from als4gan.distributed import DistributedContext
from als4gan.models import build_segmentation_model
from als4gan.runtime import autocast, maybe_compile, resolve_device, set_threads
from als4gan.train.config import TrainConfig
from als4gan.train.losses import (
    cross_entropy,
    discriminator_loss,
    feature_matching_loss,
    onehot_with_ignore,
    select_confident,
    self_training_loss,
)
from als4gan.train.trainer import Trainer, backward

#: The CPU configurations' model options: the demo's (``als4gan demo``) and the mini grid's
#: (configs/deepglobe_pretrained.yaml); the paper's are the defaults.
DEMO_OPTIONS: dict[str, Any] = {"output_stride": 16, "aspp_rates": [2, 4, 6]}
MINI_OPTIONS: dict[str, Any] = {"output_stride": 16, "aspp_rates": [3, 6, 9, 12]}
#: name -> (backbone, crop, batch, model options) of the configurations timed.
Setting = tuple[str, int, int, dict[str, Any]]
CONFIGS: dict[str, Setting] = {
    "demo": ("mobilenet_v2", 112, 4, DEMO_OPTIONS),
    "mini": ("mobilenet_v2", 256, 4, MINI_OPTIONS),
    "paper": ("resnet101", 320, 10, {}),
}
#: ``--compile-configs`` -> name -> setting.
COMPILE_CONFIGS: dict[str, dict[str, Setting]] = {
    "demo": {"mobilenet_v2@112": ("mobilenet_v2", 112, 4, DEMO_OPTIONS)},
    "all": {
        "mobilenet_v2@112": ("mobilenet_v2", 112, 4, DEMO_OPTIONS),
        "resnet18@112": ("resnet18", 112, 4, DEMO_OPTIONS),
        "mobilenet_v2@256": ("mobilenet_v2", 256, 4, MINI_OPTIONS),
        "resnet18@256": ("resnet18", 256, 4, MINI_OPTIONS),
    },
}
OVERHEAD_CROP = 320
GPU_ITERATIONS = 20_000


def make_trainer(
    root: Path,
    backbone: str,
    batch_size: int,
    device: torch.device,
    **options: Any,
) -> Trainer:
    """A Trainer as ``als4gan train`` builds it (random init, no validation, no checkpoints)."""
    config = TrainConfig(
        dataset="synthetic",
        root=str(root),
        labeled_ratio=0.25,
        backbone=backbone,
        batch_size=batch_size,
        iterations=100_000,
        val_every=0,
        checkpoint_every=0,
        tensorboard="off",
        device=str(device),
        **options,
    )
    run_dir = Path(tempfile.mkdtemp(prefix="run_", dir=root))  # removed with the data
    return Trainer(config, run_dir, DistributedContext(0, 0, 1, device), show_progress=False)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _call(step: Callable[[], object], device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    step()
    _sync(device)
    return time.perf_counter() - start


def timed_together(
    steps: Mapping[str, Callable[[], object]], warmup: int, repeats: int, device: torch.device
) -> dict[str, float]:
    """Median seconds per call of each step, the steps taking turns in every repetition."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            times[name].append(_call(step, device))
    return {name: statistics.median(values) for name, values in times.items()}


# ---------------------------------------------------------------------------- throughput
class DataWait:
    """Adds up the time a trainer's data streams spend producing the next batches."""

    def __init__(self, trainer: Trainer) -> None:
        self.seconds = 0.0
        for stream in trainer.streams.values():
            stream.next = self._timed(stream.next)  # type: ignore[method-assign]

    def _timed(self, next_batch: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
        def timed() -> dict[str, Any]:
            start = time.perf_counter()
            batch = next_batch()
            self.seconds += time.perf_counter() - start
            return batch

        return timed


def bench_throughput(
    root: Path, device: torch.device, repeats: int, paper_iterations: int | None, workers: int
) -> dict[str, float]:
    """Images/s and data-loading share of s4GAN and supervised at the three configurations.

    ``paper_iterations`` None skips the paper configuration on CPU.
    """
    results: dict[str, float] = {}
    for name, (backbone, crop, batch, options) in CONFIGS.items():
        cpu_paper = name == "paper" and device.type != "cuda"
        if cpu_paper and paper_iterations is None:
            print("paper configuration on CPU: skipped (--paper times it)", flush=True)
            continue
        warmup, count = (0, paper_iterations or 1) if cpu_paper else (1, repeats)
        trainers = {
            method: make_trainer(
                root,
                backbone,
                batch,
                device,
                method=method,
                crop_size=crop,
                num_workers=workers,
                **options,
            )
            for method in ("s4gan", "supervised")
        }
        waits = {method: DataWait(trainer) for method, trainer in trainers.items()}
        for trainer in trainers.values():
            for _ in range(warmup):
                trainer.train_iteration()
        times: dict[str, list[float]] = {method: [] for method in trainers}
        shares: dict[str, list[float]] = {method: [] for method in trainers}
        for _ in range(count):
            for method, trainer in trainers.items():
                waits[method].seconds = 0.0
                seconds = _call(trainer.train_iteration, device)
                times[method].append(seconds)
                shares[method].append(waits[method].seconds / seconds)
        note = "first iteration, no warm-up" if warmup == 0 else f"median of {count}"
        for method in trainers:
            seconds = statistics.median(times[method])
            share = statistics.median(shares[method])
            results[f"{name}_{method}_images_per_s"] = batch / seconds
            results[f"{name}_{method}_data_share"] = share
            print(
                f"{name:>5} {backbone} {crop}px batch {batch} | {method:<10} "
                f"{seconds:8.2f} s/it {batch / seconds:7.2f} labelled images/s | data loading "
                f"{100 * share:4.1f}% of the step ({note})",
                flush=True,
            )
        del trainers, waits
    return results


# ---------------------------------------------------------------------------- compile
def bench_compile(device: torch.device, repeats: int, which: str) -> dict[str, float]:
    """Eager vs ``torch.compile`` forward + backward steps/s, and the compile warm-up."""
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="inductor_cache_") as cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache  # a cold compile, as on a first run
        for name, (backbone, crop, batch, options) in COMPILE_CONFIGS[which].items():
            steps, warm = _compile_pair(backbone, crop, batch, options, device)
            measured = timed_together(steps, 1, repeats, device)
            speedup = measured["eager"] / measured["compiled"]
            key = name.replace("@", "_")
            results[f"compile_{key}_speedup"] = speedup
            results[f"compile_{key}_warmup_s"] = warm
            print(
                f"compile {name:<17} batch {batch} | eager {1 / measured['eager']:6.3f} steps/s "
                f"| compiled {1 / measured['compiled']:6.3f} steps/s | speed-up {speedup:.3f}x "
                f"| compile warm-up {warm:6.1f} s",
                flush=True,
            )
    return results


def _compile_pair(
    backbone: str, crop: int, batch: int, model: dict[str, Any], device: torch.device
) -> tuple[dict[str, Callable[[], None]], float]:
    """Eager and compiled fwd+bwd steps on the same inputs, and the first compiled call's time."""
    torch.manual_seed(0)
    options: dict[str, Any] = TrainConfig(backbone=backbone, **model).model_options()
    eager = build_segmentation_model(arch="deeplabv2", backbone=backbone, num_classes=6, **options)
    eager.to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]
    compiled = maybe_compile(copy.deepcopy(eager), True)
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(batch, 3, crop, crop, generator=generator).to(device)
    image = image.contiguous(memory_format=torch.channels_last)
    mask = torch.randint(0, 6, (batch, crop, crop), generator=generator).to(device)

    def step_of(network: torch.nn.Module) -> Callable[[], None]:
        def step() -> None:
            network.zero_grad(set_to_none=True)
            backward(cross_entropy(network(image), mask))

        return step

    steps = {"eager": step_of(eager), "compiled": step_of(compiled)}
    warm = _call(steps["compiled"], device)
    return steps, warm


# ---------------------------------------------------------------------------- overhead
def passes_only(trainer: Trainer) -> Callable[[], None]:
    """The s4GAN step's forward and backward passes on fixed in-memory inputs.

    The same computation as ``S4GAN.micro_step`` (train/methods/s4gan.py) without data loading,
    optimiser steps, schedules or statistics.
    """
    generator, discriminator = trainer.generator, trainer.discriminator
    assert discriminator is not None
    batch, classes, device = trainer.config.batch_size, trainer.num_classes, trainer.device
    crop = trainer.config.crop_size
    seed = torch.Generator().manual_seed(0)
    x_l, x_u, x_g = (torch.rand(batch, 3, crop, crop, generator=seed).to(device) for _ in range(3))
    y_l, y_g = (
        torch.randint(0, classes, (batch, crop, crop), generator=seed).to(device) for _ in range(2)
    )
    if trainer.channels_last:
        x_l, x_u, x_g = (x.contiguous(memory_format=torch.channels_last) for x in (x_l, x_u, x_g))
    real_g = onehot_with_ignore(y_g, classes)
    config = trainer.config

    def step() -> None:
        trainer.set_train_mode()
        generator.zero_grad(set_to_none=True)
        discriminator.zero_grad(set_to_none=True)
        discriminator.requires_grad_(False)
        with autocast(device, trainer.amp):
            logits_l, logits_u = trainer.g_train(x_l, x_u)
            loss_ce = cross_entropy(logits_l, y_l)
            p_u = torch.softmax(logits_u.float(), dim=1)
            fake = discriminator(p_u, x_u)
            with torch.no_grad():
                real = discriminator(real_g, x_g)
            loss_fm = feature_matching_loss(real["features"], fake["features"])
            selected = select_confident(fake["prob"], config.threshold_st)
            loss_st = self_training_loss(logits_u, selected)
            loss_g = loss_ce + config.lambda_fm * loss_fm + config.lambda_st * loss_st
        backward(loss_g)
        discriminator.requires_grad_(True)
        with autocast(device, trainer.amp):
            judged = discriminator(torch.cat([p_u.detach(), real_g]), torch.cat([x_u, x_g]))
            loss_d = discriminator_loss(judged["logit"][:batch], judged["logit"][batch:])
        backward(loss_d)

    return step


def bench_overhead(root: Path, device: torch.device, repeats: int) -> dict[str, float]:
    """ResNet-18 at 320 px, batch 2: full step vs passes alone, and the precision modes."""
    options = {"crop_size": OVERHEAD_CROP}
    trainer = make_trainer(root, "resnet18", 2, device, **options)
    results = timed_together(
        {"full": trainer.train_iteration, "passes": passes_only(trainer)}, 1, repeats, device
    )
    results["overhead"] = results["full"] / results["passes"]
    print(
        f"resnet18 {OVERHEAD_CROP}px batch 2 | full s4GAN step {results['full']:7.2f} s/it | "
        f"passes alone {results['passes']:7.2f} s | overhead ratio {results['overhead']:.3f}",
        flush=True,
    )
    settings = {"fp32": ("off", "off"), "fp32_cl": ("off", "on"), "bf16_cl": ("bf16", "on")}
    steps = {
        name: passes_only(
            make_trainer(root, "resnet18", 2, device, amp=amp, channels_last=cl, **options)
        )
        for name, (amp, cl) in settings.items()
    }
    results.update(timed_together(steps, 1, repeats, device))
    results["channels_last_speedup"] = results["fp32"] / results["fp32_cl"]
    results["bf16_speedup"] = results["fp32"] / results["bf16_cl"]
    print(
        f"passes: fp32 {results['fp32']:.2f} s, fp32 channels_last {results['fp32_cl']:.2f} s, "
        f"bf16 channels_last {results['bf16_cl']:.2f} s; speed-up over fp32: channels_last "
        f"{results['channels_last_speedup']:.2f}x, bf16 {results['bf16_speedup']:.2f}x",
        flush=True,
    )
    return {f"overhead_{key}": value for key, value in results.items()}


# ---------------------------------------------------------------------------- gpu
def bench_gpu(root: Path, device: torch.device, repeats: int) -> dict[str, float]:
    """The paper configuration on CUDA in fp32 and bf16: images/s, peak memory, 20k estimate."""
    backbone, crop, batch, _ = CONFIGS["paper"]
    results: dict[str, float] = {}
    for precision, amp in (("fp32", "off"), ("bf16", "bf16")):
        for method in ("s4gan", "supervised"):
            trainer = make_trainer(
                root, backbone, batch, device, method=method, crop_size=crop, amp=amp
            )
            torch.cuda.reset_peak_memory_stats(device)
            seconds = timed_together({"step": trainer.train_iteration}, 3, repeats, device)["step"]
            key = f"gpu_{method}_{precision}"
            results[f"{key}_images_per_s"] = batch / seconds
            results[f"{key}_peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
            results[f"{key}_20k_hours"] = seconds * GPU_ITERATIONS / 3600
            print(
                f"paper configuration on {torch.cuda.get_device_name(device)}, {method}, "
                f"{precision}: {seconds:.3f} s/it, {batch / seconds:.1f} labelled images/s, "
                f"peak GPU memory {results[f'{key}_peak_gib']:.1f} GiB, "
                f"{GPU_ITERATIONS} iterations in about {results[f'{key}_20k_hours']:.1f} h",
                flush=True,
            )
            del trainer
            torch.cuda.empty_cache()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default=None, help="throughput,compile,overhead,gpu")
    parser.add_argument("--compile-configs", choices=sorted(COMPILE_CONFIGS), default="demo")
    parser.add_argument("--repeats", type=int, default=3, help="timed iterations per figure")
    parser.add_argument(
        "--paper", action="store_true", help="on CPU, also time the paper configuration (slow)"
    )
    parser.add_argument(
        "--paper-iterations", type=int, default=1, help="timed paper-config iterations on CPU"
    )
    parser.add_argument("--num-workers", type=int, default=0, help="data loader workers")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    if args.threads is not None:
        set_threads(args.threads)
    default = "throughput" + (",gpu" if device.type == "cuda" else "")
    sections = (args.sections or default).split(",")
    print(
        f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; sections "
        f"{','.join(sections)}; {args.num_workers} data loader workers",
        flush=True,
    )
    fields: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="train_bench_data_") as tmp:
        root = Path(tmp)
        write_synthetic(
            root, SyntheticConfig(num_images=24, image_size=352, seed=0), show_progress=False
        )
        if "throughput" in sections:
            fields.update(
                bench_throughput(
                    root,
                    device,
                    args.repeats,
                    args.paper_iterations if args.paper else None,
                    args.num_workers,
                )
            )
        if "compile" in sections:
            fields.update(bench_compile(device, args.repeats, args.compile_configs))
        if "overhead" in sections:
            fields.update(bench_overhead(root, device, args.repeats))
        if "gpu" in sections:
            if device.type == "cuda":
                fields.update(bench_gpu(root, device, max(args.repeats, 10)))
            else:
                print("gpu: skipped, no CUDA device", flush=True)
    text = " ".join(f"{key}={value:.3f}" for key, value in fields.items())
    print(f"RESULT {text} load_average_end={os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
