"""The classes file of folder datasets: parsing and validating it into a :class:`ClassSpec`.

The file's format is described in :mod:`als4gan.data.folder` and docs/data.md.
"""

from __future__ import annotations

import colorsys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from als4gan.data.encoding import IGNORE_INDEX, RGB, ClassTable
from als4gan.errors import ConfigError, DatasetNotFoundError
from als4gan.io import read_json, read_yaml

UNKNOWN_MODES = ("error", "ignore")
#: Classes file names looked for in the dataset root when ``classes_file`` is not given.
CLASSES_FILE_NAMES = ("classes.yaml", "classes.yml", "classes.json")
CLASSES_HELP = (
    "Pass --classes-file FILE, or put classes.yaml in the dataset root; its format is in "
    "docs/data.md."
)
#: Top-level keys a classes file may hold.
_FILE_KEYS = frozenset(
    ("classes", "names", "values", "colors", "ignore_values", "ignore_colors", "unknown")
)


def default_colors(count: int) -> list[RGB]:
    """Distinct display colours for classes that have none (evenly spaced hues)."""
    colors: list[RGB] = []
    for index in range(count):
        r, g, b = colorsys.hsv_to_rgb((index * 0.618034) % 1.0, 0.75, 0.95)
        colors.append((round(r * 255), round(g * 255), round(b * 255)))
    return colors


@dataclass(frozen=True)
class ClassSpec:
    """A parsed classes file: the class table and how masks encode it.

    Attributes:
        table: Class names and display colours.
        values: Stored index value of each class.
        has_colors: Whether colours were given (needed to decode colour masks).
        ignore_values: Index values meaning "no label".
        ignore_colors: Colours meaning "no label".
        unknown: ``"error"`` or ``"ignore"`` for values/colours outside the table.
        source: The file it came from (for messages).
    """

    table: ClassTable
    values: tuple[int, ...]
    has_colors: bool
    ignore_values: tuple[int, ...] = (IGNORE_INDEX,)
    ignore_colors: tuple[RGB, ...] = ()
    unknown: str = "error"
    source: str = "<classes file>"

    def to_dict(self) -> dict[str, Any]:
        """The classes-file form (what ``prepare folder`` writes to ``classes.yaml``)."""
        classes: list[dict[str, Any]] = []
        for name, value, color in zip(
            self.table.names, self.values, self.table.colors, strict=True
        ):
            entry: dict[str, Any] = {"name": name, "value": value}
            if self.has_colors:
                entry["color"] = list(color)
            classes.append(entry)
        return {
            "classes": classes,
            "ignore_values": list(self.ignore_values),
            "ignore_colors": [list(color) for color in self.ignore_colors],
            "unknown": self.unknown,
        }


def _color(value: Any, where: str) -> RGB:
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str)
        or len(value) != 3
        or not all(isinstance(c, int) and 0 <= c <= 255 for c in value)
    ):
        raise ConfigError(f"{where}: a colour must be three integers 0-255 like [255, 0, 0]")
    return (int(value[0]), int(value[1]), int(value[2]))


def _entries_from_lists(data: Mapping[str, Any], source: str) -> list[Any]:
    """The ``names: [...]`` form (with optional ``values`` and ``colors`` lists) as entries."""
    names_list = data["names"]
    if not isinstance(names_list, list) or not names_list:
        raise ConfigError(f"{source}: 'names' must be a non-empty list")
    values_list = data.get("values")
    colors_list = data.get("colors")
    for key, items in (("values", values_list), ("colors", colors_list)):
        if items is not None and (not isinstance(items, list) or len(items) != len(names_list)):
            raise ConfigError(f"{source}: '{key}' must list one entry per name ({len(names_list)})")
    entries: list[Any] = []
    for index, name in enumerate(names_list):
        entry: dict[str, Any] = {"name": name}
        if values_list is not None:
            entry["value"] = values_list[index]
        if colors_list is not None:
            entry["color"] = colors_list[index]
        entries.append(entry)
    return entries


def _class_entries(data: Any, source: str) -> list[Any]:
    """The class entries of a classes file, in either of its two forms."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source} must hold a mapping with a 'classes' (or 'names') list")
    if "classes" in data:
        entries = data["classes"]
        if not isinstance(entries, list) or not entries:
            raise ConfigError(f"{source}: 'classes' must be a non-empty list")
        return entries
    if "names" in data:
        return _entries_from_lists(data, source)
    raise ConfigError(
        f"{source} has no 'classes' list. Example: classes: [{{name: background, value: 0}}, "
        "{name: building, value: 1}]"
    )


def _parse_entries(
    entries: list[Any], source: str
) -> tuple[list[str], list[int], list[RGB | None]]:
    """Names, stored values and colours (``None`` = not given) of the class entries."""
    names: list[str] = []
    values: list[int] = []
    colors: list[RGB | None] = []
    for index, entry in enumerate(entries):
        where = f"{source}: class {index}"
        item = {"name": entry} if isinstance(entry, str) else entry
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise ConfigError(f"{where} needs a name (a string, or a mapping with 'name')")
        unknown_keys = set(item) - {"name", "value", "color"}
        if unknown_keys:
            raise ConfigError(f"{where} has unknown key(s) {sorted(unknown_keys)}")
        value = item.get("value", index)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 65535:
            raise ConfigError(f"{where}: value must be an integer 0-65535, got {value!r}")
        names.append(item["name"])
        values.append(value)
        colors.append(_color(item["color"], where) if "color" in item else None)
    return names, values, colors


def _checked_colors(
    names: list[str], values: list[int], colors: list[RGB | None], source: str
) -> list[RGB]:
    """Check the table is consistent; the given colours (all of them, or none)."""
    if len(names) > IGNORE_INDEX:
        raise ConfigError(f"{source}: at most {IGNORE_INDEX} classes are supported")
    for label, items in (("name", [str(n) for n in names]), ("value", [str(v) for v in values])):
        duplicates = sorted({x for x in items if items.count(x) > 1})
        if duplicates:
            raise ConfigError(f"{source}: duplicate class {label}(s) {duplicates}")
    given = [color for color in colors if color is not None]
    if given and len(given) != len(colors):
        raise ConfigError(f"{source}: give a colour for every class or for none")
    if len(set(given)) != len(given):
        raise ConfigError(f"{source}: two classes share a colour")
    return given


def _ignore_options(
    data: Mapping[str, Any], values: list[int], given: list[RGB], source: str
) -> tuple[list[Any], tuple[RGB, ...], Any]:
    """``ignore_values``, ``ignore_colors`` and ``unknown``, checked against the classes."""
    ignore_values = data.get("ignore_values", [IGNORE_INDEX])
    if not isinstance(ignore_values, list) or not all(
        isinstance(v, int) and v >= 0 for v in ignore_values
    ):
        raise ConfigError(f"{source}: 'ignore_values' must be a list of non-negative integers")
    clash = sorted(set(ignore_values) & set(values))
    if clash:
        raise ConfigError(f"{source}: value(s) {clash} are both a class and an ignore value")
    raw_ignore_colors = data.get("ignore_colors", [])
    if not isinstance(raw_ignore_colors, list):
        raise ConfigError(f"{source}: 'ignore_colors' must be a list of [r, g, b] colours")
    ignore_colors = tuple(_color(c, f"{source}: ignore_colors") for c in raw_ignore_colors)
    if set(ignore_colors) & set(given):
        raise ConfigError(f"{source}: a colour is both a class colour and an ignore colour")
    unknown = data.get("unknown", "error")
    if unknown not in UNKNOWN_MODES:
        raise ConfigError(f"{source}: 'unknown' must be one of {UNKNOWN_MODES}, got {unknown!r}")
    return ignore_values, ignore_colors, unknown


def parse_classes(data: Any, source: str = "<classes file>") -> ClassSpec:
    """Validate classes-file content (see :mod:`als4gan.data.folder`) into a :class:`ClassSpec`.

    Raises:
        ConfigError: Naming ``source`` and what to fix.
    """
    entries = _class_entries(data, source)
    names, values, colors = _parse_entries(entries, source)
    given = _checked_colors(names, values, colors, source)
    ignore_values, ignore_colors, unknown = _ignore_options(data, values, given, source)
    extra = set(data) - _FILE_KEYS
    if extra:
        raise ConfigError(f"{source}: unknown key(s) {sorted(extra)}")
    table_colors = tuple(given) if given else tuple(default_colors(len(names)))
    return ClassSpec(
        table=ClassTable(names=tuple(names), colors=table_colors),
        values=tuple(values),
        has_colors=bool(given),
        ignore_values=tuple(int(v) for v in ignore_values),
        ignore_colors=ignore_colors,
        unknown=str(unknown),
        source=source,
    )


def load_classes_file(path: str | Path) -> ClassSpec:
    """Read and validate a YAML or JSON classes file.

    Raises:
        DatasetNotFoundError: If it does not exist.
        ConfigError: If it is malformed (the message names the file and the problem).
    """
    file = Path(path)
    if not file.is_file():
        raise DatasetNotFoundError(f"classes file {file} does not exist. {CLASSES_HELP}")
    try:
        data = read_json(file) if file.suffix.lower() == ".json" else read_yaml(file)
    except Exception as err:  # yaml.YAMLError, JSONDecodeError, UnicodeDecodeError
        raise ConfigError(f"classes file {file} could not be parsed: {err}") from None
    return parse_classes(data, str(file))


__all__ = [
    "CLASSES_FILE_NAMES",
    "UNKNOWN_MODES",
    "ClassSpec",
    "default_colors",
    "load_classes_file",
    "parse_classes",
]
