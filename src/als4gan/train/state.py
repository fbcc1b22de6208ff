"""Random-number-generator state as plain data, so checkpoints load with ``weights_only=True``.

The trainer draws its data order and augmentation from explicit seeds (see
:mod:`als4gan.train.samplers`); the global generators still drive dropout (in D) and any
third-party code, so their states go into checkpoints too. NumPy's state array is stored as a
list of ints (not an ndarray, which ``weights_only`` loading refuses).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def _to_lists(value: Any) -> Any:
    """Tuples -> lists, recursively (plain data that any loader accepts)."""
    if isinstance(value, tuple | list):
        return [_to_lists(item) for item in value]
    return value


def _to_tuples(value: Any) -> Any:
    """Lists -> tuples, recursively (what :func:`random.setstate` expects)."""
    if isinstance(value, list):
        return tuple(_to_tuples(item) for item in value)
    return value


def capture_rng_state() -> dict[str, Any]:
    """The states of Python's, NumPy's and torch's (CPU and CUDA) global generators."""
    kind, keys, position, has_gauss, cached_gauss = np.random.get_state()  # noqa: NPY002
    state: dict[str, Any] = {
        "python": _to_lists(random.getstate()),
        "numpy": {
            "kind": str(kind),
            "keys": [int(key) for key in keys],
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gauss": float(cached_gauss),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():  # type: ignore[no-untyped-call]
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`capture_rng_state` returned (CUDA states only when CUDA is used)."""
    random.setstate(_to_tuples(state["python"]))
    numpy_state = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        (
            numpy_state["kind"],
            np.asarray(numpy_state["keys"], dtype=np.uint32),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["cached_gauss"],
        )
    )
    torch.set_rng_state(state["torch"])
    cuda_states = state.get("cuda")
    if cuda_states and torch.cuda.is_available():
        count = min(len(cuda_states), torch.cuda.device_count())
        for index in range(count):
            torch.cuda.set_rng_state(cuda_states[index], index)
