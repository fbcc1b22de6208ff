"""``als4gan demo``: a small but real version of the paper's experiment on generated data."""

from __future__ import annotations

import argparse
from typing import Any

HELP = "run a small end-to-end experiment on the generated default dataset"
DESCRIPTION = """\
Generate the built-in synthetic dataset (no data download; the 9 MB ImageNet MobileNetV2
weights are fetched once), then run the paper's experiment in miniature: random vs entropy vs
hybrid selection at a 5% labelled ratio, each trained with s4GAN and supervised-only, plus a
fully supervised reference, evaluated on the test split, summarised in a results table with
paired comparisons across seeds and an HTML report. About 6 minutes on 2 CPU
cores while another job keeps one busy (2 seeds, ImageNet MobileNetV2; it uses as many threads
as cores are idle when it starts); every number printed is what the run measured (checkpoints
are chosen on the validation split, never on test), and it ends with where its time went.

The experiment is written as RUN_DIR/demo.yaml, so 'als4gan run RUN_DIR/demo.yaml'
reproduces it, and running the demo again skips what already finished.
"""

#: Data, grid and stage options of the demo (sized for 2 CPU cores; see docs/results.md).
DEMO_DATA: dict[str, Any] = {"num_images": 400, "image_size": 128, "seed": 0}
DEMO_GRID: dict[str, Any] = {
    "strategies": ["random", "entropy", "hybrid"],
    "ratios": [0.05],
    "seeds": [0],
    "methods": ["s4gan", "supervised"],
}
DEMO_SELECT: dict[str, Any] = {
    "alpha": 0.5,
    "beta": 0.5,
    "model": "mobilenet_v2",
    "image_size": 128,
    "epochs": 5,
}
DEMO_TRAIN: dict[str, Any] = {
    "backbone": "mobilenet_v2",
    "output_stride": 16,
    "aspp_rates": [2, 4, 6],
    "crop_size": 112,
    "batch_size": 4,
    "iterations": 100,
    "lr": 0.0025,
    "val_every": 25,
    "val_window": 0,
    "checkpoint_every": 50,
}
DEMO_EVALUATE: dict[str, Any] = {"split": "test"}
#: Backbone whose ``--pretrained`` weights the demo uses (selection model and generator).
DEMO_BACKBONE = "mobilenet_v2"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``demo``."""
    parser.add_argument(
        "--out", default="runs/demo", help="run folder of the demo (default: runs/demo)"
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=2,
        help=(
            "seeds per cell (default: 2, the fewest that give paired comparisons an interval; "
            "each seed adds 7 runs, about 3 minutes on 2 CPU cores with one busy)"
        ),
    )
    parser.add_argument(
        "--pretrained",
        default="imagenet",
        metavar="NAME|PATH|none",
        help=(
            "backbone weights of the selection model and the generator (default: imagenet, "
            "fetched once into the weights cache; offline the demo falls back to random "
            "initialisation with a warning); 'none' = random initialisation"
        ),
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        default=list(DEMO_GRID["methods"]),
        metavar="METHOD",
        help=(
            "training methods of the grid (default: s4gan supervised; add unimatch for the "
            "weak-to-strong consistency method, about 3x the training time of s4gan per run)"
        ),
    )
    parser.add_argument(
        "--strategies",
        nargs="+",
        default=None,
        metavar="NAME",
        help=(
            "selection strategies compared (default: random entropy hybrid); e.g. "
            "'random entropy typiclust probcover' adds the low-budget strategies on the "
            "pretrained embeddings (each strategy adds two training runs per seed)"
        ),
    )
    parser.add_argument("--force", action="store_true", help="redo everything from scratch")
    parser.add_argument(
        "--keep-checkpoints",
        action="store_true",
        help="keep every run's checkpoints/latest.pt (resume state) after it is evaluated",
    )


def demo_experiment(
    out: str,
    seeds: int = 1,
    pretrained: str = "imagenet",
    methods: list[str] | None = None,
    strategies: list[str] | None = None,
) -> dict[str, Any]:
    """The demo as an experiment config mapping (what ``demo.yaml`` holds)."""
    grid = {**DEMO_GRID, "seeds": list(range(seeds))}
    if methods is not None:
        grid["methods"] = list(methods)
    if strategies:
        grid["strategies"] = list(strategies)
    return {
        "name": "demo",
        "out": out,
        "dataset": {
            "name": "synthetic",
            "root": f"{out}/data",
            "prepare": {"kind": "synthetic", **DEMO_DATA},
        },
        "grid": grid,
        "select": {**DEMO_SELECT, "pretrained": pretrained},
        "train": {**DEMO_TRAIN, "pretrained": pretrained},
        "evaluate": dict(DEMO_EVALUATE),
        "report": True,
    }


def usable_weights(pretrained: str) -> str:
    """``pretrained`` if its weights can be had (cached or fetched), else ``"none"`` (warned)."""
    from als4gan.errors import Als4ganError
    from als4gan.models.weights import resolve_weights

    try:
        resolve_weights(pretrained, DEMO_BACKBONE)
    except Als4ganError as err:
        print(
            f"warning: the demo uses pretrained {DEMO_BACKBONE} weights ('{pretrained}'), but "
            f"they could not be had, so it falls back to random initialisation (--pretrained "
            f"none); its numbers will then be lower than with ImageNet weights. To use them, "
            f"run 'als4gan weights fetch {DEMO_BACKBONE}-imagenet' on a machine with internet "
            f"(or place the file as described below) and run the demo again with --force. "
            f"Details: {err}",
            flush=True,
        )
        return "none"
    return pretrained


def run(args: argparse.Namespace) -> int:
    """Write demo.yaml, run it, print the results table and where the report is."""
    import time
    from pathlib import Path

    from als4gan.commands.run import folder_megabytes
    from als4gan.errors import ConfigError
    from als4gan.experiment import ExperimentRunner, expand_grid, parse_experiment
    from als4gan.io import write_yaml
    from als4gan.timing import StageTimer

    if args.seeds < 1:
        raise ConfigError("--seeds must be at least 1")
    out = Path(args.out).resolve()
    methods = list(getattr(args, "methods", None) or DEMO_GRID["methods"])
    config = demo_experiment(
        str(out), args.seeds, usable_weights(args.pretrained), methods, args.strategies
    )
    out.mkdir(parents=True, exist_ok=True)
    write_yaml(out / "demo.yaml", config)
    spec = parse_experiment(config, str(out / "demo.yaml"), out)
    cells = expand_grid(spec.grid)
    started = time.monotonic()
    print(
        f"ALS4GAN demo: {len(cells)} runs (strategies {', '.join(spec.grid.strategies)} x "
        f"methods {', '.join(methods)}; {DEMO_GRID['ratios'][0]:.0%} labelled; plus a fully "
        f"supervised reference per seed) -> {out}",
        flush=True,
    )

    def announce(index: int, total: int, cell: object) -> None:
        elapsed = time.monotonic() - started
        print(f"[{index + 1}/{total}] {getattr(cell, 'name', cell)}  ({elapsed:.0f} s)", flush=True)

    timer = StageTimer()  # where the time went, printed at the end
    runner = ExperimentRunner(
        spec, stages=timer.stages(), force=args.force, keep_checkpoints=args.keep_checkpoints
    )
    outcome = runner.run(announce)
    elapsed = time.monotonic() - started
    print()
    print(outcome["markdown"])
    print(f"finished in {elapsed / 60:.1f} min")
    print(timer.describe(elapsed))
    print(f"results: {outcome['results_md']}")
    print(f"report:  {outcome['report']}")
    print(f"rerun:   als4gan run {out / 'demo.yaml'}")
    print(f"disk:    {folder_megabytes(out):.0f} MB in {out}")
    return 0
