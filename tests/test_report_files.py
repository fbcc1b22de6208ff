"""The report reads run folders only: ``evaluate`` writes the prediction examples it shows."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from als4gan.cli import main
from als4gan.data import build_dataset
from als4gan.evalexamples import EXAMPLE_COUNT, evenly_spaced, read_examples
from als4gan.io import write_yaml
from als4gan.report.html import ReportOptions, build_report
from tests.fake_runs import make_run


@pytest.fixture(scope="module")
def evaluated(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = make_run(tmp_path_factory.mktemp("files") / "run", synthetic_root, seed=4)
    assert main(["evaluate", "--checkpoint", str(run), "--window", "0"]) == 0
    return run


def test_evaluate_writes_the_prediction_examples(evaluated: Path, synthetic_root: Path) -> None:
    folder = evaluated / "eval" / "test"
    index = json.loads((folder / "examples.json").read_text())
    dataset = build_dataset("synthetic", synthetic_root, "test")
    ids = evenly_spaced(dataset.ids, EXAMPLE_COUNT)
    assert [entry["id"] for entry in index["examples"]] == ids
    assert index["split"] == "test" and index["step"] == 40 and index["window"] is None
    assert index["classes"]["names"] == list(dataset.classes.names)
    for number, entry in enumerate(index["examples"]):
        assert entry["image"] == f"examples/{number:02d}_image.png"
        image = Image.open(folder / entry["image"])
        truth = Image.open(folder / entry["truth"])
        prediction = Image.open(folder / entry["prediction"])
        assert image.mode == "RGB" and truth.mode == "P" and prediction.mode == "P"
        # 64 px images are stored at full size: the truth PNG holds the mask's class indices
        mask = dataset.load_mask(entry["id"])
        assert np.array_equal(np.asarray(truth), mask)
        predicted = np.asarray(prediction)
        assert predicted.max() < dataset.num_classes
        valid = mask != 255
        accuracy = float((predicted[valid] == mask[valid]).mean())
        assert entry["pixel_accuracy"] == pytest.approx(accuracy)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert "examples" not in metrics and metrics["split"] == "test"
    found = read_examples(folder)
    assert found is not None and found.ids == ids and found.split == "test"


def test_checkpoint_choice_keeps_no_examples(synthetic_root: Path, tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", synthetic_root, steps=(10, 20))
    args = ["evaluate", "--checkpoint", str(run), "--all-checkpoints", "--window", "0"]
    assert main(args) == 0
    assert (run / "eval" / "test" / "examples.json").is_file()
    assert not (run / "eval" / "val").exists()  # choosing on val writes nothing there


def test_report_imports_no_model_code(evaluated: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    script = (
        "import sys\n"
        "from als4gan.report import ReportOptions, build_report\n"
        f"build_report([{str(evaluated)!r}], {str(out)!r}, ReportOptions(examples=2))\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('als4gan'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=300
    )
    modules = done.stdout.split()
    assert "als4gan.report.html" in modules
    # nothing that produces run folders: models, training, evaluation, the stages, the grid runner
    producers = ("als4gan.models", "als4gan.train", "als4gan.checkpoint", "als4gan.evaluate")
    drivers = ("als4gan.stages", "als4gan.api", "als4gan.experiment.runner", "als4gan.active.loop")
    for forbidden in (*producers, *drivers):
        assert not any(m == forbidden or m.startswith(forbidden + ".") for m in modules), forbidden
    assert "als4gan.inference" not in modules
    text = out.read_text(encoding="utf-8")
    assert 'alt="predictions on evaluated images"' in text
    assert "2 image(s) of the <b>test</b> split" in text


def test_report_without_examples_names_the_command_and_runs_no_model(
    evaluated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "older"
    shutil.copytree(evaluated, run)
    (run / "eval" / "test" / "examples.json").unlink()  # evaluated by an older version

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the report loaded a model")

    import als4gan.checkpoint

    monkeypatch.setattr(als4gan.checkpoint, "load_segmentation_model", refuse)
    text = build_report([run], tmp_path / "r.html", ReportOptions()).read_text(encoding="utf-8")
    assert "No prediction examples" in text
    assert "als4gan evaluate --checkpoint RUN_DIR --split test" in text
    assert "could not be produced" not in text


def test_report_escapes_recorded_values(synthetic_root: Path, tmp_path: Path) -> None:
    run = tmp_path / "escaped"
    run.mkdir()
    write_yaml(
        run / "config.yaml",
        {"dataset": "synthetic", "method": "<script>alert(1)</script>", "seed": 0},
    )
    text = build_report([run], tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_run_folders_name_checkpoints_like_the_trainer() -> None:
    from als4gan.checkpoint import CHECKPOINT_DIR
    from als4gan.report.runs import CHECKPOINT_DIR as READ_DIR

    assert READ_DIR == CHECKPOINT_DIR


def test_drawing_is_the_lowest_layer() -> None:
    script = (
        "import sys\n"
        "import als4gan.draw.crossplots, als4gan.draw.examples, als4gan.draw.images\n"
        "import als4gan.draw.plots, als4gan.draw.sheet\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith(('als4gan', 'torch')))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert all(m == "als4gan" or m.startswith("als4gan.draw") for m in done.stdout.split())
