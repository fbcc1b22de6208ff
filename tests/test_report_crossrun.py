"""The report's cross-run sections: runs placed in the grid, paired comparisons, browser check."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from als4gan.cli import main
from als4gan.data.synthetic import SYNTHETIC_CLASSES
from als4gan.experiment import Cell
from als4gan.io import read_yaml, write_ids, write_json, write_yaml
from als4gan.report.crossrun import CROSS_SECTIONS, answer_section, run_cell
from als4gan.report.html import ReportOptions, build_report
from als4gan.report.runs import load_run, load_runs
from tests.fake_runs import make_run
from tests.test_report import parse

CLASSES = list(SYNTHETIC_CLASSES.names)  # barren (the last) is the rarest in this pool
#: test mIoU per seed: entropy beats random by 5, 5 and 3 points.
SCORES = {"random": [0.40, 0.42, 0.38], "entropy": [0.45, 0.47, 0.41], "full": [0.8, 0.8, 0.8]}


def _finish(run: Path, root: Path, strategy: str, seed: int, miou: float) -> Path:
    """Give a run folder the selection record and test evaluation of a grid cell."""
    if strategy != "full":
        train_ids = (root / "splits" / "train.txt").read_text().split()
        write_ids(run / "selection" / "labeled.txt", train_ids[seed : seed + 5])
        share = {name: (0.5 if i == 0 else 0.1) for i, name in enumerate(CLASSES)}
        if strategy == "entropy":
            share = {**share, "barren": 0.2, "urban": 0.4}
        write_json(
            run / "selection" / "selection.json",
            {
                "strategy": strategy,
                "seed": seed,
                "budget": {"labeled_ratio": 0.2, "budget": 5, "pool_size": 22},
                "labelled": {"count": 5, "histogram": {"pixel_share": share}},
            },
        )
    per_class = [miou + 0.05 * (i - 2.5) / 2.5 for i in range(len(CLASSES))]
    if strategy == "entropy":
        per_class[5] += 0.1  # the rare class improved
    write_json(
        run / "eval" / "test" / "metrics.json",
        {"miou": miou, "per_class_iou": per_class, "class_names": CLASSES, "split": "test"},
    )
    return run


def _evaluated(run: Path) -> Path:
    """The run evaluated for real (its prediction examples); _finish then sets its scores."""
    assert main(["evaluate", "--checkpoint", str(run), "--window", "0"]) == 0
    return run


@pytest.fixture(scope="module")
def grid_runs(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Cells of a grid: random and entropy (s4gan) and the reference, three seeds.

    Seed 0 of random and entropy have checkpoints and were evaluated (the prediction examples
    of the side-by-side table); the other folders carry the records only.
    """
    base = tmp_path_factory.mktemp("grid")
    first = _evaluated(
        make_run(base / "random_r0.2_s0_s4gan", synthetic_root, seed=0, steps=(2, 4))
    )
    config: dict[str, Any] = read_yaml(first / "config.yaml")
    runs = [_finish(first, synthetic_root, "random", 0, SCORES["random"][0])]
    runs.append(
        _finish(
            _evaluated(
                make_run(base / "entropy_r0.2_s0_s4gan", synthetic_root, seed=0, steps=(2, 4))
            ),
            synthetic_root,
            "entropy",
            0,
            SCORES["entropy"][0],
        )
    )
    for seed in (1, 2):
        for strategy in ("random", "entropy"):
            run = base / f"{strategy}_r0.2_s{seed}_s4gan"
            write_yaml(run / "config.yaml", {**config, "seed": seed})
            runs.append(_finish(run, synthetic_root, strategy, seed, SCORES[strategy][seed]))
    for seed in (0, 1, 2):
        run = base / f"full_r1_s{seed}_supervised"
        write_yaml(
            run / "config.yaml",
            {**config, "seed": seed, "method": "supervised", "labeled_ratio": 1.0},
        )
        runs.append(_finish(run, synthetic_root, "full", seed, SCORES["full"][seed]))
    return runs


def test_runs_are_placed_in_the_grid_from_their_records(grid_runs: list[Path]) -> None:
    cells = {run.name: run_cell(load_run(run)) for run in grid_runs}
    assert cells["entropy_r0.2_s1_s4gan"] == Cell("entropy", 0.2, 1, "s4gan")
    assert cells["full_r1_s2_supervised"] == Cell("full", 1.0, 2, "supervised")
    bare = load_run(grid_runs[0])
    bare.selection_meta = None
    bare.config = {"method": "supervised", "seed": 3, "labeled_ratio": 0.05}
    assert run_cell(bare) == Cell("random", 0.05, 3, "supervised")  # random subset
    bare.config = {"method": "supervised"}
    assert run_cell(bare) is None  # no seed: cannot be paired


def test_answer_says_in_words_whether_the_strategy_beat_random(grid_runs: list[Path]) -> None:
    html = answer_section(load_runs(grid_runs))
    # differences 5, 5, 3 points: mean 4.33, sd 1.155, t(0.975, 2) = 4.303 -> 1.5 .. 7.2
    assert "entropy beat random by 4.3 points (95 % CI 1.5..7.2, 3 of 3 seeds)" in html
    assert "all labels (reference)" in html
    assert "50 %" in html and "55 %" in html  # share of full supervision: 40 / 80, 44.3 / 80
    assert "+4.3" in html and "3/3" in html and "significant" in html
    # one seed: no interval and no claim
    one_seed = answer_section(load_runs([grid_runs[0], grid_runs[1]]))
    assert "n = 1, no interval" in one_seed
    assert "beat" not in one_seed
    # nothing to pair: says what is needed
    alone = answer_section(load_runs([grid_runs[0]]))
    assert "Nothing to compare yet" in alone


def _report(grid_runs: list[Path], out: Path) -> Path:
    return build_report(grid_runs, out, ReportOptions(title="grid", examples=2))


def test_report_leads_with_the_comparison(grid_runs: list[Path], tmp_path: Path) -> None:
    out = _report(grid_runs, tmp_path / "report.html")
    parser, text = parse(out)
    page = [section for run, section in parser.sections if run is None]
    assert page[: len(CROSS_SECTIONS) + 2] == [
        *(key for key, _ in CROSS_SECTIONS),
        "overview",
        "comparison",
    ]
    assert "best test miou" not in text.lower()  # no single-run winner in the overview
    # per-class table across runs, with the change against random and the pool's rarest class
    assert "Per-class IoU across runs" in text and "barren (rarest)" in text
    assert "(+14.3)" in text  # entropy's barren: +10 points over its +4.3 mIoU
    # the class histogram of the chosen images against the pool's
    assert "training pool (all images)" in text and "0.2 · entropy" in text
    # the same two validation images, predicted by both runs of seed 0 that have a checkpoint
    assert text.count('alt="prediction of ') == 2 * 2


def test_report_renders_in_chromium_with_the_comparison_first(
    grid_runs: list[Path], tmp_path: Path
) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    out = _report(grid_runs, tmp_path / "report.html")
    # a probe appended to a copy of the page reports what the browser laid out
    probe = """<script>
    window.addEventListener('load', () => {
      const images = Array.from(document.images);
      const sections = Array.from(document.querySelectorAll('main section[data-section]'));
      const plots = images.filter(i => i.closest('figure') && i.src.startsWith('data:image/png'));
      const result = {
        first: sections.length ? sections[0].dataset.section : null,
        top: sections.length ? sections[0].getBoundingClientRect().top : null,
        images: images.length,
        broken: images.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt),
        shrunk: plots.filter(i => i.clientWidth < 0.8 * i.naturalWidth).map(
          i => i.alt + ' ' + i.clientWidth + '/' + i.naturalWidth),
      };
      const node = document.createElement('pre');
      node.id = 'probe';
      node.textContent = JSON.stringify(result);
      document.body.appendChild(node);
    });
    </script>"""
    probed = tmp_path / "probed.html"
    probed.write_text(out.read_text(encoding="utf-8").replace("</body>", probe + "</body>"))
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--window-size=1280,900",
                "--virtual-time-budget=10000",
                "--dump-dom",
                probed.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
    start = dom.index('<pre id="probe">') + len('<pre id="probe">')
    result = json.loads(dom[start : dom.index("</pre>", start)].replace("&amp;", "&"))
    assert result["first"] == "answer"  # the comparison leads the page
    assert result["images"] > 10
    assert result["broken"] == []  # every image decoded and laid out
    # at the default width no plot is shrunk below 80 % of its natural size, so the smallest
    # chart text (9 pt at 110 dpi = 13.75 px) stays at 11 px or more on screen
    assert result["shrunk"] == []
