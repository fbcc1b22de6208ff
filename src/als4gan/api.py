"""The Python API: one function per stage, each taking a typed config and returning a result.

.. code-block:: python

    from als4gan import api

    api.prepare(api.PrepareConfig(kind="synthetic", out="data/syn", num_images=60))
    config = api.build_config(api.SelectConfig, {"root": "data/syn", "budget": 6})
    api.select(config, "runs/a")

The command line (``als4gan <stage>``) parses its flags into the same configs and calls the same
functions, and :func:`run` calls them for every cell of a grid; docs/api.md is the
reference, with a runnable example. Importing this module imports no torch: each function does,
when called.
"""

from __future__ import annotations

from als4gan.active.config import SelectConfig
from als4gan.config import build_config, config_to_dict
from als4gan.experiment import ExperimentResult, ExperimentSpec, load_experiment
from als4gan.stages.evaluate import EvaluateConfig, EvaluateResult, evaluate
from als4gan.stages.predict import PredictConfig, PredictResult, predict
from als4gan.stages.prepare import PrepareConfig, PrepareResult, prepare, prepare_config
from als4gan.stages.report import ReportConfig, ReportResult, report
from als4gan.stages.run import RunConfig, run
from als4gan.stages.select import SelectResult, select, selection_status
from als4gan.stages.train import TrainResult, resumed_config, train
from als4gan.train.config import TrainConfig

#: The stage functions, in the order a user runs them.
STAGES = ("prepare", "select", "train", "evaluate", "predict", "report", "run")

__all__ = [
    "STAGES",
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
    "config_to_dict",
    "evaluate",
    "load_experiment",
    "predict",
    "prepare",
    "prepare_config",
    "report",
    "resumed_config",
    "run",
    "select",
    "selection_status",
    "train",
]
