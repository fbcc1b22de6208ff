"""Training records: RUN_DIR/metrics.jsonl (the run-folder contract) and optional TensorBoard.

Record schema (one JSON object per line)::

    {"kind": "train", "step", "loss_ce", "loss_fm", "loss_st", "loss_d", "accept_rate",
     "d_real_mean", "d_fake_mean", "d_above_0.5", "d_above_0.6", "d_above_0.7", "d_above_tau",
     "lr_g", "lr_d", "time"}          # s4GAN-only keys absent for supervised runs
    {"kind": "val", "step", "miou", "pixel_accuracy", "mean_class_accuracy", "fwiou",
     "per_class_iou", "class_names"}

``step`` counts completed iterations (1 = after the first update); ``time`` is the training
wall-clock time in seconds up to that step, accumulated over resumed invocations.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from als4gan.errors import ConfigError
from als4gan.io import append_jsonl, atomic_write_text, read_jsonl

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"


def truncate_records(path: Path, last_step: int) -> int:
    """Drop records after ``last_step`` (written after the checkpoint a run resumes from).

    A line truncated by a crash is dropped too.

    Returns:
        The number of records dropped.
    """
    if not path.is_file():
        return 0
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    records = read_jsonl(path)
    kept = [record for record in records if int(record.get("step", 0)) <= last_step]
    if len(kept) != len(lines):
        atomic_write_text(
            path, "".join(json.dumps(record, allow_nan=False) + "\n" for record in kept)
        )
    return len(lines) - len(kept)


def tensorboard_available() -> bool:
    """Whether ``torch.utils.tensorboard`` can be imported (the optional package is installed)."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        return False
    return True


def check_tensorboard(mode: str) -> bool:
    """Resolve ``--tensorboard``: whether to write event files.

    Raises:
        ConfigError: For ``on`` when TensorBoard is not installed.
    """
    if mode == "off":
        return False
    available = tensorboard_available()
    if mode == "on" and not available:
        raise ConfigError(
            "--tensorboard on needs the tensorboard package: "
            "pip install 'als4gan[tensorboard]' (or --tensorboard off)"
        )
    if not available:
        logger.debug("TensorBoard not installed; writing metrics.jsonl only")
    return available


class MetricsLog:
    """Appends records to ``metrics.jsonl`` and mirrors scalars to TensorBoard when enabled.

    Only the main process should create one.

    Args:
        run_dir: The run folder.
        tensorboard: ``auto`` (when the package is installed), ``on`` (required) or ``off``.

    Raises:
        ConfigError: With ``tensorboard="on"`` when TensorBoard is not installed.
    """

    def __init__(self, run_dir: Path, tensorboard: str = "auto") -> None:
        self.path = run_dir / METRICS_FILE
        self.writer: Any = None
        if check_tensorboard(tensorboard):
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(run_dir / TENSORBOARD_DIR))

    def write(self, record: dict[str, Any]) -> None:
        """Append one record (and its numbers to TensorBoard as ``<kind>/<key>``)."""
        append_jsonl(self.path, record)
        if self.writer is not None:
            step = int(record["step"])
            kind = record.get("kind", "train")
            for key, value in record.items():
                if key in ("kind", "step") or not isinstance(value, int | float):
                    continue
                self.writer.add_scalar(f"{kind}/{key}", value, step)
            names = record.get("class_names")
            per_class = record.get("per_class_iou")
            if isinstance(names, list) and isinstance(per_class, list):
                for name, value in zip(names, per_class, strict=False):
                    if value is not None:
                        self.writer.add_scalar(f"{kind}/iou_{name}", value, step)

    def close(self) -> None:
        """Flush TensorBoard files."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def progress_fields(record: dict[str, Any]) -> dict[str, str]:
    """Short progress-bar fields of a training record: losses and D's accept rate."""
    short = {
        "loss_ce": "ce",
        "loss_fm": "fm",
        "loss_st": "st",
        "loss_d": "d",
        "loss_u_s1": "s1",
        "loss_u_fp": "fp",
    }
    fields = {label: f"{record[key]:.3f}" for key, label in short.items() if key in record}
    if "accept_rate" in record:
        fields["acc"] = f"{record['accept_rate']:.2f}"
    if "pseudo_coverage" in record:
        fields["cov"] = f"{record['pseudo_coverage']:.2f}"
    return fields
