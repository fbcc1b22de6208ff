"""``--compile auto|on|off`` (runtime.resolve_compile / maybe_compile) and the poly schedule."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from torch import nn

from als4gan import runtime
from als4gan.errors import ConfigError
from als4gan.runtime import maybe_compile, resolve_compile
from als4gan.train.config import GROUPS, RESUMABLE_OVERRIDES, TrainConfig
from als4gan.train.schedules import PolyLR

CPU = torch.device("cpu")


def test_off_never_compiles_and_auto_keeps_eager_on_cpu(caplog: pytest.LogCaptureFixture) -> None:
    assert resolve_compile("off", CPU) is False
    with caplog.at_level(logging.DEBUG, logger="als4gan.runtime"):
        assert resolve_compile("auto", CPU) is False
    assert "eager mode" in caplog.text and "not measured faster on cpu" in caplog.text


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ConfigError, match="auto, on, off"):
        resolve_compile("fast", CPU)


def _no_compiler(monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name: None)


def test_on_without_a_cpp_compiler_stops_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_compiler(monkeypatch)
    with pytest.raises(ConfigError, match=r"no C\+\+ compiler.*--compile off"):
        resolve_compile("on", CPU)


def test_auto_falls_back_to_eager_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Where compiling were measured faster but cannot run, auto keeps eager and says why.
    monkeypatch.setattr(runtime, "COMPILE_FASTER_ON", frozenset({"cpu"}))
    _no_compiler(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="als4gan.runtime"):
        assert resolve_compile("auto", CPU) is False
    assert "no C++ compiler" in caplog.text


def test_auto_compiles_where_measured_faster_and_available(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runtime, "COMPILE_FASTER_ON", frozenset({"cpu"}))
    monkeypatch.setattr(runtime, "compile_unavailable", lambda device: None)
    assert resolve_compile("auto", CPU) is True


def test_maybe_compile_keeps_the_module_and_its_state_dict_names() -> None:
    module = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    names = list(module.state_dict())
    assert maybe_compile(module, False) is module
    assert maybe_compile(module, True) is module  # compiled in place (at its first call)
    assert list(module.state_dict()) == names


def test_compile_is_a_runtime_option_that_a_resume_may_change() -> None:
    assert TrainConfig().compile == "auto"
    assert "compile" in GROUPS["runtime"]
    assert "compile" in RESUMABLE_OVERRIDES


def test_poly_schedule_is_the_closed_form_at_every_step() -> None:
    # The reason PolyLR is kept over torch's PolynomialLR (recursive, last bits differ).
    base, total = 2.5e-4, 200
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=base)
    scheduler = PolyLR(optimizer, total=total, power=0.9)
    for step in range(total):
        assert scheduler.get_last_lr()[0] == base * max(0.0, 1.0 - step / total) ** 0.9
        optimizer.step()
        scheduler.step()


def test_select_compiles_the_acquisition_network_only_when_asked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # `select --compile on` compiles the acquisition network (each time it is re-created);
    # the default (auto) keeps eager mode on CPU, and a selection with `off` is the same.
    from als4gan.active.acquisition import ACQUISITION_MODELS
    from als4gan.active.config import SelectConfig
    from als4gan.active.loop import build_acquisition_model
    from als4gan.active.strategies import build_strategy
    from als4gan.data import build_dataset
    from als4gan.data.synthetic import SyntheticConfig, write_synthetic

    write_synthetic(tmp_path, SyntheticConfig(num_images=8, image_size=32), show_progress=False)
    dataset = build_dataset("synthetic", str(tmp_path), "train")
    compiled: list[str] = []
    monkeypatch.setattr(runtime, "compile_unavailable", lambda device: None)
    monkeypatch.setattr(
        nn.Module, "compile", lambda self, *a, **k: compiled.append(type(self).__name__)
    )
    strategy = build_strategy("entropy")
    for mode, expected in (("auto", 0), ("off", 0), ("on", 1)):
        config = SelectConfig(root=str(tmp_path), model="resnet18", image_size=32, compile=mode)
        model = build_acquisition_model(
            ACQUISITION_MODELS["classifier"], dataset, config, CPU, strategy
        )
        model.reset()
        assert len(compiled) == expected, mode
        assert model.compiled is (mode == "on")
