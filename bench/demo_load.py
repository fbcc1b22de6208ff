"""The demo under ordinary load: ``als4gan demo`` (or ``make demo`` in a clone) beside a busy core.

A user's machine is never idle. This runs the demo while another process keeps one core busy
(a pure-Python loop, pinned to core 0 where ``os.sched_setaffinity`` exists) and prints the
demo's wall time, its CPU time (the demo and every process it waited for), its peak RSS (the
largest of them, from ``os.wait4``), how much CPU the busy loop got, and the demo's own time
split (the "time split" lines it prints at the end: selection, training, evaluation, report).

    python bench/demo_load.py                       # als4gan demo into a temporary folder
    python bench/demo_load.py --clone /tmp/fresh     # make demo in a fresh clone (install too)
    python bench/demo_load.py --quick                # the harness only, with a short command
    python bench/demo_load.py -- --seeds 1           # options after -- go to 'als4gan demo'

With ``--clone`` give a fresh clone (no ``.venv``): its install (``pip``, which needs the
package index) is then part of the measured time, as for a user typing ``make demo``.

The last line is ``RESULT key=value ...``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: The busy loop: pin to core 0 when the platform allows, then spin until killed.
BUSY_LOOP = (
    "import os\n"
    "if hasattr(os, 'sched_setaffinity'):\n"
    "    try:\n"
    "        os.sched_setaffinity(0, {0})\n"
    "    except OSError:\n"
    "        pass\n"
    "x = 0\n"
    "while True:\n"
    "    x = (x + 1) % 1000003\n"
)

#: A stand-in for the demo in ``--quick``: a second of CPU work, then a split like the demo's.
QUICK_COMMAND = (
    "import time\n"
    "from als4gan.timing import StageTimer\n"
    "timer = StageTimer()\n"
    "start = time.monotonic()\n"
    "for stage in ('select', 'train', 'evaluate', 'report'):\n"
    "    t = time.monotonic()\n"
    "    while time.monotonic() - t < 0.25:\n"
    "        sum(range(1000))\n"
    "    timer.add(stage, time.monotonic() - t)\n"
    "print(timer.describe(time.monotonic() - start))\n"
)

_SPLIT_LINE = re.compile(r"^\s+(\S+)\s+([0-9.]+) s\s+([0-9.]+)%")


def parse_split(output: str) -> dict[str, float]:
    """Stage -> wall seconds from the "time split" block of the demo's output (empty if none)."""
    split: dict[str, float] = {}
    inside = False
    for line in output.splitlines():
        if line.startswith("time split"):
            inside, split = True, {}
            continue
        match = _SPLIT_LINE.match(line) if inside else None
        if match:
            split[match.group(1)] = float(match.group(2))
        elif inside:
            inside = False
    return split


def start_busy(cores: int) -> list[subprocess.Popen[bytes]]:
    """``cores`` busy-loop processes (the first pinned to core 0 where possible)."""
    busy = []
    for index in range(cores):
        code = BUSY_LOOP if index == 0 else BUSY_LOOP.replace("{0}", f"{{{index}}}")
        busy.append(subprocess.Popen([sys.executable, "-c", code]))
    return busy


def stop_busy(busy: list[subprocess.Popen[bytes]]) -> float:
    """Stop the busy loops; the CPU seconds they got."""
    cpu = 0.0
    for proc in busy:
        proc.terminate()
        _, _, usage = os.wait4(proc.pid, 0)
        proc.returncode = 0
        cpu += usage.ru_utime + usage.ru_stime
    return cpu


def run_measured(command: list[str], cwd: Path | None, env: dict[str, str]) -> dict[str, Any]:
    """Run ``command`` (its output passed through); wall, CPU, peak RSS and the output."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert proc.stdout is not None
    lines = []
    for raw in proc.stdout:
        line = raw.decode(errors="replace")
        sys.stdout.write(line)
        sys.stdout.flush()
        lines.append(line)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "returncode": proc.returncode,
        "wall_s": time.perf_counter() - start,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "max_rss_mb": usage.ru_maxrss / 1024.0,
        "output": "".join(lines),
    }


def build_command(args: argparse.Namespace, tmp: Path) -> tuple[list[str], Path | None]:
    """The measured command and its working folder."""
    if args.quick:
        return [sys.executable, "-c", QUICK_COMMAND], None
    if args.clone:
        demo_args = " ".join(["--out", str(tmp / "demo"), *args.demo_args])
        return ["make", "demo", f"DEMO_ARGS={demo_args}"], Path(args.clone)
    demo = [sys.executable, "-m", "als4gan", "demo", "--out", str(tmp / "demo")]
    return [*demo, *args.demo_args], None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="harness only: a short command")
    parser.add_argument("--clone", default=None, help="run 'make demo' in this clone")
    parser.add_argument("--busy", type=int, default=1, help="busy cores beside the demo (1)")
    parser.add_argument("--keep", action="store_true", help="keep the demo's run folder")
    parser.add_argument(
        "demo_args", nargs="*", help="extra options of 'als4gan demo' (after --)", default=[]
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the demo beside the busy loop(s); print the figures and the RESULT line."""
    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="demo_load_"))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if not args.clone:
        source = str(Path(__file__).resolve().parents[1] / "src")
        env["PYTHONPATH"] = os.pathsep.join([source, os.environ.get("PYTHONPATH", "")])
    command, cwd = build_command(args, tmp)
    load = os.getloadavg()
    shown = "a short stand-in (--quick)" if args.quick else " ".join(command)
    print(f"machine: {os.cpu_count()} CPUs, load average before {load[0]:.2f}; {args.busy} "
          f"busy core(s); command: {shown}", flush=True)  # fmt: skip
    busy = start_busy(args.busy)
    try:
        outcome = run_measured(command, cwd, env)
    finally:
        busy_cpu = stop_busy(busy)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    if outcome["returncode"] != 0:
        raise SystemExit(f"the measured command failed (exit {outcome['returncode']})")
    split = parse_split(outcome["output"])
    wall = outcome["wall_s"]
    print(
        f"wall {wall:.1f} s ({wall / 60:.1f} min), CPU {outcome['cpu_s']:.1f} s, peak RSS "
        f"{outcome['max_rss_mb']:.0f} MB; the busy loop got {busy_cpu:.1f} CPU s "
        f"({100 * busy_cpu / max(wall, 1e-9):.0f}% of one core)"
    )
    if split:
        print("demo's split: " + ", ".join(f"{k} {v:.1f} s" for k, v in split.items()))
    else:
        print("the command printed no time split")
    results: dict[str, Any] = {
        "wall_s": round(wall, 1),
        "cpu_s": round(outcome["cpu_s"], 1),
        "max_rss_mb": round(outcome["max_rss_mb"]),
        "busy_cpu_s": round(busy_cpu, 1),
        **{f"split_{k}_s": round(v, 1) for k, v in split.items()},
    }
    print("RESULT " + " ".join(f"{key}={value}" for key, value in results.items()), flush=True)
    return results


if __name__ == "__main__":
    main()
