"""ALS4GAN: active learning for label-efficient semi-supervised segmentation of satellite images.

The Python API is :mod:`als4gan.api`: one function per stage (``api.prepare``, ``api.select``,
``api.train``, ``api.evaluate``, ``api.predict``, ``api.report``, ``api.run``), each taking a
typed config (docs/api.md). The configs and results are also reachable from here
(``als4gan.TrainConfig``, ...). Everything is loaded on first use, so ``import als4gan`` and
``als4gan --help`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: Names re-exported from :mod:`als4gan.api` (loaded on first access). The stage functions
#: themselves are not: ``als4gan.train``, ``als4gan.evaluate``, ``als4gan.predict`` and
#: ``als4gan.report`` are the modules that implement those stages.
_API_NAMES = (
    "EvaluateConfig",
    "EvaluateResult",
    "ExperimentResult",
    "ExperimentSpec",
    "PredictConfig",
    "PredictResult",
    "PrepareConfig",
    "PrepareResult",
    "ReportConfig",
    "ReportResult",
    "RunConfig",
    "SelectConfig",
    "SelectResult",
    "TrainConfig",
    "TrainResult",
    "build_config",
    "load_experiment",
)

__all__ = ["__version__", "api", *_API_NAMES]


def __getattr__(name: str) -> Any:
    if name == "api":
        return importlib.import_module("als4gan.api")
    if name in _API_NAMES:
        return getattr(importlib.import_module("als4gan.api"), name)
    raise AttributeError(f"module 'als4gan' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | {"api", *_API_NAMES})
