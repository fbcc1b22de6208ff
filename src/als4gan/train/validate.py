"""Validation during training: mIoU over a whole split from one confusion matrix."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from als4gan.data import SegmentationDataset
from als4gan.distributed import DistributedContext, all_reduce_sum
from als4gan.inference import predict_probs
from als4gan.metrics import ConfusionMatrix
from als4gan.regime import DEFAULT_OVERLAP
from als4gan.runtime import autocast, progress


@torch.inference_mode()
def validate(
    model: nn.Module,
    dataset: SegmentationDataset,
    context: DistributedContext,
    *,
    window: int | None,
    overlap: float = DEFAULT_OVERLAP,
    amp: bool = False,
    channels_last: bool = False,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Segment every image of ``dataset`` and score it at label resolution.

    Images larger than ``window`` are predicted by overlapping sliding windows (the training
    crop size), smaller ones in one pass. With several processes each takes every
    ``world_size``-th image and the confusion matrices are summed.

    Args:
        model: The segmentation network (switched to eval mode here; the caller restores train
            mode).
        dataset: The validation split (full images, no augmentation).
        context: Distributed context.
        window: Sliding-window side (None: whole images in one pass).
        overlap: Overlap fraction between neighbouring windows.
        amp: bf16 autocast.
        channels_last: Feed channels_last inputs.
        show_progress: Progress bar on the main process.

    Returns:
        The metrics of :meth:`ConfusionMatrix.compute` (``miou``, ``pixel_accuracy``, ...).
    """
    model.eval()
    device = context.device
    matrix = ConfusionMatrix(dataset.num_classes, dataset.classes.ignore_index)
    indices = range(context.rank, len(dataset), context.world_size)
    bar = progress(
        indices,
        desc="validating",
        unit="img",
        leave=False,
        disable=None if show_progress and context.is_main else True,
    )
    for index in bar:
        sample = dataset[index]
        image = sample["image"][None].to(device)
        if channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        with autocast(device, amp):
            probs = predict_probs(model, image, dataset.num_classes, window=window, overlap=overlap)
        matrix.update(probs.argmax(dim=1)[0].cpu(), sample["mask"])
    if context.enabled:
        counts = torch.as_tensor(matrix.matrix, dtype=torch.float64, device=device)
        matrix.matrix = all_reduce_sum(counts, context).round().long().cpu().numpy()
    return matrix.compute(list(dataset.classes.names))
