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
