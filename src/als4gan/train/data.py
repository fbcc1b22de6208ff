"""Training data: the labelled / unlabelled split of the training images and their loaders.

The labelled set comes from active selection (``RUN_DIR/selection/labeled.txt``) or is drawn at
random with the same size B = ceil(ratio x N) (stage 1 and defect 8 of docs/method.md); every
other training image is unlabelled (stage 2 of docs/method.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from als4gan.data import SegmentationDataset, build_dataset, dataset_options
from als4gan.data.base import Sample, image_to_tensor, nodata_pixels
from als4gan.data.encoding import IGNORE_INDEX
from als4gan.data.transforms import SeededDataset, TrainAugment
from als4gan.errors import ConfigError, DataError, DatasetNotFoundError
from als4gan.io import read_ids
from als4gan.runtime import derive_seed
from als4gan.train.config import TrainConfig, labelled_budget
from als4gan.train.samplers import InfiniteSeededSampler

SELECTION_FILE = "labeled.txt"


def build_split(config: TrainConfig, split: str) -> SegmentationDataset:
    """The dataset of ``split`` as the config describes it.

    Raises:
        ConfigError: If the config names no dataset root.
    """
    if not config.root:
        raise ConfigError(
            "--root is required: the dataset folder written by 'als4gan prepare' "
            "(e.g. 'als4gan prepare synthetic --out data/synthetic', then --root data/synthetic)"
        )
    return build_dataset(
        config.dataset,
        config.root,
        split,
        **dataset_options(classes_file=config.classes_file, bands=config.bands),
    )


def selection_file(path: str | Path) -> Path:
    """``labeled.txt`` of a selection folder, or the id file itself.

    Raises:
        DatasetNotFoundError: If neither exists.
    """
    candidate = Path(path)
    if candidate.is_dir():
        file = candidate / SELECTION_FILE
        if not file.is_file() and (candidate / "selection" / SELECTION_FILE).is_file():
            file = candidate / "selection" / SELECTION_FILE  # a run folder was given
        if not file.is_file():
            raise DatasetNotFoundError(
                f"--selection {candidate} holds no {SELECTION_FILE}. Run 'als4gan select ... "
                "--out RUN_DIR' first and pass RUN_DIR/selection, or pass an id file."
            )
        return file
    if not candidate.is_file():
        raise DatasetNotFoundError(
            f"--selection {candidate} does not exist (expected RUN_DIR/selection or a file with "
            "one image id per line)"
        )
    return candidate


@dataclass(frozen=True)
class LabelledSplit:
    """The labelled and unlabelled training ids, and where the labelled ones came from."""

    labelled: list[str]
    unlabelled: list[str]
    source: str


def resolve_labelled_split(
    config: TrainConfig,
    train_ids: list[str],
    run_dir: Path | None = None,
    recorded: Path | None = None,
) -> LabelledSplit:
    """Decide which training images are labelled.

    Order of precedence: the ``recorded`` list of a run being resumed; ``--selection``;
    ``--labeled-ratio`` with ``--seed``; otherwise ``RUN_DIR/selection/labeled.txt`` when the
    select stage ran in the same run folder.

    Args:
        config: The train config.
        train_ids: Ids of the training split (the pool).
        run_dir: The run folder (for the implicit selection).
        recorded: ``RUN_DIR/train_labeled.txt`` of a resumed run (used when it exists).

    Raises:
        ConfigError: If no labelled set is specified.
        DataError: If the selection names images outside the training split, or is empty.
    """
    if recorded is not None and recorded.is_file():
        labelled = read_ids(recorded)
        source = f"{recorded} (recorded when the run started)"
    elif config.selection is not None:
        file = selection_file(config.selection)
        labelled = read_ids(file)
        source = str(file)
    elif config.labeled_ratio is not None:
        budget = labelled_budget(config.labeled_ratio, len(train_ids))
        generator = torch.Generator().manual_seed(derive_seed(config.seed, "random-labelled-set"))
        order = torch.randperm(len(train_ids), generator=generator).tolist()
        labelled = sorted(train_ids[index] for index in order[:budget])
        source = f"random: ceil({config.labeled_ratio} x {len(train_ids)}) = {budget} images"
    elif run_dir is not None and (run_dir / "selection" / SELECTION_FILE).is_file():
        file = run_dir / "selection" / SELECTION_FILE
        labelled = read_ids(file)
        source = str(file)
    else:
        raise ConfigError(
            "no labelled set: pass --selection RUN_DIR/selection (from 'als4gan select') or "
            "--labeled-ratio R --seed N for a random set of ceil(R x N) training images"
        )
    if not labelled:
        raise DataError(f"the labelled set ({source}) is empty")
    pool = set(train_ids)
    unknown = [sample_id for sample_id in labelled if sample_id not in pool]
    if unknown:
        raise DataError(
            f"{len(unknown)} labelled id(s) from {source} are not in the training split "
            f"'{config.split}' of {config.root} (e.g. {', '.join(unknown[:3])}). The selection "
            "was made on another dataset or split; pass the matching --root/--split."
        )
    if len(set(labelled)) != len(labelled):
        raise DataError(f"the labelled set ({source}) lists some ids twice")
    chosen = set(labelled)
    unlabelled = [sample_id for sample_id in train_ids if sample_id not in chosen]
    return LabelledSplit(labelled, unlabelled, source)


class UnlabelledImages(Dataset[Sample]):
    """Images of a dataset without their labels (the unlabelled stream never reads a mask).

    Each sample's ``mask`` is zero where the image has data and ignore on its no-data pixels
    (NaN, the raster's no-data value), so that after augmentation the padded and no-data pixels
    (which the transform fills with ignore) are the only non-zero ones: the trainer uses it as a
    validity map (excluded from the self-training loss), without any access to the true labels.
    """

    def __init__(self, dataset: SegmentationDataset, with_truth: bool = False) -> None:
        self.dataset = dataset
        self.with_truth = with_truth

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Sample:
        sample_id = self.dataset.ids[index]
        pixels = self.dataset.load_image(sample_id)
        image = image_to_tensor(pixels)
        validity = torch.zeros(image.shape[-2:], dtype=torch.int64)
        invalid = nodata_pixels(pixels)
        if invalid is not None:
            validity[torch.from_numpy(invalid)] = IGNORE_INDEX
        sample: Sample = {
            "image": image,
            "mask": validity,
            "id": sample_id,
            "label": -1,
        }
        if self.with_truth:
            sample["truth"] = self._truth(sample_id, validity)
        return sample

    def _truth(self, sample_id: str, validity: torch.Tensor) -> torch.Tensor:
        """The image's mask for diagnostics (``with_truth``), all ignore when it cannot be read.

        Only pseudo-label accuracy in the training log reads it (UniMatch; never a loss): with
        simulated label scarcity the unlabelled pool's masks exist on disk.
        """
        try:
            mask = torch.from_numpy(self.dataset.load_mask(sample_id).astype("int64"))
        except (OSError, ValueError, DataError, DatasetNotFoundError):
            mask = None
        if mask is None or mask.shape != validity.shape:
            return torch.full_like(validity, IGNORE_INDEX)
        return torch.where(validity == IGNORE_INDEX, IGNORE_INDEX, mask)


class SingleThreaded(Dataset[Sample]):
    """Prepares every sample with one torch thread, wherever it runs.

    DataLoader workers use one thread; the main process (``--num-workers 0``) uses several, and
    bilinear resizing gives slightly different floats with another thread count. Pinning the
    count keeps the crops, hence the whole run, independent of the number of workers.
    """

    def __init__(self, dataset: Dataset[Sample]) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: Any) -> Sample:
        threads = torch.get_num_threads()
        if threads == 1:
            return self.dataset[key]
        torch.set_num_threads(1)
        try:
            return self.dataset[key]
        finally:
            torch.set_num_threads(threads)


def collate(samples: list[Sample]) -> dict[str, Any]:
    """Stack images and masks (and diagnostic ``truth`` masks); keep ids as a list."""
    batch = {
        "image": torch.stack([sample["image"] for sample in samples]),
        "mask": torch.stack([sample["mask"] for sample in samples]),
        "id": [sample["id"] for sample in samples],
    }
    if all("truth" in sample for sample in samples):
        batch["truth"] = torch.stack([sample["truth"] for sample in samples])
    return batch


class WithTruth:
    """A random transform that moves a sample's ``truth`` mask exactly like its ``mask``.

    The transform runs once on the sample and once, replaying the same random draws, on a
    one-band placeholder image with ``truth`` as its mask (same size, so the same geometry).

    Args:
        transform: The random transform ``(sample, generator) -> sample``.
    """

    def __init__(self, transform: TrainAugment) -> None:
        self.transform = transform

    def __call__(self, sample: Sample, generator: torch.Generator) -> Sample:
        """``transform(sample)`` with ``truth`` transformed alongside."""
        if "truth" not in sample:
            return self.transform(sample, generator)
        sample = dict(sample)
        truth = sample.pop("truth")
        replay = torch.Generator().set_state(generator.get_state())
        out = self.transform(sample, generator)
        placeholder = torch.zeros((1, *truth.shape[-2:]), dtype=torch.float32)
        out["truth"] = self.transform({"image": placeholder, "mask": truth}, replay)["mask"]
        return out


class DataStream:
    """One endless stream of micro-batches with a resumable position.

    Args:
        dataset: Images (with masks, or :class:`UnlabelledImages`).
        sampler: The stream's :class:`InfiniteSeededSampler`.
        augment: The random training transform.
        num_workers: DataLoader workers (0 = load in this process).
        pin_memory: Pin host memory (CUDA).
    """

    def __init__(
        self,
        dataset: Dataset[Sample],
        sampler: InfiniteSeededSampler,
        augment: TrainAugment,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        self.dataset = SingleThreaded(SeededDataset(dataset, WithTruth(augment)))  # type: ignore[arg-type]
        self.sampler = sampler
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self._iterator: Any = None

    def next(self) -> dict[str, Any]:
        """The next micro-batch (starts the loader at the sampler's position on first use)."""
        if self._iterator is None:
            loader = DataLoader(
                self.dataset,
                batch_sampler=self.sampler,
                num_workers=self.num_workers,
                collate_fn=collate,
                pin_memory=self.pin_memory,
                persistent_workers=False,
                prefetch_factor=2 if self.num_workers > 0 else None,
                # Its own generator: creating a loader must not draw from the global one
                # (which drives dropout), or a resumed run would diverge from an uninterrupted one.
                generator=torch.Generator().manual_seed(
                    derive_seed(self.sampler.seed, self.sampler.stream, "loader")
                ),
            )
            self._iterator = iter(loader)
        return next(self._iterator)

    def advance(self) -> None:
        """Mark one iteration as consumed."""
        self.sampler.advance()

    def state_dict(self) -> dict[str, Any]:
        """The sampler's state (the iterations consumed)."""
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue at a saved position (restarts the loader)."""
        self.sampler.load_state_dict(state)
        self.close()

    def close(self) -> None:
        """Stop the loader's workers."""
        self._iterator = None


def make_augment(config: TrainConfig) -> TrainAugment:
    """The paper's training augmentation: random scale, pad with ignore, crop, mirror."""
    return TrainAugment(
        config.crop_size,
        scale_range=tuple(config.scale_range),  # type: ignore[arg-type]
        mirror=config.mirror,
        ignore_index=IGNORE_INDEX,
    )


def epochs_per_run(config: TrainConfig, num_images: int) -> float:
    """How many passes over ``num_images`` the run makes (for the log)."""
    return config.iterations * config.batch_size / max(1, num_images)


def check_batch_fits(config: TrainConfig, world_size: int) -> int:
    """Micro-batch size per process; raises when the batch does not split evenly.

    Raises:
        ConfigError: If ``batch_size`` is not a multiple of ``world_size x grad_accum``.
    """
    parts = world_size * config.grad_accum
    if config.batch_size % parts:
        raise ConfigError(
            f"--batch-size {config.batch_size} must be a multiple of processes x --grad-accum "
            f"= {world_size} x {config.grad_accum} (it is the global batch per iteration); "
            f"e.g. --batch-size {math.ceil(config.batch_size / parts) * parts}"
        )
    return config.batch_size // parts
