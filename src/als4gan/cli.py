"""The ``als4gan`` command: one entry point, one module per sub-command.

Each module in :mod:`als4gan.commands` defines ``HELP`` (one line), ``DESCRIPTION``,
``add_arguments(parser)`` and ``run(args) -> int``. Command modules import heavy libraries
(torch, matplotlib) inside ``run`` so that ``als4gan --help`` stays fast.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

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


def _load(name: str) -> ModuleType:
    return importlib.import_module(COMMANDS[name])


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every sub-command."""
    parser = argparse.ArgumentParser(
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
        command_parser.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    if args.command is None:
        parser.print_help()
        return 2
    from als4gan.runlock import held_folders, release_folders

    held = held_folders()  # a grid run calls stages in-process: keep its own lock
    try:
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
