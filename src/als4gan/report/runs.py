"""Reading run folders for reports: every part optional, problems recorded instead of raised."""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from als4gan.io import read_json, read_jsonl, read_yaml

#: Folder of a run's checkpoints (the value of ``als4gan.checkpoint.CHECKPOINT_DIR``, kept here
#: so that reading run folders imports no checkpoint or model code).
CHECKPOINT_DIR = "checkpoints"
#: Config keys that do not change what a run computes (or differ per seed by construction):
#: runs whose configs agree on everything else are repeats of one condition.
NON_CONDITION_KEYS = frozenset(
    {
        "seed",
        "out",
        "output",
        "out_dir",
        "run_dir",
        "root",
        "resume",
        "force",
        "device",
        "amp",
        "channels_last",
        "num_workers",
        "workers",
        "deterministic",
        "tensorboard",
        "stop_after",
        "checkpoint_every",
        "selection",
        "config",
    }
)


@dataclass
class RunInfo:
    """What a report needs from one run folder (each part may be missing)."""

    path: Path
    name: str
    config: dict[str, Any] = field(default_factory=dict)
    train: list[dict[str, Any]] = field(default_factory=list)
    val: list[dict[str, Any]] = field(default_factory=list)
    evals: dict[str, dict[str, Any]] = field(default_factory=dict)
    checkpoint_selection: dict[str, Any] | None = None
    selection_ids: list[str] | None = None
    trained_ids: list[str] | None = None
    selection_meta: dict[str, Any] | None = None
    contact_sheet: Path | None = None
    embedding_map: Path | None = None
    checkpoint: Path | None = None
    status: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def seed(self) -> Any:
        """The run's seed (config), or ``None``."""
        return self.config.get("seed")

    @property
    def best_val(self) -> dict[str, Any] | None:
        """The validation record with the highest mIoU."""
        scored = [r for r in self.val if _finite(r.get("miou"))]
        return max(scored, key=lambda r: float(r["miou"])) if scored else None

    def main_eval(self) -> tuple[str, dict[str, Any]] | None:
        """The evaluation to feature: ``test`` when present, else the first split found."""
        if "test" in self.evals:
            return "test", self.evals["test"]
        for split in sorted(self.evals):
            return split, self.evals[split]
        return None

    def condition(self) -> tuple[tuple[str, str], ...]:
        """The run's settings except seeds and run-time options (for grouping repeats)."""
        items = {
            key: repr(value) for key, value in self.config.items() if key not in NON_CONDITION_KEYS
        }
        if self.selection_meta:
            items["selection.strategy"] = repr(self.selection_meta.get("strategy"))
            budget = self.selection_meta.get("budget")
            if isinstance(budget, Mapping):
                items["selection.budget"] = repr(budget.get("budget"))
        return tuple(sorted(items.items()))

    def labelled_description(self) -> str:
        """How the labelled set was made, in words."""
        if self.selection_meta:
            strategy = self.selection_meta.get("strategy", "?")
            count = len(self.selection_ids) if self.selection_ids is not None else "?"
            return f"{strategy} ({count} images)"
        if self.selection_ids is not None:
            return f"selection ({len(self.selection_ids)} images)"
        ratio = self.config.get("labeled_ratio")
        if ratio is not None and float(ratio) >= 1:
            return "all training images"
        if ratio is not None:
            return f"random {100 * float(ratio):g}%"
        if self.config.get("selection"):
            return f"from {Path(str(self.config['selection'])).name}"
        return "–"


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _read(path: Path, reader: Any, problems: list[str]) -> Any:
    try:
        return reader(path)
    except Exception as err:  # a report shows what it can; the problem is listed in the page
        problems.append(f"{path.name}: could not be read ({type(err).__name__}: {err})")
        return None


def _selection_folder(folder: Path, config: Mapping[str, Any]) -> Path:
    """``RUN_DIR/selection``, else the selection folder the run's config trained from."""
    own = folder / "selection"
    if own.is_dir() or not config.get("selection"):
        return own
    recorded = Path(str(config["selection"]))
    for candidate in (recorded, recorded / "selection"):
        if (candidate / "labeled.txt").is_file():
            return candidate
    return own


def load_run(path: str | Path, name: str | None = None) -> RunInfo:
    """Read whatever a run folder holds.

    Raises:
        FileNotFoundError: If ``path`` is not a folder.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"run folder {folder} does not exist")
    info = RunInfo(path=folder, name=name or folder.name)
    problems = info.problems
    if (folder / "config.yaml").is_file():
        config = _read(folder / "config.yaml", read_yaml, problems)
        info.config = config if isinstance(config, dict) else {}
    if (folder / "metrics.jsonl").is_file():
        records = _read(folder / "metrics.jsonl", read_jsonl, problems) or []
        info.train = [r for r in records if r.get("kind", "train") == "train" and "step" in r]
        info.val = [r for r in records if r.get("kind") == "val" and "step" in r]
    eval_root = folder / "eval"
    if eval_root.is_dir():
        for metrics_file in sorted(eval_root.glob("*/metrics.json")):
            data = _read(metrics_file, read_json, problems)
            if isinstance(data, dict):
                info.evals[metrics_file.parent.name] = data
            selection_file = metrics_file.parent / "checkpoint_selection.json"
            if selection_file.is_file():
                info.checkpoint_selection = _read(selection_file, read_json, problems)
    selection = _selection_folder(folder, info.config)
    if (selection / "labeled.txt").is_file():
        from als4gan.io import read_ids

        info.selection_ids = _read(selection / "labeled.txt", read_ids, problems)
    if (selection / "selection.json").is_file():
        meta = _read(selection / "selection.json", read_json, problems)
        info.selection_meta = meta if isinstance(meta, dict) else None
    if (folder / "train_labeled.txt").is_file():
        from als4gan.io import read_ids

        info.trained_ids = _read(folder / "train_labeled.txt", read_ids, problems)
    if (selection / "contact_sheet.png").is_file():
        info.contact_sheet = selection / "contact_sheet.png"
    if (selection / "embedding_map.png").is_file():
        info.embedding_map = selection / "embedding_map.png"
    for candidate in ("best.pt", "latest.pt"):
        if (folder / CHECKPOINT_DIR / candidate).is_file():
            info.checkpoint = folder / CHECKPOINT_DIR / candidate
            break
    if (folder / "status.json").is_file():
        status = _read(folder / "status.json", read_json, problems)
        info.status = status if isinstance(status, dict) else {}
    return info


def load_runs(paths: Sequence[str | Path]) -> list[RunInfo]:
    """Load several runs; names are the folder names, with the parent added when they clash."""
    folders = [Path(p) for p in paths]
    names = [f.resolve().name for f in folders]
    unique = []
    for folder, base in zip(folders, names, strict=True):
        name = base
        if names.count(base) > 1:
            name = f"{folder.resolve().parent.name}/{base}"
        unique.append(name)
    return [load_run(folder, name) for folder, name in zip(folders, unique, strict=True)]


@dataclass
class Group:
    """Runs that differ only by seed, with the mean and spread of a metric."""

    label: str
    runs: list[RunInfo]
    values: list[float]

    @property
    def mean(self) -> float:
        """Mean of the metric (NaN when no run has it)."""
        return statistics.fmean(self.values) if self.values else math.nan

    @property
    def spread(self) -> float:
        """Sample standard deviation (NaN for fewer than two values)."""
        return statistics.stdev(self.values) if len(self.values) > 1 else math.nan


def featured_split(runs: Sequence[RunInfo]) -> str | None:
    """The evaluation split runs are compared on.

    ``test`` if any run has it, else the most common evaluated split, else ``None`` (compare
    the best validation records).
    """
    counts: dict[str, int] = {}
    for run in runs:
        for split in run.evals:
            counts[split] = counts.get(split, 0) + 1
    if not counts:
        return None
    if "test" in counts:
        return "test"
    return max(sorted(counts), key=lambda split: counts[split])


def metric_label(split: str | None) -> str:
    """How the compared score is named in the page."""
    return f"{split} mIoU" if split else "best validation mIoU"


def run_value(run: RunInfo, split: str | None, metric: str = "miou") -> float | None:
    """The run's score on ``split`` (its best validation record when ``split`` is None)."""
    if split is None:
        best = run.best_val
        value = best.get(metric) if best else None
    else:
        value = run.evals.get(split, {}).get(metric)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _label(run: RunInfo) -> str:
    """A short condition label: method, backbone and labelled-set description."""
    parts = [
        str(run.config.get("method", "")),
        str(run.config.get("backbone", "")),
        run.labelled_description(),
    ]
    text = " · ".join(part for part in parts if part and part != "–")
    return text or re.sub(r"[_-]?seed\d+$", "", run.name)


def group_by_condition(runs: Sequence[RunInfo], split: str | None) -> list[Group]:
    """Group runs whose settings agree on everything but seed and run-time options.

    Each group holds the scores (:func:`run_value` on ``split``) of the runs that have one.
    """
    groups: dict[tuple[tuple[str, str], ...], Group] = {}
    for run in runs:
        key = run.condition()
        group = groups.setdefault(key, Group(_label(run), [], []))
        group.runs.append(run)
        value = run_value(run, split)
        if value is not None:
            group.values.append(value)
    labels = [g.label for g in groups.values()]
    for group in groups.values():
        if labels.count(group.label) > 1:
            group.label = f"{group.label} ({group.runs[0].name})"
    return list(groups.values())
