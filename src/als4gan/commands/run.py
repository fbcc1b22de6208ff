"""``als4gan run``: a whole experiment grid from one YAML config."""

from __future__ import annotations

import argparse
from typing import Any

HELP = "run a whole experiment grid from one YAML config (select, train, evaluate, report)"
DESCRIPTION = """\
Run prepare (when needed) -> select -> train -> evaluate -> report for a grid of
strategies x labelled ratios x seeds x methods, each cell in its own run folder.
Cells already finished are skipped and an interrupted one resumes, so the same command
can simply be run again after a crash. With grid.reference (default true) each seed also
gets one supervised run on every training image, the fully supervised reference. Ends
with a results table (Markdown and CSV: mean and standard deviation of test mIoU per
cell, its share of the fully supervised reference, relative gain over random), the paired
comparisons (each strategy against random at the same ratio and method, each method
against supervised on the same labelled sets: mean per-seed difference, 95% confidence
interval, wins, significant or not; also in comparisons.csv and comparisons.json) and a
comparison report (HTML). A seed listed twice is refused.

Config (YAML):
  name: deepglobe_mini
  out: runs/deepglobe_mini           # relative paths: from the current directory
  dataset:
    name: deepglobe
    root: data/deepglobe_512         # prepared root
    prepare: {kind: deepglobe, src: "${ALS4GAN_DATA:-data}/deepglobe_512", tile_size: 0}
  grid: {strategies: [random, entropy], ratios: [0.05], seeds: [0, 1, 2],
         methods: [s4gan, supervised], reference: true}
  select: {model: resnet18, epochs: 5}          # any 'als4gan select' option
  train: {backbone: resnet18, iterations: 400}  # any 'als4gan train' option
  evaluate: {split: test}                       # any 'als4gan evaluate' option

Paths may use ${ALS4GAN_DATA:-default} (shell style); --data-root DIR sets ALS4GAN_DATA for
the run. After a cell is evaluated its checkpoints/latest.pt (the resume state, the largest
file) is deleted unless --keep-checkpoints; best.pt stays for evaluation and the report.

Shipped configs: configs/paper/ucm.yaml, configs/paper/deepglobe.yaml (GPU, full data),
configs/deepglobe_mini.yaml (CPU-sized). Where the datasets come from: docs/data.md.

examples:
  als4gan run configs/deepglobe_mini.yaml --data-root ~/datasets --dry-run
  ALS4GAN_DATA=~/datasets als4gan run configs/deepglobe_mini.yaml --threads 2
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``run``."""
    parser.add_argument("config", help="experiment YAML file")
    parser.add_argument("--out", help="output folder (overrides the config's 'out')")
    parser.add_argument(
        "--force", action="store_true", help="redo finished stages instead of skipping them"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="list the cells and stop without running anything"
    )
    parser.add_argument(
        "--data-root",
        default=None,
        metavar="DIR",
        help="folder holding the datasets: the value of ${ALS4GAN_DATA} in the config's paths "
        "(default: the ALS4GAN_DATA environment variable, else the config's fallback)",
    )
    parser.add_argument(
        "--keep-checkpoints",
        action="store_true",
        help="keep every cell's checkpoints/latest.pt (resume state) after it is evaluated",
    )


def _dry_run(spec: Any) -> None:
    """List the cells and where the data is read, without running anything."""
    from als4gan.experiment import expand_grid

    cells = expand_grid(spec.grid)
    print(f"{spec.name}: {len(cells)} cells -> {spec.out_dir}")
    print(f"  data: {spec.root_dir}", end="")
    if spec.dataset.prepare and "src" in spec.dataset.prepare:
        print(f" (prepared from {spec.path(str(spec.dataset.prepare['src']))})", end="")
    print()
    for cell in cells:
        print(f"  {cell.name}")


def print_outcome(outcome: Any, out_dir: Any) -> None:
    """The results table and where the results, the report and the disk space went."""
    print()
    print(outcome["markdown"])
    print(f"results: {outcome['results_md']} and {outcome['results_csv']}")
    if outcome["report"] is not None:
        print(f"report:  {outcome['report']}")
    print(f"disk:    {folder_megabytes(out_dir):.0f} MB in {out_dir}")


def run(args: argparse.Namespace) -> int:
    """Run the grid and print the results table."""
    from als4gan.stages.run import RunConfig, load_spec
    from als4gan.stages.run import run as run_grid

    config = RunConfig(
        out=args.out,
        force=args.force,
        keep_checkpoints=args.keep_checkpoints,
        data_root=args.data_root,
    )
    spec = load_spec(args.config, config)
    if args.dry_run:
        _dry_run(spec)
        return 0

    def announce(index: int, total: int, cell: object) -> None:
        print(f"[{index + 1}/{total}] {getattr(cell, 'name', cell)}", flush=True)

    outcome = run_grid(spec, config, on_cell=announce)
    print_outcome(outcome, spec.out_dir)
    return 0


def folder_megabytes(folder: object) -> float:
    """Size of the files under ``folder`` in MB (10^6 bytes)."""
    from pathlib import Path

    return sum(f.stat().st_size for f in Path(str(folder)).rglob("*") if f.is_file()) / 1e6
