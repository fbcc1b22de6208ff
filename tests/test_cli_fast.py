"""Help, a misspelt command and argument errors answer at once, without importing torch."""

import subprocess
import sys
import time

import pytest

from als4gan.cli import COMMANDS

# Runs in a fresh interpreter: print whether torch got imported, whatever parsing did.
_PROBE = """
import sys
from als4gan.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exit_info:
    code = exit_info.code
else:
    code = 0
print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', code, file=sys.stderr)
"""


def _probe(*argv: str) -> tuple[str, str, float]:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, timeout=120
    )
    return result.stdout, result.stderr, time.perf_counter() - start


def test_top_level_help_is_fast_and_does_not_import_torch() -> None:
    out, err, seconds = _probe("--help")
    assert "NO-TORCH 0" in err
    assert "train" in out
    # Measured 0.1 s on an idle machine; the bound leaves room for a busy test machine.
    assert seconds < 10


@pytest.mark.parametrize("name", list(COMMANDS))
def test_command_help_does_not_import_torch(name: str) -> None:
    out, err, _ = _probe(name, "--help")
    assert "NO-TORCH 0" in err
    assert f"als4gan {name}" in out


def test_misspelt_command_suggests_the_closest_one() -> None:
    _, err, _ = _probe("trian")
    assert "NO-TORCH 2" in err
    assert "did you mean 'train'?" in err
    assert "Run 'als4gan --help'" in err


def test_missing_required_option_is_one_line_and_points_to_help() -> None:
    _, err, _ = _probe("evaluate")
    lines = [line for line in err.splitlines() if line and not line.startswith(("TORCH", "NO-"))]
    assert lines == [
        "als4gan evaluate: error: the following arguments are required: --checkpoint",
        "Run 'als4gan evaluate --help' for the options.",
    ]
    assert "NO-TORCH 2" in err


def test_misspelt_dataset_suggests_the_closest_one() -> None:
    _, err, _ = _probe("select", "--dataset", "deepglob")
    assert "did you mean 'deepglobe'?" in err
    assert "NO-TORCH 2" in err


def test_dataset_names_match_the_registry() -> None:
    from als4gan.commands.common import DATASET_NAMES
    from als4gan.data import DATASETS

    assert sorted(DATASET_NAMES) == sorted(DATASETS)
