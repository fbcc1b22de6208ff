"""Typed configuration: dataclasses that become CLI flags, read YAML, and write resolved YAML.

Each command describes its options once, as a dataclass whose fields are declared with
:func:`option`. :func:`add_config_arguments` turns the fields into ``--flags`` (with their help
text and defaults), and :func:`resolve_config` merges, in increasing priority: the dataclass
defaults, a ``--config FILE`` YAML, and the flags given on the command line. The resolved
config is what every run folder records (``config.yaml``).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from als4gan.errors import ConfigError
from als4gan.io import read_yaml

T = TypeVar("T")


def option(
    default: Any,
    help: str,
    *,
    choices: Iterable[Any] | None = None,
    metavar: str | None = None,
    cli: bool = True,
) -> Any:
    """Declare a config field with its CLI help.

    Args:
        default: Default value (lists/tuples are copied per instance).
        help: One-line description shown by ``--help``.
        choices: Allowed values, checked on the CLI and when resolving.
        metavar: Placeholder name in ``--help``.
        cli: Whether the field becomes a command-line flag (otherwise config-file only).

    Returns:
        A :func:`dataclasses.field`.
    """
    metadata = {
        "help": help,
        "choices": tuple(choices) if choices is not None else None,
        "metavar": metavar,
        "cli": cli,
    }
    if isinstance(default, list | dict):
        copy = type(default)(default)
        return dataclasses.field(default_factory=lambda: type(copy)(copy), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """Return (inner type, is_optional) for ``X | None``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(tp) if arg is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _none_or(convert: Any) -> Any:
    def parse(text: str) -> Any:
        return None if text.lower() in ("none", "null") else convert(text)

    parse.__name__ = getattr(convert, "__name__", "value")
    return parse


def add_config_arguments(
    parser: argparse.ArgumentParser,
    config_cls: type[Any],
    *,
    exclude: Iterable[str] = (),
    title: str | None = None,
) -> None:
    """Add one ``--flag`` per field of ``config_cls`` to ``parser``.

    Flags default to "not given" (``argparse.SUPPRESS``) so that :func:`resolve_config` can tell
    an explicit flag from a default and let a config file sit in between.

    Args:
        parser: Parser of the sub-command.
        config_cls: A dataclass whose fields were declared with :func:`option`.
        exclude: Field names not to expose.
        title: Optional argument-group title for ``--help``.
    """
    group = parser.add_argument_group(title) if title else parser
    hints = typing.get_type_hints(config_cls)
    skip = set(exclude)
    for field in dataclasses.fields(config_cls):
        if field.name in skip or not field.metadata.get("cli", True):
            continue
        tp, optional = _unwrap_optional(hints[field.name])
        default = (
            field.default if field.default is not dataclasses.MISSING else field.default_factory()  # type: ignore[operator]
        )
        help_text = field.metadata.get("help", "")
        help_text = f"{help_text} (default: {_show(default)})".replace("%", "%%")
        kwargs: dict[str, Any] = {
            "default": argparse.SUPPRESS,
            "help": help_text,
            "dest": field.name,
        }
        if field.metadata.get("metavar"):
            kwargs["metavar"] = field.metadata["metavar"]
        origin = typing.get_origin(tp)
        if tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif origin in (list, tuple):
            args = typing.get_args(tp)
            item = args[0] if args else str
            kwargs["type"] = item
            kwargs["nargs"] = len(args) if origin is tuple and Ellipsis not in args else "+"
        else:
            kwargs["type"] = _none_or(tp) if optional else tp
        choices = field.metadata.get("choices")
        if choices:
            kwargs["choices"] = choices
        group.add_argument(_flag(field.name), **kwargs)


def _show(value: Any) -> str:
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value)
    return str(value)


def config_from_dict(config_cls: type[T], data: Mapping[str, Any], source: str = "config") -> T:
    """Build ``config_cls`` from a mapping, rejecting unknown keys and bad choices.

    Args:
        config_cls: Target dataclass.
        data: Field values; missing fields take their defaults.
        source: Where the values came from, for error messages.

    Returns:
        The config instance.

    Raises:
        ConfigError: On an unknown key, a value of the wrong type or a value not in ``choices``.
    """
    fields = {field.name: field for field in dataclasses.fields(config_cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{source}: unknown option(s) {', '.join(unknown)}. "
            f"Valid options: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(config_cls)
    values: dict[str, Any] = {}
    for name, value in data.items():
        values[name] = _coerce(value, hints[name], f"{source}: option '{name}'")
        choices = fields[name].metadata.get("choices")
        if choices and values[name] not in choices and values[name] is not None:
            raise ConfigError(
                f"{source}: option '{name}' must be one of {', '.join(map(str, choices))}, "
                f"got {values[name]!r}"
            )
    return config_cls(**values)


def _coerce(value: Any, tp: Any, where: str) -> Any:
    inner, optional = _unwrap_optional(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{where} may not be empty")
    origin = typing.get_origin(inner)
    try:
        if inner is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
                return value.lower() in ("true", "yes", "1")
            raise ValueError(value)
        if origin in (list, tuple):
            if isinstance(value, str | int | float):
                value = [value]
            args = typing.get_args(inner)
            item = args[0] if args else str
            items = [item(v) for v in value]
            if origin is tuple and Ellipsis not in args and len(items) != len(args):
                raise ValueError(f"expected {len(args)} values")
            return tuple(items) if origin is tuple else items
        if inner is float and isinstance(value, int | float | str):
            return float(value)
        if inner is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if inner is str:
            return str(value)
        return value
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where} has an invalid value {value!r} ({err})") from None


def resolve_config(
    config_cls: type[T],
    args: argparse.Namespace | None = None,
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> T:
    """Merge defaults < YAML file < explicit CLI flags < ``overrides`` into a config.

    Args:
        config_cls: Target dataclass.
        args: Parsed CLI namespace (only fields present in it, i.e. given explicitly, count).
        config_file: Optional YAML file. A file written by a run (with extra top-level sections)
            may be given: only the keys of ``config_cls`` are read when the file has a
            top-level key named like the section (see ``section``), otherwise all keys.
        overrides: Final values set by code.

    Returns:
        The resolved config.
    """
    merged: dict[str, Any] = {}
    names = {field.name for field in dataclasses.fields(config_cls)}  # type: ignore[arg-type]
    source = "config"
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        loaded = read_yaml(path) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping of option: value")
        merged.update(loaded)
        source = str(path)
    if args is not None:
        merged.update({k: v for k, v in vars(args).items() if k in names})
        if any(k in names for k in vars(args)):
            source = f"{source} / command line" if config_file else "command line"
    if overrides:
        merged.update(overrides)
    return config_from_dict(config_cls, merged, source=source)


def config_to_dict(config: Any) -> dict[str, Any]:
    """Plain-data view of a config dataclass (tuples become lists), for YAML/JSON."""
    data = dataclasses.asdict(config)
    return {key: list(value) if isinstance(value, tuple) else value for key, value in data.items()}


# ----------------------------------------------------------------------------- from a mapping
def did_you_mean(name: str, valid: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``valid`` to ``name``, else ``""``."""
    import difflib

    close = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_keys(keys: Iterable[str], valid: Iterable[str], where: str) -> None:
    """Refuse keys not in ``valid``, suggesting the closest valid one.

    Raises:
        ConfigError: ``"<where>: unknown option(s) a, b (did you mean ...?); valid: ..."``.
    """
    names = sorted(set(valid))
    unknown = sorted(set(keys) - set(names))
    if unknown:
        hint = did_you_mean(unknown[0], names)
        raise ConfigError(
            f"{where}: unknown option(s) {', '.join(unknown)}{hint}; valid: {', '.join(names)}"
        )


def _convert_item(item: Any, value: Any, flag: str) -> Any:
    """One value converted as argparse converts the text of a flag (``int("4.0")`` fails)."""
    if isinstance(value, bool) and item is not bool and item is not str:
        raise ConfigError(f"argument {flag}: invalid {item.__name__} value: {value!r}")
    try:
        return value if item is str and isinstance(value, str) else item(str(value))
    except (TypeError, ValueError):
        name = getattr(item, "__name__", "value")
        raise ConfigError(f"argument {flag}: invalid {name} value: {str(value)!r}") from None


def option_value(tp: Any, value: Any, flag: str) -> Any:
    """``value`` (from YAML or Python) checked and converted like the command line's ``flag``.

    The same types as the flags made by :func:`add_config_arguments`: a ``bool`` must be true or
    false, ``X | None`` takes ``None`` (or ``"none"``), a list takes one value or a list, a tuple
    exactly its number of values; numbers are read from their text, so ``4.0`` is not an int.

    Raises:
        ConfigError: In argparse's words, e.g. ``argument --iterations: invalid int value: 'x'``.
    """
    inner, optional = _unwrap_optional(tp)
    if value is None or (optional and isinstance(value, str) and value.lower() in ("none", "null")):
        if optional:
            return None
        raise ConfigError(f"argument {flag}: expected a value, got none")
    origin = typing.get_origin(inner)
    if inner is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"argument {flag}: expected true or false, got {value!r}")
        return value
    if origin in (list, tuple):
        args = [arg for arg in typing.get_args(inner) if arg is not Ellipsis]
        item = args[0] if args else str
        values = list(value) if isinstance(value, list | tuple) else [value]
        fixed = origin is tuple and Ellipsis not in typing.get_args(inner)
        if (fixed and len(values) != len(args)) or not values:
            count = len(args) if fixed else "at least one"
            raise ConfigError(f"argument {flag}: expected {count} argument(s), got {values!r}")
        return [_convert_item(item, v, flag) for v in values]
    return _convert_item(inner, value, flag)


def build_config(
    config_cls: type[T],
    data: Mapping[str, Any],
    source: str = "config",
    *,
    base: Mapping[str, Any] | None = None,
    validate: bool = True,
) -> T:
    """A typed config from a mapping (a YAML section, a Python dict), checked like the CLI.

    Keys may use ``-`` or ``_`` (``crop-size`` = ``crop_size``). An unknown key is refused with
    the valid ones and the closest match; each value is converted and checked as the matching
    ``--flag`` would be (types, number of values, ``choices``); then the config's own
    ``validate()`` runs, if it has one.

    Args:
        config_cls: Target dataclass (fields declared with :func:`option`).
        data: Option values; missing options take their defaults.
        source: Where the values came from, for error messages.
        base: Values set by code before ``data`` (e.g. a grid cell's seed), checked the same way.
        validate: Whether to call ``validate()``.

    Returns:
        The config instance.

    Raises:
        ConfigError: Naming ``source``, the option and what is allowed.
    """
    fields = {field.name: field for field in dataclasses.fields(config_cls)}  # type: ignore[arg-type]
    merged = {str(key).replace("-", "_"): value for key, value in (base or {}).items()}
    given = {str(key).replace("-", "_"): value for key, value in data.items()}
    check_keys(given, fields, source)
    merged.update(given)
    hints = typing.get_type_hints(config_cls)
    values: dict[str, Any] = {}
    for name, value in merged.items():
        flag = _flag(name)
        try:
            values[name] = option_value(hints[name], value, flag)
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}") from None
        choices = fields[name].metadata.get("choices")
        if choices and values[name] is not None and values[name] not in choices:
            names = [str(choice) for choice in choices]
            raise ConfigError(
                f"{source}: argument {flag}: invalid choice: {values[name]!r}"
                f"{did_you_mean(str(values[name]), names)}; choose from {', '.join(names)}"
            )
    config = config_from_dict(config_cls, values, source=source)
    check = getattr(config, "validate", None)
    if validate and callable(check):
        try:
            check()
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}") from None
    return config
