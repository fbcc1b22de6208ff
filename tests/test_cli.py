import subprocess
import sys

import pytest

from als4gan.cli import COMMANDS, main


def test_python_m_help_lists_every_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "als4gan", "--help"], capture_output=True, text=True, check=True
    )
    for name in COMMANDS:
        assert name in result.stdout


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_command_has_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"als4gan {name}" in out
    assert len(out.splitlines()) >= 3


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "commands" in capsys.readouterr().out


def test_user_errors_are_one_line_without_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["prepare", "synthetic", "--out", "unused", "--num-images", "1"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "Traceback" not in err
