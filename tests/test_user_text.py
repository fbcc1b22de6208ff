"""User-facing text names only what a user has: docs/method.md, never a development-only spec."""

import re
from pathlib import Path

import pytest

from als4gan.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parents[1]
#: Mentions of files outside the repository (a development spec, a shared data folder) or of
#: the issue tracker that asked for something. Users have none of these.
FORBIDDEN = re.compile(r"\bSPEC\b|SPEC\.md|\.\./shared|shared/data|shared/SPEC|\bthe issue\b")


def _user_files() -> list[Path]:
    files = [*sorted((ROOT / "src").rglob("*.py")), *sorted((ROOT / "docs").glob("*.md"))]
    files += sorted((ROOT / "configs").rglob("*.yaml"))
    return files


@pytest.mark.parametrize("path", _user_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_sources_docs_and_configs_do_not_name_outside_files(path: Path) -> None:
    hits = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if FORBIDDEN.search(line)
    ]
    assert not hits, "point at docs/method.md (or another docs/ page) instead:\n" + "\n".join(hits)


@pytest.mark.parametrize("name", [None, *COMMANDS])
def test_help_does_not_name_outside_files(
    name: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["--help"] if name is None else [name, "--help"])
    text = capsys.readouterr().out
    assert not FORBIDDEN.search(text), text


def test_the_pattern_catches_what_it_should() -> None:
    for bad in ("as SPEC states", "see SPEC.md", "../shared/data/x", "the issue expected"):
        assert FORBIDDEN.search(bad), bad
    for fine in ("RESNET_SPECS", "shared storage", "an issue tracker"):
        assert not FORBIDDEN.search(fine), fine
