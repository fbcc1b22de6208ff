from pathlib import Path

import pytest

from als4gan.data.layout import first_dir, scan_files
from als4gan.errors import DataError


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_first_dir_takes_the_first_existing(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "c").mkdir()
    _touch(tmp_path / "a")  # a file, not a folder
    assert first_dir(tmp_path, ("a", "b", "c")) == tmp_path / "b"
    assert first_dir(tmp_path, ("x",)) is None


def test_scan_files_filters_extensions_and_nests_one_level(tmp_path: Path) -> None:
    top = _touch(tmp_path / "b.PNG")
    nested = _touch(tmp_path / "sub" / "a.png")
    _touch(tmp_path / "notes.txt")
    _touch(tmp_path / "sub" / "deep" / "z.png")
    found, skipped = scan_files(tmp_path, (".png",), nested=True)
    assert found == {"b": top, "a": nested}
    assert list(found) == ["b", "a"]  # the folder's own files first
    assert skipped == []
    flat, _ = scan_files(tmp_path, (".png",))
    assert flat == {"b": top}


def test_scan_files_ids_skips_and_duplicates(tmp_path: Path) -> None:
    first = _touch(tmp_path / "x_mask.png")
    second = _touch(tmp_path / "x_mask.tif")
    other = _touch(tmp_path / "y.png")

    def mask_id(path: Path) -> str | None:
        return path.stem[:-5] if path.stem.endswith("_mask") else None

    with pytest.raises(DataError, match="DeepGlobe id 'x' has two files"):
        scan_files(tmp_path, (".png", ".tif"), mask_id, label="DeepGlobe id")
    found, skipped = scan_files(tmp_path, (".png", ".tif"), mask_id, duplicates="last")
    assert found == {"x": second}
    assert skipped == [other]
    assert first != second
