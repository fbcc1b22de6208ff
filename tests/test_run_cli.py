"""``als4gan run`` on a tiny grid through the real commands, including resume after an interrupt."""

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from als4gan.cli import main
from als4gan.experiment import ExperimentRunner, Stages, load_experiment
from als4gan.io import RunDir, read_json, read_jsonl

TRAIN = {
    "backbone": "resnet18",
    "output_stride": 16,
    "crop_size": 48,
    "batch_size": 2,
    "iterations": 4,
    "val_every": 2,
    "val_window": 0,
    "checkpoint_every": 1,
    "num_workers": 0,
}
SELECT = {
    "model": "resnet18",
    "image_size": 48,
    "epochs": 1,
    "alpha": 0.5,
    "beta": 0.5,
    "num_workers": 0,
}


def _write_config(tmp_path: Path, root: Path, **grid: Any) -> Path:
    config = {
        "name": "tiny",
        "out": str(tmp_path / "exp"),
        "dataset": {"name": "synthetic", "root": str(root)},
        "grid": {
            "strategies": ["random", "entropy"],
            "ratios": [0.2],
            "seeds": [0],
            "methods": ["s4gan", "supervised"],
            **grid,
        },
        "select": SELECT,
        "train": TRAIN,
        "evaluate": {"split": "test"},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_run_tiny_grid_end_to_end(
    synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _write_config(tmp_path, synthetic_root)
    assert main(["run", str(config), "--dry-run"]) == 0
    assert "5 cells" in capsys.readouterr().out  # 4 + the fully supervised reference
    assert main(["run", str(config)]) == 0
    out = capsys.readouterr().out
    assert "| 0.2 | s4gan | entropy | 1 |" in out
    assert "| 1 | supervised | all labels (reference) | 1 |" in out
    assert "| entropy vs random | 0.2 | s4gan | 1 |" in out
    exp = tmp_path / "exp"
    results = read_json(exp / "results.json")
    assert len(results["cells"]) == 5
    assert all(0.0 <= cell["miou"] <= 1.0 for cell in results["cells"])
    # the best validation mIoU of each training run is collected next to the test mIoU
    for cell in results["cells"]:
        status = RunDir(cell["run_dir"]).status()
        assert cell["val_miou"] == status["train"]["best_miou"]
    csv_lines = (exp / "results.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + 5
    assert len((exp / "comparisons.csv").read_text().splitlines()) == 1 + 4
    # the reference is trained on every training image with the same settings
    reference = exp / "cells" / "full_r1_s0_supervised"
    train_ids = (synthetic_root / "splits" / "train.txt").read_text().split()
    assert sorted((reference / "train_labeled.txt").read_text().split()) == sorted(train_ids)
    assert read_json(reference / "eval" / "test" / "metrics.json")["split"] == "test"
    # methods share one selection per strategy; each cell keeps a copy in its run folder
    assert sorted(p.name for p in (exp / "selections").iterdir()) == [
        "entropy_r0.2_s0",
        "random_r0.2_s0",
    ]
    for cell in (exp / "cells").iterdir():
        if cell == reference:
            continue
        assert (cell / "selection" / "labeled.txt").read_text() == (
            exp / "selections" / cell.name.rsplit("_", 1)[0] / "selection" / "labeled.txt"
        ).read_text()
        assert RunDir(cell).is_done("train")
        assert read_json(cell / "eval" / "test" / "metrics.json")["split"] == "test"
    html = (exp / "report.html").read_text()
    assert "entropy_r0.2_s0_s4gan" in html


def test_run_resumes_an_interrupted_cell_and_skips_finished_ones(
    synthetic_root: Path, tmp_path: Path
) -> None:
    spec = load_experiment(
        _write_config(
            tmp_path,
            synthetic_root,
            strategies=["random"],
            methods=["supervised", "s4gan"],
            reference=False,
        )
    )
    recorder = RecordingStages()
    with pytest.raises(KeyboardInterrupt):
        ExperimentRunner(spec, RecordingStages(interrupt="s4gan")).run()
    s4gan_run = spec.out_dir / "cells" / "random_r0.2_s0_s4gan"
    assert (s4gan_run / "checkpoints" / "latest.pt").is_file()
    assert not RunDir(s4gan_run).is_done("train")

    outcome = ExperimentRunner(spec, recorder).run()
    kinds = [call[0] for call in recorder.calls]
    assert "select" not in kinds  # the shared selection finished before the interrupt
    trains = [call for call in recorder.calls if call[0] == "train"]
    assert len(trains) == 1  # the finished supervised cell is not trained again
    assert trains[0][1]["resume"] is True
    assert RunDir(s4gan_run).is_done("train")
    steps = [r["step"] for r in read_jsonl(s4gan_run / "metrics.jsonl") if r["kind"] == "train"]
    assert steps == [1, 2, 3, 4]  # resumed at step 3, no step repeated or lost
    assert len(outcome["rows"]) == 2


class RecordingStages(Stages):
    """The real stages, recording each call; ``interrupt``: Ctrl-C half-way through that method.

    The interrupted training runs two of its four iterations (a resumable checkpoint written),
    then a KeyboardInterrupt stops the grid, as Ctrl-C would.
    """

    def __init__(self, interrupt: str | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.interrupt = interrupt

    def select(self, config: Any, out: Path, **options: Any) -> Any:
        self.calls.append(("select", options))
        return super().select(config, out, **options)

    def train(self, config: Any, out: Path, *, resume: bool, force: bool) -> Any:
        self.calls.append(("train", {"resume": resume, "method": config.method}))
        if config.method == self.interrupt:
            halfway = dataclasses.replace(config, stop_after=2)
            assert super().train(halfway, out, resume=resume, force=force).state == "stopped"
            raise KeyboardInterrupt
        return super().train(config, out, resume=resume, force=force)
