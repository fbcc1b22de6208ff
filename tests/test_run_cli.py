"""``als4gan run`` on a tiny grid through the real commands, including resume after an interrupt."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from als4gan.cli import main
from als4gan.experiment import ExperimentRunner, load_experiment
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
    calls: list[list[str]] = []

    def interrupt_second_training(argv: list[str]) -> int:
        calls.append(argv)
        if argv[0] == "train" and argv[argv.index("--method") + 1] == "s4gan":
            # Ctrl-C half-way: two of four iterations done, a resumable checkpoint written
            assert main([*argv, "--stop-after", "2"]) == 0
            raise KeyboardInterrupt
        return main(argv)

    with pytest.raises(KeyboardInterrupt):
        ExperimentRunner(spec, interrupt_second_training).run()
    s4gan_run = spec.out_dir / "cells" / "random_r0.2_s0_s4gan"
    assert (s4gan_run / "checkpoints" / "latest.pt").is_file()
    assert not RunDir(s4gan_run).is_done("train")

    calls.clear()
    outcome = ExperimentRunner(spec, lambda argv: calls.append(argv) or main(argv)).run()
    kinds = [argv[0] for argv in calls]
    assert "select" not in kinds  # the shared selection finished before the interrupt
    trains = [argv for argv in calls if argv[0] == "train"]
    assert len(trains) == 1  # the finished supervised cell is not trained again
    assert "--resume" in trains[0]
    assert RunDir(s4gan_run).is_done("train")
    steps = [r["step"] for r in read_jsonl(s4gan_run / "metrics.jsonl") if r["kind"] == "train"]
    assert steps == [1, 2, 3, 4]  # resumed at step 3, no step repeated or lost
    assert len(outcome["rows"]) == 2
