"""Active selection: which images to label under a budget (stage 1 of docs/method.md).

* :mod:`~als4gan.active.budget`: the exact budget arithmetic (B, n0, q, round sizes);
* :mod:`~als4gan.active.strategies`: query strategies (registry, higher score = labelled first);
* :mod:`~als4gan.active.acquisition`: classifier / segmentation acquisition models;
* :mod:`~als4gan.active.pool`: the labelled / unlabelled pool state (saved every round);
* :mod:`~als4gan.active.loop`: the selection loop writing ``RUN_DIR/selection/``;
* :mod:`~als4gan.active.sheet`: class histograms and the contact sheet.

Only torch-free modules are imported here, so ``als4gan --help`` stays fast.
"""

from __future__ import annotations

from als4gan.active.budget import BudgetPlan, plan_budget
from als4gan.active.config import SelectConfig
from als4gan.active.pool import PoolState

__all__ = ["BudgetPlan", "PoolState", "SelectConfig", "plan_budget"]
