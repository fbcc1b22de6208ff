"""Logs stay readable: plain progress lines off a terminal, one stop message on Ctrl-C."""

import io
import logging
import os
import signal

import pytest

from als4gan import runtime
from als4gan.progress import PlainProgress, stream_is_terminal
from als4gan.train.trainer import StopRequests


class _FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_progress_writes_a_line_per_tenth_without_escape_codes() -> None:
    stream = io.StringIO()
    bar = PlainProgress(
        total=100, desc="s4gan", unit="it", stream=stream, seconds=1e9, min_seconds=0
    )
    for step in range(100):
        bar.set_postfix({"loss": f"{1 / (step + 1):.3f}"}, refresh=False)
        bar.update(1)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[0].startswith("s4gan: 10/100 it (10%)")
    assert lines[-1].startswith("s4gan: 100/100 it (100%)")
    assert "loss=0.010" in lines[-1]
    assert "\r" not in stream.getvalue()
    assert "\x1b" not in stream.getvalue()


def test_plain_progress_iterates_resumes_and_hides_transient_bars() -> None:
    stream = io.StringIO()
    assert list(
        PlainProgress(range(5), desc="read", stream=stream, seconds=1e9, min_seconds=0)
    ) == list(range(5))
    assert stream.getvalue().splitlines()[-1].startswith("read: 5/5 it (100%)")
    resumed = io.StringIO()
    with PlainProgress(total=20, initial=10, stream=resumed, seconds=1e9, min_seconds=0) as bar:
        bar.update(10)
    assert resumed.getvalue().startswith("20/20 it (100%)")
    # a short bar writes nothing when lines must be 5 s apart (the default)
    quiet = io.StringIO()
    with PlainProgress(total=3, stream=quiet) as bar:
        bar.update(3)
    assert quiet.getvalue() == ""
    inner = io.StringIO()
    with PlainProgress(total=4, leave=False, stream=inner, min_seconds=0) as bar:
        bar.update(4)
    assert inner.getvalue() == ""


def test_progress_is_plain_when_stderr_is_not_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALS4GAN_NO_PROGRESS", "0")
    monkeypatch.setattr(runtime.sys, "stderr", io.StringIO())
    assert not stream_is_terminal()
    assert isinstance(runtime.progress(total=3, desc="x"), PlainProgress)
    monkeypatch.setattr(runtime.sys, "stderr", _FakeTerminal())
    bar = runtime.progress(total=3, desc="x")
    assert not isinstance(bar, PlainProgress)
    bar.close()


def test_stop_message_is_printed_once_not_by_forked_workers(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    with StopRequests() as stop:
        main_pid = os.getpid()
        # A DataLoader worker is a fork: it inherits the handler but has another pid.
        monkeypatch.setattr(os, "getpid", lambda: main_pid + 1)
        for _ in range(3):
            stop._handle(signal.SIGINT, None)
        assert not stop.requested
        assert "stop requested" not in caplog.text
        monkeypatch.setattr(os, "getpid", lambda: main_pid)
        stop._handle(signal.SIGINT, None)
        assert stop.requested
    assert caplog.text.count("stop requested") == 1


def test_stop_handler_in_a_real_forked_child_stays_silent() -> None:
    if not hasattr(os, "fork"):
        pytest.skip("needs fork")
    read_end, write_end = os.pipe()
    with StopRequests() as stop:
        pid = os.fork()
        if pid == 0:  # child: what a DataLoader worker does on the terminal's Ctrl-C
            try:
                os.dup2(write_end, 2)
                logging.getLogger().handlers.clear()
                logging.basicConfig(stream=os.fdopen(2, "w"), force=True)
                os.kill(os.getpid(), signal.SIGINT)
                os.write(write_end, b"requested=%d\n" % int(stop.requested))
            finally:
                os._exit(0)
        os.close(write_end)
        os.waitpid(pid, 0)
        with os.fdopen(read_end) as pipe:
            child_output = pipe.read()
    assert child_output == "requested=0\n"
    assert not stop.requested
