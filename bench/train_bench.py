"""Training-step benchmark: the full s4GAN iteration against its forward/backward passes alone.

For DeepLab-v2 with ResNet-18 and ResNet-101 at 320x320, batch 2 (per stream), it prints:

* s/iteration of the full s4GAN step as ``als4gan train`` runs it (data loading, the losses,
  both optimiser steps, schedules, statistics), in the default precision and memory format;
* the same step's forward/backward passes alone (same networks, same inputs kept in memory, no
  data loading, optimiser or bookkeeping) and the overhead ratio full / passes (target <= 1.10);
* the passes in fp32 (contiguous), fp32 channels_last and bf16 autocast + channels_last, and
  the speed-ups over fp32 (bf16 is only fast on CPUs with AVX512-BF16/AMX, see runtime.py),
  for ResNet-18 (and ResNet-101 with ``--full``);
* with CUDA, the paper configuration (ResNet-101, batch 10, 320x320): images/s in fp32 and
  bf16 and the peak GPU memory; otherwise a line saying it was skipped.

Usage::

    python bench/train_bench.py            # about 10 minutes on 2 CPU cores
    python bench/train_bench.py --quick    # one timed iteration per figure (about 5 minutes)
    python bench/train_bench.py --full     # also ResNet-101 in every precision mode (slow)

The last line is ``RESULT key=value ...``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

os.environ.setdefault("ALS4GAN_NO_PROGRESS", "1")

import torch

from als4gan.data.synthetic import SyntheticConfig, write_synthetic
from als4gan.runtime import autocast, resolve_device
from als4gan.train.config import TrainConfig
from als4gan.train.distributed import DistributedContext
from als4gan.train.losses import (
    cross_entropy,
    discriminator_loss,
    feature_matching_loss,
    onehot_with_ignore,
    select_confident,
    self_training_loss,
)
from als4gan.train.trainer import Trainer, backward

CROP = 320


def make_trainer(
    root: Path,
    backbone: str,
    batch_size: int,
    device: torch.device,
    amp: str,
    channels_last: str,
) -> Trainer:
    """A Trainer as ``als4gan train`` builds it (random init, no validation, no checkpoints)."""
    config = TrainConfig(
        dataset="synthetic",
        root=str(root),
        labeled_ratio=0.25,
        backbone=backbone,
        crop_size=CROP,
        batch_size=batch_size,
        iterations=100_000,
        val_every=0,
        checkpoint_every=0,
        tensorboard="off",
        amp=amp,
        channels_last=channels_last,
        device=str(device),
    )
    run_dir = Path(tempfile.mkdtemp(prefix="run_", dir=root))  # removed with the data
    return Trainer(config, run_dir, DistributedContext(0, 0, 1, device), show_progress=False)


def passes_only(trainer: Trainer) -> Callable[[], None]:
    """The s4GAN step's forward and backward passes on fixed in-memory inputs.

    The same computation as ``S4GAN.micro_step`` (train/methods/s4gan.py) without data loading,
    optimiser steps, schedules or statistics.
    """
    generator, discriminator = trainer.generator, trainer.discriminator
    assert discriminator is not None
    batch, classes, device = trainer.config.batch_size, trainer.num_classes, trainer.device
    seed = torch.Generator().manual_seed(0)
    x_l, x_u, x_g = (torch.rand(batch, 3, CROP, CROP, generator=seed).to(device) for _ in range(3))
    y_l, y_g = (
        torch.randint(0, classes, (batch, CROP, CROP), generator=seed).to(device) for _ in range(2)
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
            # the trainer's own generator call (separate labelled / unlabelled passes)
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
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return step


def _call(step: Callable[[], object], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def timed(step: Callable[[], object], warmup: int, repeats: int, device: torch.device) -> float:
    """Median seconds per call after ``warmup`` calls."""
    return timed_together({"step": step}, warmup, repeats, device)["step"]


def timed_together(
    steps: Mapping[str, Callable[[], object]], warmup: int, repeats: int, device: torch.device
) -> dict[str, float]:
    """Median seconds per call of each step, the steps taking turns.

    Alternating the steps inside every repetition exposes them to the same background load, so
    their ratios stay meaningful on a shared machine.
    """
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            times[name].append(_call(step, device))
    return {name: statistics.median(values) for name, values in times.items()}


def full_step(trainer: Trainer) -> Callable[[], object]:
    """One training iteration exactly as the training loop runs it."""
    return lambda: trainer.train_iteration()


def bench_backbone(
    root: Path, backbone: str, device: torch.device, repeats: int, warmup: int, modes: bool
) -> dict[str, float]:
    """Full step, passes alone and (optionally) the precision / memory-format modes."""
    results: dict[str, float] = {}
    trainer = make_trainer(root, backbone, 2, device, amp="auto", channels_last="auto")
    default_mode = ("bf16" if trainer.amp else "fp32") + (
        "+channels_last" if trainer.channels_last else ""
    )
    results.update(
        timed_together(
            {"full": full_step(trainer), "passes": passes_only(trainer)}, warmup, repeats, device
        )
    )
    results["overhead"] = results["full"] / results["passes"]
    print(
        f"{backbone:>9} | full s4GAN step {results['full']:7.2f} s/it | passes alone "
        f"{results['passes']:7.2f} s | overhead ratio {results['overhead']:.3f} ({default_mode})",
        flush=True,
    )
    if not modes:
        return results
    settings = {
        "fp32": ("off", "off"),
        "fp32+channels_last": ("off", "on"),
        "bf16+channels_last": ("bf16", "on"),
    }
    steps = {
        name: passes_only(make_trainer(root, backbone, 2, device, amp=amp, channels_last=layout))
        for name, (amp, layout) in settings.items()
    }
    results.update(timed_together(steps, warmup, repeats, device))
    for name in settings:
        print(f"{'':>9} | passes in {name:<19} {results[name]:7.2f} s", flush=True)
    results["channels_last_speedup"] = results["fp32"] / results["fp32+channels_last"]
    results["bf16_speedup"] = results["fp32"] / results["bf16+channels_last"]
    print(
        f"{'':>9} | speed-up over fp32: channels_last {results['channels_last_speedup']:.2f}x, "
        f"bf16+channels_last {results['bf16_speedup']:.2f}x",
        flush=True,
    )
    return results


def bench_paper_gpu(root: Path, device: torch.device, repeats: int) -> dict[str, float]:
    """ResNet-101, batch 10, 320x320 on CUDA: images/s in fp32 and bf16, peak memory."""
    results: dict[str, float] = {}
    for name, amp in (("fp32", "off"), ("bf16", "bf16")):
        torch.cuda.reset_peak_memory_stats(device)
        trainer = make_trainer(root, "resnet101", 10, device, amp=amp, channels_last="on")
        seconds = timed(full_step(trainer), 3, repeats, device)
        results[f"gpu_{name}_images_per_s"] = 10 / seconds
        results[f"gpu_{name}_peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        print(
            f"paper configuration on {torch.cuda.get_device_name(device)}: {name}: "
            f"{seconds:.3f} s/it, {10 / seconds:.1f} labelled images/s (plus 10 unlabelled "
            f"and 10 ground-truth per iteration), peak GPU memory "
            f"{results[f'gpu_{name}_peak_gib']:.1f} GiB",
            flush=True,
        )
        del trainer
        torch.cuda.empty_cache()
    results["gpu_bf16_speedup"] = (
        results["gpu_bf16_images_per_s"] / results["gpu_fp32_images_per_s"]
    )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one warm-up and one timed iteration")
    parser.add_argument(
        "--full", action="store_true", help="also time ResNet-101 in every precision mode (slow)"
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed iterations per figure")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 5)
    warmup = 1
    device = resolve_device(args.device)
    print(
        f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"DeepLab-v2, {CROP}x{CROP}, batch 2 per stream, median of {repeats} timed "
        f"iteration(s) after {warmup} warm-up",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="train_bench_data_") as tmp:
        root = Path(tmp)
        write_synthetic(
            root, SyntheticConfig(num_images=24, image_size=352, seed=0), show_progress=False
        )
        r18 = bench_backbone(root, "resnet18", device, repeats, warmup, modes=True)
        r101 = bench_backbone(root, "resnet101", device, repeats, warmup, modes=args.full)
        gpu: dict[str, float] = {}
        if device.type == "cuda":
            gpu = bench_paper_gpu(root, device, 5 if args.quick else 10)
        else:
            print("paper configuration (ResNet-101, batch 10, CUDA): skipped, no CUDA device")
    fields = {
        "overhead_ratio": max(r18["overhead"], r101["overhead"]),
        "overhead_ratio_r18": r18["overhead"],
        "overhead_ratio_r101": r101["overhead"],
        "s_per_it_r18": r18["full"],
        "s_per_it_r101": r101["full"],
        "bf16_speedup": r18["bf16_speedup"],
        "channels_last_speedup": r18["channels_last_speedup"],
    }
    if "bf16_speedup" in r101:
        fields["bf16_speedup_r101"] = r101["bf16_speedup"]
        fields["channels_last_speedup_r101"] = r101["channels_last_speedup"]
    fields.update(gpu)
    text = " ".join(f"{key}={value:.3f}" for key, value in fields.items())
    print(f"RESULT {text}{'' if gpu else ' gpu=skipped'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
