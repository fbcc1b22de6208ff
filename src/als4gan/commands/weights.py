"""``als4gan weights``: list and fetch the registered pretrained backbone weights."""

from __future__ import annotations

import argparse

HELP = "list and fetch the registered pretrained backbone weights (e.g. ImageNet)"
DESCRIPTION = """\
Pretrained backbone weights are registered by name: each entry names its backbone, where the
file comes from, its licence and its SHA-256. 'list' shows every entry and whether it is in the
cache; 'fetch' downloads entries into the cache, verified by the SHA-256 of their content.
Training and selection fetch what '--pretrained imagenet' needs by themselves; fetch ahead
to work offline later.

The cache is $ALS4GAN_WEIGHTS_DIR, else $XDG_CACHE_HOME/als4gan/weights, else
~/.cache/als4gan/weights. Offline, place the file named by 'list' there (any copy with the
right content is accepted). ALS4GAN_OFFLINE=1 forbids all downloads. See docs/training.md,
section "Pretrained weights".

examples:
  als4gan weights list
  als4gan weights fetch mobilenet_v2-imagenet
  als4gan weights fetch imagenet --backbone resnet50
  als4gan train --backbone mobilenet_v2 --pretrained imagenet ...
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the actions of ``weights``."""
    actions = parser.add_subparsers(dest="action", metavar="<action>", title="actions")
    actions.required = True
    listing = actions.add_parser(
        "list",
        help="show every registered entry (backbone, source, size, sha256, licence, cached)",
        description="Show every registered weights entry and whether it is in the cache.",
    )
    listing.add_argument(
        "--backbone", default=None, help="only the entries of this backbone (e.g. mobilenet_v2)"
    )
    fetch = actions.add_parser(
        "fetch",
        help="download entries into the cache (verified by sha256)",
        description=(
            "Download registered weights into the cache unless a verified copy is there. NAME "
            "is an entry of 'als4gan weights list', or 'imagenet' with --backbone."
        ),
        epilog=(
            "examples:\n  als4gan weights fetch mobilenet_v2-imagenet\n"
            "  als4gan weights fetch imagenet --backbone resnet18"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fetch.add_argument("names", nargs="+", metavar="NAME", help="entry names (or 'imagenet')")
    fetch.add_argument(
        "--backbone",
        default=None,
        help="with NAME 'imagenet': the backbone whose ImageNet weights to fetch",
    )


def _size(mb: float) -> str:
    return f"{mb:.0f} MB" if mb >= 10 else f"{mb:.1f} MB"


def run(args: argparse.Namespace) -> int:
    """List or fetch."""
    from als4gan.errors import ConfigError
    from als4gan.models import hub

    if args.action == "list":
        entries = [e for e in hub.REGISTRY.values() if args.backbone in (None, e.backbone)]
        if not entries:
            raise ConfigError(f"no weights registered for backbone {args.backbone}")
        print(f"weights cache: {hub.weights_dir()}")
        for entry in entries:
            cached = hub.find_cached(entry)
            aliases = [
                name
                for name, table in hub.ALIASES.items()
                if entry.name in table.get(entry.backbone, ())
            ]
            print()
            print(f"{entry.name}  [{'cached: ' + str(cached) if cached else 'not cached'}]")
            print(
                f"  backbone  {entry.backbone}"
                + (f" (--pretrained {aliases[0]})" if aliases else "")
            )
            print(f"  what      {entry.description}")
            print(f"  source    {' or '.join(s.describe() for s in entry.sources)}")
            print(f"  file      {entry.file}, about {_size(entry.size_mb)}")
            print(f"  sha256    {entry.sha256}" + ("" if entry.full_hash else " (prefix)"))
            print(f"  verified  by {entry.verification}")
            print(f"  licence   {entry.licence}")
        return 0

    names: list[str] = []
    for name in args.names:
        if name in hub.ALIASES:
            if not args.backbone:
                raise ConfigError(
                    f"'{name}' needs --backbone (one of: {', '.join(hub.ALIASES[name])})"
                )
            names.append(hub.entries_for(name, args.backbone)[0].name)
        else:
            names.append(hub.get_entry(name).name)
    for name in names:
        entry = hub.REGISTRY[name]
        path = hub.find_cached(entry) or hub.fetch(entry)
        print(f"{entry.name}: {path} (sha256 {hub.file_sha256(path)})")
    return 0
