"""Quick modes of the big-pool, scoring and demo-under-load benchmarks; the demo's time split."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from als4gan.timing import StageTimer, format_split

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture
def bench_path(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The bench folder importable, and its child processes finding the package."""
    monkeypatch.syspath_prepend(str(BENCH))
    source = str(BENCH.parent / "src")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([source, os.environ.get("PYTHONPATH", "")]))
    return BENCH


class FakeStages:
    """Stage functions that only record their calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, stage: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> str:
            self.calls.append(stage)
            if stage == "train" and kwargs.get("force") == "boom":
                raise RuntimeError("boom")
            return stage

        return call


def test_stage_timer_adds_wall_time_per_stage() -> None:
    ticks = iter([0.0, 2.0, 10.0, 13.0, 20.0, 21.0])
    timer = StageTimer(clock=lambda: next(ticks))
    fake = FakeStages()
    stages = timer.stages(fake)  # type: ignore[arg-type]
    assert stages.select("config", Path("x")) == "select"
    assert stages.select("config", Path("y")) == "select"
    assert stages.report(["a"], Path("r.html"), "config") == "report"
    assert fake.calls == ["select", "select", "report"]
    assert timer.seconds == {"select": 5.0, "report": 1.0}
    rows = timer.split(10.0)
    assert rows == [("selection", 5.0, 2), ("report", 1.0, 1), ("other", 4.0, 0)]
    text = timer.describe(10.0)
    assert text.splitlines()[0] == "time split (wall, measured): 10.0 s in all"
    assert "selection       5.0 s  50.0%  (2 runs)" in text
    assert "other           4.0 s  40.0%" in text


def test_stage_timer_counts_a_failing_stage() -> None:
    timer = StageTimer()
    stages = timer.stages(FakeStages())  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        stages.train("config", Path("x"), resume=False, force="boom")
    assert timer.calls == {"train": 1}


def test_demo_prints_its_time_split(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from als4gan import experiment
    from als4gan.commands import demo
    from als4gan.experiment import runner

    fake = FakeStages()
    monkeypatch.setattr(runner, "Stages", lambda: fake)

    def fake_run(self: Any, progress_callback: Any = None) -> dict[str, Any]:
        for stage in ("prepare", "select", "train", "evaluate", "train", "evaluate", "report"):
            assert getattr(self.stages, stage)() == stage
        return {"markdown": "| table |", "results_md": "r.md", "report": "report.html"}

    monkeypatch.setattr(experiment.ExperimentRunner, "run", fake_run)
    args = argparse.Namespace(
        out=str(tmp_path / "demo"), seeds=1, pretrained="none", methods=None,
        strategies=None, force=False, keep_checkpoints=False,
    )  # fmt: skip
    assert demo.run(args) == 0
    assert fake.calls == ["prepare", "select", "train", "evaluate", "train", "evaluate", "report"]
    out = capsys.readouterr().out
    assert "time split (wall, measured):" in out
    for name in ("data", "selection", "training", "evaluation", "report", "other"):
        assert f"\n  {name} " in out
    assert "training" in out and "(2 runs)" in out


def test_demo_load_parses_the_split(bench_path: Path) -> None:
    import demo_load

    text = format_split([("selection", 12.5, 3), ("training", 30.0, 6), ("other", 1.0, 0)], 43.5)
    output = f"noise\n{text}\nresults: r.md\n"
    assert demo_load.parse_split(output) == {"selection": 12.5, "training": 30.0, "other": 1.0}
    assert demo_load.parse_split("no split here\n") == {}


def test_demo_load_quick_runs_the_harness(
    bench_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import demo_load

    results = demo_load.main(["--quick"])
    assert results["wall_s"] >= 0.9  # the stand-in works for 4 x 0.25 s
    assert results["max_rss_mb"] > 0
    assert results["busy_cpu_s"] >= 0
    for name in ("selection", "training", "evaluation", "report"):
        assert results[f"split_{name}_s"] == pytest.approx(0.25, abs=0.2)
    assert capsys.readouterr().out.splitlines()[-1].startswith("RESULT wall_s=")


def test_bigpool_quick_measures_rss_and_time(
    bench_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import bigpool_bench

    results = bigpool_bench.main(["--quick", "--runs", "entropy:24,48"])
    assert results["threads"] == 1
    for size in (24, 48):
        assert results[f"entropy_rss_mb_{size}"] > 50  # python + torch at least
        assert results[f"entropy_s_per_1k_{size}"] > 0
    assert results["entropy_rss_ratio"] == pytest.approx(
        results["entropy_rss_mb_48"] / results["entropy_rss_mb_24"], rel=0.01
    )
    assert "RSS ratio 48/24" in capsys.readouterr().out


def test_bigpool_counts_scored_images(bench_path: Path) -> None:
    import bigpool_bench

    assert bigpool_bench.scored_images("entropy", 1000, 20) == 990
    assert bigpool_bench.scored_images("hybrid", 1000, 20) == 1000
    assert bigpool_bench.scored_images("typiclust", 1000, 20) == 1000
    assert bigpool_bench.parse_runs(["entropy:100,10"]) == [("entropy", [10, 100])]
    with pytest.raises(SystemExit):
        bigpool_bench.parse_runs(["entropy"])


def test_select_bench_quick_scoring_part(bench_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(bench_path / "select_bench.py"), "--quick", "--parts", "1",
         "--score-images", "32", "--threads", "1"],
        capture_output=True, text=True, env={**os.environ, "ALS4GAN_NO_PROGRESS": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = proc.stdout.strip().splitlines()[-1]
    assert result.startswith("RESULT ")
    values = dict(item.split("=") for item in result.split()[1:])
    ratio = float(values["score_mobilenet_v2_contiguous_vs_channels_last"])
    contiguous = float(values["score_mobilenet_v2_fp32_contiguous"])
    channels_last = float(values["score_mobilenet_v2_fp32_channels_last"])
    assert ratio == pytest.approx(contiguous / channels_last, rel=0.01)
    assert float(values["score_mobilenet_v2_fp32_contiguous_cpu"]) > 0
    assert float(values["score_mobilenet_v2_contiguous_vs_channels_last_cpu"]) > 0
