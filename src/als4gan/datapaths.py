"""Data locations in experiment configs: ``${ALS4GAN_DATA:-default}`` and ``--data-root``.

A shipped config cannot know where a user keeps the datasets, so its paths may name an
environment variable, shell-style: ``${NAME}`` (must be set) or ``${NAME:-default}`` (the default
when it is unset or empty). ``als4gan run CONFIG --data-root DIR`` sets ``ALS4GAN_DATA`` for that
run, overriding the environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from als4gan.errors import ConfigError

#: The variable the shipped configs use for the folder that holds the datasets.
DATA_ENV = "ALS4GAN_DATA"

_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def expand_variables(text: str, environ: Mapping[str, str] | None = None, where: str = "") -> str:
    """Replace ``${NAME}`` and ``${NAME:-default}`` in ``text`` from ``environ``.

    Args:
        text: A value from a config file.
        environ: Variables (default: ``os.environ``).
        where: Where the value comes from, for the error message (e.g. ``"config.yaml: src"``).

    Raises:
        ConfigError: If a ``${NAME}`` without default is not set.
    """
    env = os.environ if environ is None else environ

    def replace(match: re.Match[str]) -> str:
        name, default = match.group("name"), match.group("default")
        value = env.get(name, "")
        if value:
            return value
        if default is not None:
            return default
        hint = " or pass --data-root DIR" if name == DATA_ENV else ""
        raise ConfigError(
            f"{where or text}: uses ${{{name}}}, which is not set; export {name}=DIR{hint}"
        )

    return _VARIABLE.sub(replace, text)


def missing_data_message(path: str, where: str, uses_variable: bool) -> str:
    """The error for a dataset folder that does not exist, saying how to point at it."""
    how = (
        f"pass --data-root DIR (or export {DATA_ENV}=DIR) naming the folder that holds it"
        if uses_variable
        else "fix the path in the config"
    )
    return (
        f"{where}: dataset folder {path} does not exist; {how}. Where each dataset comes from "
        "and what it must contain: docs/data.md#where-the-datasets-come-from"
    )


__all__ = ["DATA_ENV", "expand_variables", "missing_data_message"]
