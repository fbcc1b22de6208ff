"""``--threads`` / ``ALS4GAN_THREADS`` limit torch's CPU threads for every compute stage."""

import argparse
from collections.abc import Iterator

import pytest
import torch

from als4gan.cli import THREADED_COMMANDS, apply_threads, build_parser, main
from als4gan.errors import ConfigError


@pytest.fixture(autouse=True)
def _restore_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", THREADED_COMMANDS)
def test_every_compute_stage_takes_threads(name: str) -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    command = sub.choices[name]
    option = next(a for a in command._actions if "--threads" in a.option_strings)
    assert option.type is not None
    assert option.type("3") == 3


def test_option_sets_torch_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALS4GAN_THREADS", raising=False)
    assert apply_threads(1) == 1
    assert torch.get_num_threads() == 1


def test_environment_variable_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALS4GAN_THREADS", "2")
    assert apply_threads(None) == 2
    assert torch.get_num_threads() == 2
    assert apply_threads(1) == 1  # the option wins over the variable
    assert torch.get_num_threads() == 1


def test_unset_leaves_torch_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALS4GAN_THREADS", raising=False)
    before = torch.get_num_threads()
    assert apply_threads(None) is None
    assert torch.get_num_threads() == before


def test_bad_environment_value_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALS4GAN_THREADS", "many")
    with pytest.raises(ConfigError, match="ALS4GAN_THREADS"):
        apply_threads(None)


def test_bad_option_value_is_an_argument_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--threads", "0"])
    assert exit_info.value.code == 2
    assert "--threads: must be at least 1" in capsys.readouterr().err


def test_auto_counts_the_idle_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    # Two CPUs, one of them busy between the two samples: auto uses one thread.
    from als4gan import runtime

    samples = iter([(100.0, 400.0), (150.0, 500.0)])  # idle +50 of +100 jiffies on 2 CPUs
    monkeypatch.setattr(runtime, "_cpu_times", lambda: next(samples))
    monkeypatch.setattr(runtime.os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(runtime.os, "cpu_count", lambda: 2)
    assert runtime.idle_cores(interval=0) == (1, 1.0, 2)
    idle = iter([(0.0, 0.0), (98.0, 100.0)])  # nearly idle: both cores
    monkeypatch.setattr(runtime, "_cpu_times", lambda: next(idle))
    assert runtime.idle_cores(interval=0)[0] == 2
    busy = iter([(0.0, 0.0), (0.0, 100.0)])  # every core busy: still one thread
    monkeypatch.setattr(runtime, "_cpu_times", lambda: next(busy))
    assert runtime.idle_cores(interval=0)[0] == 1
    monkeypatch.setattr(runtime, "_cpu_times", lambda: None)  # no /proc/stat: every core
    assert runtime.idle_cores(interval=0) == (2, 2.0, 2)


def test_auto_is_the_demos_default_and_an_option_everywhere(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from als4gan import runtime

    monkeypatch.delenv("ALS4GAN_THREADS", raising=False)
    monkeypatch.setattr(runtime, "idle_cores", lambda interval=0.5: (1, 1.2, 2))
    with caplog.at_level("INFO"):
        assert apply_threads(None, "auto") == 1  # the demo's fallback
    assert "threads: auto = 1 (1.2 of 2 cores idle" in caplog.text
    assert apply_threads("auto") == 1
    assert apply_threads(None) is None  # other commands: torch's default
    monkeypatch.setenv("ALS4GAN_THREADS", "auto")
    assert apply_threads(None) == 1
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    demo = next(a for a in sub.choices["demo"]._actions if "--threads" in a.option_strings)
    train = next(a for a in sub.choices["train"]._actions if "--threads" in a.option_strings)
    assert "else the cores idle at the start" in str(demo.help)
    assert "else every core" in str(train.help)
    assert demo.type is not None and demo.type("auto") == "auto"
