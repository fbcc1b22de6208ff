"""The prepare stage: write a dataset folder (splits, dataset.json) that every later stage reads.

One :class:`PrepareConfig` covers the four kinds (``synthetic``, ``deepglobe``, ``ucm``,
``folder``); :data:`KIND_OPTIONS` says which of its options each kind takes, and
:func:`prepare_config` builds one from a mapping (a config's ``dataset.prepare`` section),
refusing an option the kind does not take, as ``als4gan prepare KIND`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from als4gan.config import option
from als4gan.stages import releasing_folders

#: Dataset kinds ``prepare`` writes, in the order of ``als4gan prepare --help``.
PREPARE_KINDS = ("synthetic", "deepglobe", "ucm", "folder")
_SPLIT = ("val_fraction", "test_fraction", "seed", "force")
#: Options each kind takes (besides ``kind`` and ``out``).
KIND_OPTIONS: dict[str, tuple[str, ...]] = {
    "synthetic": ("num_images", "image_size", *_SPLIT),
    "deepglobe": ("src", "tile_size", "remainder", "scale", "workers", *_SPLIT),
    "ucm": ("src", *_SPLIT),
    "folder": (
        *("src", "classes_file", "bands", "image_max", "tile_size", "remainder", "stratify"),
        *_SPLIT,
    ),
}
#: Default tile side of the kinds that tile (``tile_size`` ``None``).
DEFAULT_TILE_SIZE = {"deepglobe": 612, "folder": 0}
#: Border handling each tiling kind offers.
REMAINDERS = {"deepglobe": ("overlap", "pad", "drop"), "folder": ("overlap", "drop")}


@dataclass
class PrepareConfig:
    """Options of ``als4gan prepare KIND`` (each kind takes those of :data:`KIND_OPTIONS`)."""

    kind: str = option("synthetic", "dataset kind", choices=PREPARE_KINDS)
    out: str = option("", "output folder")
    src: str | None = option(None, "source folder (all kinds but synthetic)")
    num_images: int = option(600, "synthetic: number of scenes")
    image_size: int = option(128, "synthetic: side in pixels")
    seed: int = option(0, "seed of the split (and of the synthetic scenes)")
    val_fraction: float = option(0.15, "share for validation")
    test_fraction: float = option(0.15, "share for test")
    tile_size: int | None = option(None, "tile side; none = the kind's default (612 / 0)")
    remainder: str = option("overlap", "sides not a multiple of the tile: overlap, pad, drop")
    scale: float = option(1.0, "deepglobe: resize whole images by this factor before tiling")
    workers: int = option(0, "deepglobe: parallel processes (0 = one per CPU)")
    classes_file: str | None = option(None, "folder: YAML/JSON class table")
    bands: list[int] | None = option(None, "folder: 1-based image bands of GeoTIFFs")
    image_max: float | None = option(None, "folder: pixel value that maps to 1.0")
    stratify: bool = option(False, "folder: keep each dominant class's share in every split")
    force: bool = option(False, "overwrite OUT prepared with other options")

    def validate(self) -> None:
        """Check every option before OUT is touched (the preparation checks again).

        Raises:
            ConfigError: For impossible split fractions, a missing ``src``/``out`` or an
                option outside the kind's range.
        """
        from als4gan.argtypes import check_image_max
        from als4gan.errors import ConfigError

        if not self.out:
            raise ConfigError(f"prepare {self.kind}: 'out' (the output folder) is required")
        if self.kind != "synthetic" and not self.src:
            raise ConfigError(f"prepare {self.kind}: the following arguments are required: --src")
        _check_split_fractions(self.val_fraction, self.test_fraction)
        if self.kind in REMAINDERS and self.remainder not in REMAINDERS[self.kind]:
            choices = ", ".join(REMAINDERS[self.kind])
            raise ConfigError(f"--remainder must be one of {choices}, got {self.remainder!r}")
        check_image_max(self.image_max)
        checker = _CHECKS.get(self.kind)
        if checker is not None:
            checker(self)

    @property
    def tile(self) -> int:
        """The tile side to use (the kind's default when ``tile_size`` is ``None``)."""
        return DEFAULT_TILE_SIZE.get(self.kind, 0) if self.tile_size is None else self.tile_size


@dataclass
class PrepareResult:
    """The prepared folder, its ``dataset.json`` content and the line the CLI prints."""

    out: Path
    meta: dict[str, Any]
    message: str


def prepare_config(data: Mapping[str, Any], source: str = "prepare") -> PrepareConfig:
    """A :class:`PrepareConfig` from a mapping with ``kind``, ``out`` and the kind's options.

    Raises:
        ConfigError: For an unknown kind, an option the kind does not take (with the valid
            ones), or an invalid value.
    """
    from als4gan.config import build_config, check_keys, did_you_mean
    from als4gan.errors import ConfigError

    values = {str(key).replace("-", "_"): value for key, value in data.items()}
    kind = str(values.get("kind", "synthetic"))
    if kind not in KIND_OPTIONS:
        raise ConfigError(
            f"{source}: unknown kind {kind!r}{did_you_mean(kind, PREPARE_KINDS)}; "
            f"choose from {', '.join(PREPARE_KINDS)}"
        )
    check_keys(values, {"kind", "out", *KIND_OPTIONS[kind]}, f"{source} ({kind})")
    return build_config(PrepareConfig, values, source)


def _synthetic_config(config: PrepareConfig) -> Any:
    from als4gan.data.synthetic import SyntheticConfig

    synthetic = SyntheticConfig(
        num_images=config.num_images,
        image_size=config.image_size,
        seed=config.seed,
        val_fraction=config.val_fraction,
        test_fraction=config.test_fraction,
    )
    synthetic.validate()
    return synthetic


def _deepglobe_config(config: PrepareConfig) -> Any:
    from als4gan.data.deepglobe import DeepGlobePrepareConfig

    deepglobe = DeepGlobePrepareConfig(
        tile_size=config.tile,
        remainder=config.remainder,
        scale=config.scale,
        val_fraction=config.val_fraction,
        test_fraction=config.test_fraction,
        seed=config.seed,
    )
    deepglobe.validate()
    return deepglobe


#: Option checks run before OUT is created.
_CHECKS: dict[str, Callable[[PrepareConfig], Any]] = {
    "synthetic": _synthetic_config,
    "deepglobe": _deepglobe_config,
}


def _check_split_fractions(val: float, test: float) -> None:
    """Refuse impossible --val-fraction / --test-fraction before anything is written.

    Raises:
        ConfigError: If a fraction is outside (0, 1) or both leave no training images.
    """
    from als4gan.errors import ConfigError

    if not (0 < val < 1 and 0 < test < 1):
        raise ConfigError(
            f"--val-fraction and --test-fraction must lie in (0, 1); got {val} and {test}"
        )
    if val + test >= 1:
        raise ConfigError(
            f"--val-fraction + --test-fraction must leave some training images; got {val + test}"
        )


def _prepare_synthetic(config: PrepareConfig) -> PrepareResult:
    from als4gan.data.synthetic import write_synthetic

    meta = write_synthetic(config.out, _synthetic_config(config), force=config.force)
    return PrepareResult(
        Path(config.out),
        meta,
        f"wrote {meta['num_images']} synthetic scenes of {meta['image_size']}px to {config.out} "
        "(splits: train, val, test)",
    )


def _prepare_deepglobe(config: PrepareConfig) -> PrepareResult:
    from als4gan.data.deepglobe import prepare_deepglobe

    options = _deepglobe_config(config)
    assert config.src is not None
    meta = prepare_deepglobe(
        config.src, config.out, options, force=config.force, workers=config.workers
    )
    tiles = "tiles" if options.tile_size else "images (no tiling)"
    return PrepareResult(
        Path(config.out),
        meta,
        f"wrote {meta['num_tiles']} DeepGlobe {tiles} from {meta['num_source_images']} source "
        f"images to {config.out} ({meta['summary']}); use --dataset deepglobe --root {config.out}",
    )


def _prepare_ucm(config: PrepareConfig) -> PrepareResult:
    from als4gan.data.ucm import prepare_ucm

    assert config.src is not None
    meta = prepare_ucm(
        config.src,
        config.out,
        val_fraction=config.val_fraction,
        test_fraction=config.test_fraction,
        seed=config.seed,
        force=config.force,
    )
    return PrepareResult(
        Path(config.out),
        meta,
        f"wrote a scene-stratified split of {meta['num_images']} UC Merced images to "
        f"{config.out}/splits ({meta['summary']}); use --dataset ucm --root {config.out}",
    )


def _prepare_folder(config: PrepareConfig) -> PrepareResult:
    from als4gan.data.folder import prepare_folder

    assert config.src is not None
    meta = prepare_folder(
        config.src,
        config.out,
        classes_file=config.classes_file,
        bands=config.bands,
        image_max=config.image_max,
        val_fraction=config.val_fraction,
        test_fraction=config.test_fraction,
        seed=config.seed,
        stratify=config.stratify,
        force=config.force,
        tile_size=config.tile,
        remainder=config.remainder,
    )
    return PrepareResult(
        Path(config.out),
        meta,
        f"wrote a split of {meta['num_images']} images ({meta['in_channels']} band(s)) to "
        f"{config.out}/splits ({meta['summary']}); use --dataset folder --root {config.out}",
    )


#: Kind -> the function preparing it.
PREPARERS: dict[str, Callable[[PrepareConfig], PrepareResult]] = {
    "synthetic": _prepare_synthetic,
    "deepglobe": _prepare_deepglobe,
    "ucm": _prepare_ucm,
    "folder": _prepare_folder,
}


@releasing_folders()
def prepare(config: PrepareConfig) -> PrepareResult:
    """Prepare a dataset folder: generate the synthetic one, or split (and tile) a real one.

    Every option is checked before ``config.out`` is created; re-running with the same options
    does nothing, other options need ``force``.

    Returns:
        The folder, its ``dataset.json`` content and a one-line summary.

    Raises:
        ConfigError: For an invalid option (nothing is written).
        DatasetNotFoundError / DataError: For a missing or unreadable source.
        RunExistsError: If ``out`` holds another dataset and ``force`` is false.
    """
    from als4gan.runlock import claim_folder

    config.validate()
    claim_folder(config.out)
    return PREPARERS[config.kind](config)
