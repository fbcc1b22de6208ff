"""The ``als4gan`` command: one entry point, one module per sub-command.

Each module in :mod:`als4gan.commands` defines ``HELP`` (one line), ``DESCRIPTION``,
``add_arguments(parser)`` and ``run(args) -> int``; ``run`` only builds the stage's typed config
from the flags, calls the stage function of :mod:`als4gan.api` and prints its result. Heavy
libraries (torch, matplotlib) are imported inside the stage functions, so that ``--help``, a
misspelt command and an argument error answer at once, without importing torch
(``tests/test_cli_fast.py`` checks it).
"""

from __future__ import annotations

import argparse
import difflib
import errno
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any, NoReturn

from als4gan import __version__
from als4gan.errors import Als4ganError

#: Sub-command name -> module implementing it, in the order a user runs them.
COMMANDS: dict[str, str] = {
    "prepare": "als4gan.commands.prepare",
    "data": "als4gan.commands.data",
    "select": "als4gan.commands.select",
    "train": "als4gan.commands.train",
    "evaluate": "als4gan.commands.evaluate",
    "predict": "als4gan.commands.predict",
    "report": "als4gan.commands.report",
    "run": "als4gan.commands.run",
    "demo": "als4gan.commands.demo",
    "weights": "als4gan.commands.weights",
}


#: Sub-commands that compute with torch and therefore take ``--threads``.
THREADED_COMMANDS: tuple[str, ...] = ("select", "train", "evaluate", "predict", "run", "demo")

#: Environment variable giving the default of ``--threads``.
THREADS_ENV = "ALS4GAN_THREADS"

#: Sub-commands whose ``--threads`` default (without the variable) is ``auto``: the cores idle
#: when they start. The demo runs on users' machines, which are rarely idle; more threads than
#: free cores make torch's threads wait for each other (docs/results.md, the demo).
AUTO_THREADS_COMMANDS: tuple[str, ...] = ("demo",)


def _load(name: str) -> ModuleType:
    return importlib.import_module(COMMANDS[name])


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are short and suggest the closest valid choice.

    An error prints one line (``als4gan train: error: ...``) and where to find the options,
    instead of the whole usage; a misspelt choice (a sub-command, ``--dataset``, ...) gets
    "did you mean ...?".
    """

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        choices = action.choices
        if choices is None or value in choices:
            return
        names = [str(choice) for choice in choices]
        message = f"invalid choice: {value!r}"
        close = difflib.get_close_matches(str(value), names, n=1, cutoff=0.6)
        if close:
            message += f" (did you mean {close[0]!r}?)"
        message += f"; choose from {', '.join(names)}"
        raise argparse.ArgumentError(action, message)

    def error(self, message: str) -> NoReturn:
        """Print a one-line error and a pointer to ``--help``, then exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message}\nRun '{self.prog} --help' for the options.\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _threads_value(text: str) -> int | str:
    """``--threads``: a positive whole number, or ``auto`` (the cores idle at the start)."""
    return "auto" if text.strip().lower() == "auto" else _positive_int(text)


def _add_threads_argument(parser: argparse.ArgumentParser, auto: bool = False) -> None:
    fallback = "the cores idle at the start" if auto else "every core"
    parser.add_argument(
        "--threads",
        type=_threads_value,
        default=None,
        metavar="N|auto",
        help=(
            f"CPU threads for torch's computations (default: ${THREADS_ENV}, else {fallback}; "
            "auto = the cores idle at the start, measured over half a second; on a shared "
            "machine set it to the cores you may use)"
        ),
    )


def apply_threads(threads: int | str | None, fallback: str | None = None) -> int | None:
    """Limit torch's CPU threads to ``threads``, or to ``$ALS4GAN_THREADS`` when it is ``None``.

    ``auto`` (given, in the variable, or as ``fallback`` when neither is set) counts the cores
    idle at the start (:func:`als4gan.runtime.idle_cores`) and logs the choice.

    Returns:
        The number of threads set, or ``None`` when nothing is given (torch's default).

    Raises:
        ConfigError: If ``$ALS4GAN_THREADS`` is not a positive whole number.
    """
    from als4gan.errors import ConfigError

    if threads is None:
        text = os.environ.get(THREADS_ENV, "").strip() or (fallback or "")
        if not text:
            return None
        try:
            threads = _threads_value(text)
        except argparse.ArgumentTypeError as err:
            raise ConfigError(f"{THREADS_ENV}={text!r}: {err}") from None
    from als4gan.runtime import idle_cores, set_threads

    if threads == "auto":
        threads, idle, usable = idle_cores()
        logging.getLogger(__name__).info(
            "threads: auto = %d (%.1f of %d cores idle at the start; --threads N to choose)",
            threads,
            idle,
            usable,
        )
    assert isinstance(threads, int)
    set_threads(threads)
    return threads


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every sub-command."""
    parser = Parser(
        prog="als4gan",
        description=(
            "Label-efficient semantic segmentation of satellite imagery: choose which images "
            "to label (active learning) and train s4GAN from those few labels plus the "
            "unlabelled rest."
        ),
        epilog="Run 'als4gan <command> --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"als4gan {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="print debug messages (and tracebacks)"
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>", title="commands")
    for name in COMMANDS:
        module = _load(name)
        command_parser = sub.add_parser(
            name,
            help=module.HELP,
            description=getattr(module, "DESCRIPTION", module.HELP),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(command_parser)
        if name in THREADED_COMMANDS:
            _add_threads_argument(command_parser, auto=name in AUTO_THREADS_COMMANDS)
        command_parser.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args._argv = list(sys.argv[1:] if argv is None else argv)  # as typed, for hints to rerun
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    if args.command is None:
        parser.print_help()
        return 2
    from als4gan.runlock import held_folders, release_folders

    held = held_folders()  # a caller running main in-process keeps its own locks
    try:
        if args.command in THREADED_COMMANDS:
            fallback = "auto" if args.command in AUTO_THREADS_COMMANDS else None
            apply_threads(args.threads, fallback)
        return int(args._run(args) or 0)
    except Als4ganError as err:
        if args.verbose:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if args.verbose:
            raise
        print(f"error: {describe_os_error(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; finished work is saved (use --resume to continue)", file=sys.stderr)
        return 130
    finally:
        release_folders(keep=held)


#: What to tell the user for the operating-system errors a stage can meet while writing.
_OS_ERROR_HINTS = {
    errno.ENOSPC: "the disk is full: free some space (or choose an --out on another disk) and "
    "run the same command again",
    errno.EDQUOT: "the disk quota is used up: free some space and run the same command again",
    errno.EACCES: "permission denied: choose a folder you may write to",
    errno.EROFS: "the file system is read-only: choose another folder",
    errno.EISDIR: "a folder is in the way: give a file name",
    errno.ENOTDIR: "a file is in the way where a folder is needed: choose another path",
    errno.EEXIST: "a file is in the way: choose another path",
}


def describe_os_error(err: OSError) -> str:
    """One line for an operating-system error: what failed, on which file, and what to do."""
    what = err.strerror or str(err)
    where = f" ({err.filename})" if err.filename else ""
    hint = _OS_ERROR_HINTS.get(err.errno or -1, "")
    text = f"{what}{where}"
    if hint:
        text += f"; {hint}"
    return (
        text + ". Files finished before the error are intact (they are written atomically); "
        "run with -v for the traceback."
    )


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
