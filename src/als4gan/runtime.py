"""Runtime helpers: device choice, mixed precision, seeding and progress bars."""

from __future__ import annotations

import contextlib
import functools
import os
import random
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

import numpy as np
import torch
from tqdm.auto import tqdm

from als4gan.errors import ConfigError
from als4gan.progress import PlainProgress, stream_is_terminal

T = TypeVar("T")


def resolve_device(name: str = "auto") -> torch.device:
    """Turn ``auto``/``cpu``/``cuda``/``cuda:N``/``mps`` into a device, checking availability.

    Raises:
        ConfigError: If the requested accelerator is not available.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name} was requested but CUDA is not available here; use cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"--device {name} was requested but MPS is not available here; use cpu")
    return device


def bf16_is_fast(device: torch.device) -> bool:
    """Whether bf16 autocast is expected to speed this device up.

    On CUDA this needs native bf16 (Ampere or newer). On CPU ``auto`` always keeps fp32: without
    AVX-512 BF16 or AMX oneDNN emulates bf16 and runs slower than fp32 (measured 2.6x-4.5x slower
    on an AVX-512 CPU without BF16), and with them bf16 results depend on the CPU model and on
    how images are batched, so the same seed would give different numbers on different
    machines. ``--amp bf16`` still turns it on.
    """
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return False


def resolve_amp(mode: str, device: torch.device) -> bool:
    """Resolve ``auto``/``bf16``/``off`` to whether bf16 autocast is used."""
    if mode == "auto":
        return bf16_is_fast(device)
    if mode == "bf16":
        return True
    if mode in ("off", "fp32", "none"):
        return False
    raise ConfigError(f"amp must be one of auto, bf16, off; got {mode!r}")


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on ``device`` when ``enabled``, otherwise a no-op context."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def use_channels_last(mode: str, device: torch.device) -> bool:
    """Resolve ``auto``/``on``/``off``: channels_last helps convolutions on CPU and CUDA."""
    if mode == "auto":
        return device.type in ("cpu", "cuda")
    return mode == "on"


#: cuBLAS workspace setting that makes its matrix products reproducible (PyTorch reproducibility
#: notes); it must be in the environment before the first cuBLAS call of the process.
CUBLAS_WORKSPACE = ":4096:8"

#: Why ``--deterministic`` on CUDA only warns for some operations.
NONDETERMINISTIC_CUDA_NOTE = (
    "--deterministic on CUDA: cuDNN autotuning is off, cuBLAS uses a fixed workspace "
    "(CUBLAS_WORKSPACE_CONFIG={workspace}) and every operation that has a deterministic CUDA "
    "kernel uses it. The discriminator's adaptive average pooling and the bilinear upsampling "
    "of the logits have no deterministic CUDA backward pass; they keep their fast kernels and "
    "PyTorch warns about them, so two CUDA runs can still differ slightly (see "
    "docs/training.md). CPU runs are exactly reproducible."
)


def configure_determinism(enabled: bool, device: torch.device) -> None:
    """Make training as reproducible as ``device`` allows (``--deterministic``).

    On CPU every operation is deterministic already; ``torch.use_deterministic_algorithms``
    is switched on strictly. On CUDA, ``CUBLAS_WORKSPACE_CONFIG`` is set (unless the user set
    it), cuDNN benchmarking is off and deterministic algorithms are required with
    ``warn_only=True``: operations without a deterministic CUDA backward (adaptive average
    pooling, bilinear upsampling) would otherwise stop training at the first step.

    Args:
        enabled: Whether ``--deterministic`` was given.
        device: The training device.
    """
    if not enabled:
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        return
    if device.type == "cuda":
        import logging

        workspace = os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True, warn_only=True)
        logging.getLogger("als4gan.train").warning(
            NONDETERMINISTIC_CUDA_NOTE.format(workspace=workspace)
        )
        return
    torch.use_deterministic_algorithms(True)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch global generators (for code outside our explicit generators)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))  # noqa: NPY002 - seeds legacy global users
    torch.manual_seed(seed)


def derive_seed(*parts: int | str) -> int:
    """A stable 63-bit seed from several parts (independent of PYTHONHASHSEED)."""
    import hashlib

    digest = hashlib.sha256("/".join(str(part) for part in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def progress(
    iterable: Iterable[T] | None = None,
    *,
    total: int | None = None,
    desc: str = "",
    disable: bool | None = None,
    unit: str = "it",
    **kwargs: Any,
) -> Any:
    """A progress bar on stderr; hidden when ``ALS4GAN_NO_PROGRESS=1``.

    On a terminal this is a tqdm bar. When stderr is not a terminal (redirected to a file, a
    batch job's log) it is a :class:`als4gan.progress.PlainProgress`: one plain line every tenth
    of the total instead of a redrawn bar, so the log holds no cursor-movement codes.
    """
    if disable is None:
        disable = os.environ.get("ALS4GAN_NO_PROGRESS", "0") == "1"
    if not disable and not stream_is_terminal(sys.stderr):
        return PlainProgress(
            iterable,
            total=total,
            desc=desc,
            unit=unit,
            initial=int(kwargs.get("initial", 0)),
            leave=bool(kwargs.get("leave", True)),
        )
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        disable=disable,
        unit=unit,
        dynamic_ncols=True,
        file=sys.stderr,
        **kwargs,
    )


def batched(items: list[T], size: int) -> Iterator[list[T]]:
    """Yield consecutive chunks of ``items`` of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _cpu_times() -> tuple[float, float] | None:
    """``(idle, total)`` jiffies of all CPUs from ``/proc/stat`` (None where it is missing)."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [float(value) for value in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    if len(fields) < 5:
        return None
    return fields[3] + fields[4], sum(fields[:8])  # idle + iowait; user .. steal


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask; all CPUs where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def idle_cores(interval: float = 0.5) -> tuple[int, float, int]:
    """How many of this process's cores are idle now: ``(threads to use, idle cores, cores)``.

    Samples the machine's CPU times twice, ``interval`` seconds apart; the threads to use are
    the idle cores rounded, at least 1 and at most the cores this process may run on. Where
    ``/proc/stat`` is missing (not Linux) every core counts as idle.
    """
    usable = usable_cores()
    first = _cpu_times()
    time.sleep(interval)
    second = _cpu_times()
    if first is None or second is None or second[1] <= first[1]:
        return usable, float(usable), usable
    machine = os.cpu_count() or usable
    idle = machine * (second[0] - first[0]) / (second[1] - first[1])
    return max(1, min(usable, round(idle))), idle, usable


def set_threads(threads: int) -> None:
    """Let torch use ``threads`` CPU threads for intra-op work (and at most that many inter-op).

    The inter-op pool can only be sized before torch first uses it; later calls keep its size.
    """
    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)


def default_num_workers() -> int:
    """DataLoader workers: one less than the CPUs available to this process, at most 8."""
    return max(0, min(8, usable_cores() - 1))


#: Device types on which ``--compile auto`` compiles. Empty: on this project's 2-core CPU the
#: compiled DeepLab-v2 step measured no faster than eager (docs/training.md, "Speed") after a
#: warm-up of minutes, and GPUs have not been measured; ``--compile on`` still compiles.
COMPILE_FASTER_ON: frozenset[str] = frozenset()

_COMPILE_LOG = "als4gan.runtime"


def compile_unavailable(device: torch.device) -> str | None:
    """Why ``torch.compile`` cannot run on ``device`` here (None: it can).

    Checks what is known before compiling: torch.compile itself, the Python version it
    supports, and on CPU a C++ compiler (its code generator builds C++ kernels).
    """
    import shutil

    if not hasattr(torch, "compile"):
        return f"torch {torch.__version__} has no torch.compile"
    try:
        import torch._dynamo as dynamo
    except ImportError as err:  # pragma: no cover - broken installation
        return f"torch.compile cannot be imported ({err})"
    supported = getattr(dynamo, "is_dynamo_supported", lambda: True)
    if not supported():
        return f"torch.compile does not support Python {sys.version.split()[0]} in this torch"
    if device.type == "cpu":
        compilers = [os.environ.get("CXX", ""), "g++", "c++", "clang++"]
        if not any(name and shutil.which(name) for name in compilers):
            return "no C++ compiler found (install g++ or set CXX)"
    return _compile_probe(device.type)


@functools.cache
def _compile_probe(device_type: str) -> str | None:
    """Compile and run a one-line function on ``device_type``: the toolchain's failure, or None."""
    try:
        probe = torch.compile(lambda x: x * 2 + 1)
        value = probe(torch.ones(4, device=device_type))
        if not bool((value == 3).all()):
            return "a compiled test function gave a wrong result"
    except Exception as err:  # any toolchain failure means: cannot compile here
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return f"compiling a test function failed: {type(err).__name__}: {first[:200]}"
    return None


def resolve_compile(mode: str, device: torch.device) -> bool:
    """Resolve ``--compile auto|on|off`` to whether networks are compiled with torch.compile.

    ``auto`` compiles only on device types where compiling was measured faster
    (:data:`COMPILE_FASTER_ON`) and where it can run; otherwise it keeps eager mode and logs
    why. ``on`` compiles, or stops with the reason it cannot.

    Raises:
        ConfigError: On an unknown mode, or ``on`` where torch.compile cannot run.
    """
    import logging

    log = logging.getLogger(_COMPILE_LOG)
    if mode == "off":
        return False
    if mode not in ("auto", "on"):
        raise ConfigError(f"compile must be one of auto, on, off; got {mode!r}")
    if mode == "auto" and device.type not in COMPILE_FASTER_ON:
        log.debug(
            "--compile auto: eager mode (compiling was not measured faster on %s; "
            "docs/training.md)",
            device.type,
        )
        return False
    reason = compile_unavailable(device)
    if mode == "on":
        if reason is not None:
            raise ConfigError(
                f"--compile on: torch.compile cannot run here: {reason}. Use --compile off "
                "(or auto, which falls back to eager mode)."
            )
        return True
    if reason is not None:
        log.warning("--compile auto: eager mode (%s)", reason)
        return False
    return True


M = TypeVar("M", bound=torch.nn.Module)


def maybe_compile(module: M, enabled: bool) -> M:
    """Compile ``module``'s forward in place when ``enabled`` (its state_dict keys unchanged).

    ``nn.Module.compile`` wraps the module's call, so checkpoints and ``load_state_dict`` see
    the same names as in eager mode. The first calls (and new input shapes or train/eval
    switches) take the compilation time.
    """
    if enabled:
        module.compile()
    return module
