"""The training methods (registry): ``--method`` name -> :class:`Method` subclass.

A new method is one new module with a :class:`~als4gan.train.methods.base.Method` subclass,
added to :data:`METHOD_CLASSES` (and its name to ``METHODS`` in :mod:`als4gan.train.config`).
"""

from __future__ import annotations

from als4gan.errors import ConfigError
from als4gan.train.config import METHODS, TrainConfig
from als4gan.train.methods.base import Method
from als4gan.train.methods.s4gan import S4GAN
from als4gan.train.methods.supervised import Supervised
from als4gan.train.methods.unimatch import UniMatch

#: ``--method`` name -> its class.
METHOD_CLASSES: dict[str, type[Method]] = {cls.name: cls for cls in (S4GAN, Supervised, UniMatch)}
assert tuple(sorted(METHOD_CLASSES)) == tuple(sorted(METHODS)), "config.METHODS out of date"


def build_method(config: TrainConfig) -> Method:
    """The method ``config.method`` names, checked against the config's options.

    Raises:
        ConfigError: On an unknown name (lists the choices) or options the method cannot use.
    """
    if config.method not in METHOD_CLASSES:
        raise ConfigError(
            f"unknown method '{config.method}'. Choose one of: {', '.join(METHOD_CLASSES)}"
        )
    method = METHOD_CLASSES[config.method](config)
    method.check(config)
    return method


__all__ = ["METHOD_CLASSES", "Method", "build_method"]
