"""The paragraph a training run logs before it starts: data, network, schedule, runtime."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from als4gan.models.weights import PretrainedLoad
    from als4gan.train.trainer import Trainer


def describe_run(trainer: Trainer) -> str:
    """One paragraph on what is about to run (for the log)."""
    config = trainer.config
    labelled, unlabelled = len(trainer.split.labelled), len(trainer.split.unlabelled)
    data = (
        f"{labelled} labelled / {unlabelled} unlabelled training images"
        if trainer.method.uses_unlabelled
        else f"{labelled} labelled training images ({unlabelled} unlabelled ones not used)"
    )
    data += f" (labelled set: {trainer.split.source})"
    precision = "bf16 autocast" if trainer.amp else "fp32"
    layout = "channels_last" if trainer.channels_last else "contiguous"
    execution = "torch.compile" if trainer.compiled else "eager"
    processes = f", {trainer.context.world_size} processes" if trainer.context.enabled else ""
    weights = weights_text(trainer.pretrained_load)
    return (
        f"{config.method}: {data}\n"
        f"{config.arch} {config.backbone} (pretrained: {weights}, BatchNorm "
        f"{'frozen' if trainer.bn_frozen else 'trained'}), {trainer.num_classes} classes; "
        f"{config.iterations} iterations of batch {config.batch_size} at "
        f"{config.crop_size}px (micro-batch {trainer.micro_batch} x {config.grad_accum} "
        f"accumulation{processes}); device {trainer.device}, {precision}, {layout}, {execution}\n"
        f"validation (and 'als4gan evaluate' by default): {trainer.regime.describe()}"
    )


def weights_text(load: PretrainedLoad | None) -> str:
    """``--pretrained`` as resolved (name, file hash, tensors loaded)."""
    if load is None:
        return "none"
    name = load.spec if load.entry is None else f"{load.spec} = {load.entry}"
    return f"{name}, sha256 {load.sha256[:12]}, {load.loaded}/{load.expected} tensors"
