"""Prediction examples: a few images of a split, written by ``evaluate`` and read by the report.

``als4gan evaluate`` keeps, while it scores a split, the predictions of a few images spread
evenly over the split's ids and writes them beside the metrics::

    eval/<split>/examples.json            the index (below)
    eval/<split>/examples/00_image.png    the image as shown (RGB, longer side <= 512 px)
    eval/<split>/examples/00_truth.png    the ground truth: class indices in a palette PNG
    eval/<split>/examples/00_prediction.png  the prediction, the same way

The palette PNGs hold class indices (255 = ignored) and show the class colours in any viewer.
The index records the split, checkpoint, step, regime, the class table and, per example, its
id, files and pixel accuracy at full resolution. The report reads these files only: it never
loads a model. Nothing here imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from als4gan.data.encoding import ClassTable
from als4gan.draw.images import display_rgb, fit_size, palette_image, png_bytes, resize_nearest
from als4gan.io import atomic_write_bytes, read_json, write_json

#: File name of the index in ``eval/<split>/``.
EXAMPLES_INDEX = "examples.json"
#: Folder of the example images in ``eval/<split>/``.
EXAMPLES_DIR = "examples"
#: Images kept per evaluated split.
EXAMPLE_COUNT = 3
#: Longer side of the stored example images, in pixels.
EXAMPLE_SIDE = 512


def evenly_spaced(items: Sequence[str], count: int) -> list[str]:
    """``count`` items spread evenly over ``items`` (first and last included), in order."""
    if count <= 0:
        return []
    if count >= len(items):
        return list(items)
    return [items[round(i * (len(items) - 1) / max(1, count - 1))] for i in range(count)]


@dataclass
class Example:
    """One predicted image, downscaled for display.

    Attributes:
        id: Sample id.
        image: (h, w, 3) ``uint8`` display image.
        truth: (h, w) ``uint8`` class indices of the ground truth (255 = ignored).
        prediction: (h, w) ``uint8`` predicted class indices.
        pixel_accuracy: Share of labelled pixels predicted right, at full resolution.
    """

    id: str
    image: np.ndarray
    truth: np.ndarray
    prediction: np.ndarray
    pixel_accuracy: float

    def panels(self) -> tuple[str, np.ndarray, np.ndarray, np.ndarray, float]:
        """(id, image, truth, prediction, pixel accuracy), as :mod:`als4gan.draw.examples` takes."""
        return self.id, self.image, self.truth, self.prediction, self.pixel_accuracy


def make_example(sample_id: str, image: Any, mask: Any, prediction: Any, ignore: int) -> Example:
    """An :class:`Example` from a (C, H, W) image in [0, 1] and (H, W) mask and prediction.

    Arrays may be numpy arrays or CPU tensors. Panels are scaled so that the longer side is
    at most :data:`EXAMPLE_SIDE` (area filter for the image, nearest for the labels).
    """
    mask = np.asarray(mask)
    predicted = np.asarray(prediction).astype(np.uint8)
    valid = mask != ignore
    accuracy = float((predicted[valid] == mask[valid]).mean()) if valid.any() else math.nan
    height, width = fit_size(mask.shape[0], mask.shape[1], EXAMPLE_SIDE)
    rgb = display_rgb(np.moveaxis(np.asarray(image), 0, -1))
    shown = Image.fromarray(rgb).resize((width, height), Image.Resampling.BOX)
    return Example(
        str(sample_id),
        np.asarray(shown),
        resize_nearest(mask, height, width).astype(np.uint8),
        resize_nearest(predicted, height, width),
        accuracy,
    )


class ExampleCollector:
    """Keeps the examples of chosen ids as the evaluation loop goes over a split."""

    def __init__(self, ids: Sequence[str], ignore_index: int) -> None:
        self.ids = list(ids)
        self.ignore_index = ignore_index
        self.kept: dict[str, Example] = {}

    def offer(self, sample: Mapping[str, Any], prediction: Any) -> None:
        """Keep ``prediction`` when ``sample`` is one of the chosen images."""
        sample_id = str(sample.get("id"))
        if sample_id in self.ids and sample_id not in self.kept:
            self.kept[sample_id] = make_example(
                sample_id, sample["image"], sample["mask"], prediction, self.ignore_index
            )

    def examples(self) -> list[Example]:
        """The kept examples, in the order of the chosen ids."""
        return [self.kept[i] for i in self.ids if i in self.kept]


def write_examples(
    out_dir: str | Path,
    examples: Sequence[Example],
    classes: ClassTable,
    context: Mapping[str, Any],
) -> Path:
    """Write the example images and ``examples.json`` into ``out_dir``; returns the index path.

    Args:
        out_dir: The evaluation folder (``eval/<split>/``).
        examples: The examples, in display order.
        classes: Class names and colours (the palette of the label PNGs).
        context: The evaluation's metrics (``split``, ``checkpoint``, ``step``, ``window``,
            ``overlap``, ``regime``, ``crf`` are recorded).
    """
    out = Path(out_dir)
    (out / EXAMPLES_DIR).mkdir(parents=True, exist_ok=True)
    records = []
    for index, example in enumerate(examples):
        files = {
            "image": f"{EXAMPLES_DIR}/{index:02d}_image.png",
            "truth": f"{EXAMPLES_DIR}/{index:02d}_truth.png",
            "prediction": f"{EXAMPLES_DIR}/{index:02d}_prediction.png",
        }
        atomic_write_bytes(out / files["image"], png_bytes(example.image))
        for key in ("truth", "prediction"):
            atomic_write_bytes(
                out / files[key], png_bytes(palette_image(getattr(example, key), classes))
            )
        accuracy = example.pixel_accuracy
        records.append(
            {
                "id": example.id,
                **files,
                "pixel_accuracy": accuracy if math.isfinite(accuracy) else None,
            }
        )
    index_path = out / EXAMPLES_INDEX
    keys = ("split", "checkpoint", "step", "window", "overlap", "regime", "crf")
    write_json(
        index_path,
        {
            **{key: context.get(key) for key in keys},
            "classes": classes.to_dict(),
            "examples": records,
        },
    )
    return index_path


@dataclass
class ExampleSet:
    """The examples of one evaluated split as read back from its folder.

    Attributes:
        folder: The evaluation folder.
        index: The parsed ``examples.json``.
        classes: The class table recorded in the index.
    """

    folder: Path
    index: dict[str, Any]
    classes: ClassTable

    @property
    def split(self) -> str:
        """The evaluated split."""
        return str(self.index.get("split") or self.folder.name)

    @property
    def ids(self) -> list[str]:
        """Sample ids, in display order."""
        return [str(record["id"]) for record in self.records]

    @property
    def records(self) -> list[dict[str, Any]]:
        """One entry per example: ``id``, files ``image``/``truth``/``prediction``, accuracy."""
        records = self.index.get("examples")
        return [r for r in records if isinstance(r, dict)] if isinstance(records, list) else []

    def load(self, record: Mapping[str, Any]) -> Example:
        """The images of one entry of :attr:`records`."""

        def read(key: str) -> np.ndarray:
            with Image.open(self.folder / str(record[key])) as image:
                return np.asarray(image.convert("RGB") if key == "image" else image)

        accuracy = record.get("pixel_accuracy")
        return Example(
            str(record["id"]),
            read("image"),
            read("truth"),
            read("prediction"),
            float(accuracy) if isinstance(accuracy, int | float) else math.nan,
        )


def read_examples(eval_dir: str | Path) -> ExampleSet | None:
    """The examples written into an evaluation folder, or ``None`` when it has none.

    Raises:
        ConfigError: If ``examples.json`` exists but cannot be parsed.
    """
    folder = Path(eval_dir)
    path = folder / EXAMPLES_INDEX
    if not path.is_file():
        return None
    index = read_json(path)
    if not isinstance(index, dict) or not isinstance(index.get("classes"), Mapping):
        return None
    return ExampleSet(folder, index, ClassTable.from_dict(index["classes"]))
