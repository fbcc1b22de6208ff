"""The options of ``als4gan train``: one typed dataclass, paper defaults, written to config.yaml.

Defaults follow stage 2 of docs/method.md (the s4GAN paper and the reference commands). Every
field becomes a ``--flag`` (see :mod:`als4gan.config`); the dataset fields are set by the shared
dataset flags (``--dataset``, ``--root``, ``--split``, ``--classes-file``, ``--bands``) and stored
here too, so that ``RUN_DIR/config.yaml`` alone is enough to rebuild the data (later stages read it,
and ``als4gan train --config RUN_DIR/config.yaml --out NEW`` repeats a run).

This module imports no torch, so that ``als4gan --help`` stays fast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from als4gan.config import option
from als4gan.errors import ConfigError
from als4gan.ratios import ratio_budget

METHODS = ("s4gan", "supervised", "unimatch")
ARCHITECTURES = ("deeplabv2", "deeplabv3plus")
BACKBONE_NAMES = ("resnet18", "resnet34", "resnet50", "resnet101", "mobilenet_v2")

#: Option groups, for ``--help`` and docs/training.md (every field belongs to exactly one).
GROUPS: dict[str, tuple[str, ...]] = {
    "labelled set": ("method", "selection", "labeled_ratio", "seed"),
    "model": (
        "arch",
        "backbone",
        "pretrained",
        "freeze_bn",
        "output_stride",
        "aspp_rates",
        "multi_scale",
        "sync_bn",
    ),
    "schedule and augmentation": (
        "iterations",
        "batch_size",
        "grad_accum",
        "crop_size",
        "scale_range",
        "mirror",
    ),
    "generator optimiser (SGD)": (
        "lr",
        "momentum",
        "weight_decay",
        "power",
        "head_weight_lr_mult",
        "head_bias_lr_mult",
    ),
    "discriminator and s4GAN losses": (
        "lr_d",
        "betas_d",
        "threshold_st",
        "lambda_fm",
        "lambda_st",
    ),
    "UniMatch (--method unimatch)": (
        "threshold_u",
        "fp_dropout",
        "fp_weight",
        "unsup_weight",
        "cutmix_prob",
        "cutmix_area",
        "cutmix_ratio",
        "jitter",
        "jitter_prob",
        "grayscale_prob",
        "blur_prob",
        "blur_sigma",
        "pseudo_label_check",
    ),
    "validation, checkpoints and logging": (
        "val_split",
        "val_every",
        "val_window",
        "checkpoint_every",
        "keep_checkpoints",
        "stop_after",
        "tensorboard",
    ),
    "runtime": ("device", "amp", "channels_last", "compile", "num_workers", "deterministic"),
}

#: Options that may change when a run is resumed (they do not change what is computed).
RESUMABLE_OVERRIDES = frozenset(
    {
        "device",
        "compile",
        "num_workers",
        "tensorboard",
        "stop_after",
        "checkpoint_every",
        "keep_checkpoints",
        "val_every",
        "val_window",
        "root",
    }
)

#: Dataset fields, set from the shared dataset flags rather than their own flags.
DATASET_FIELDS = ("dataset", "root", "split", "classes_file", "bands")


@dataclass
class TrainConfig:
    """Every option of ``als4gan train`` (the paper's defaults, docs/method.md)."""

    # dataset (flags from commands.common.add_dataset_arguments)
    dataset: str = option("synthetic", "dataset format", cli=False)
    root: str | None = option(None, "dataset root folder", cli=False)
    split: str = option("train", "training split (labelled + unlabelled pool)", cli=False)
    classes_file: str | None = option(None, "class table file (folder datasets)", cli=False)
    bands: list[int] | None = option(None, "1-based bands to read (GeoTIFF)", cli=False)

    # labelled set
    method: str = option(
        "s4gan",
        "s4gan (semi-supervised GAN), supervised (labelled images only, L_ce) or unimatch "
        "(weak-to-strong consistency; docs/training.md)",
        choices=METHODS,
    )
    selection: str | None = option(
        None,
        "labelled set: a selection folder (RUN_DIR/selection, reads labeled.txt) or an id file",
        metavar="PATH",
    )
    labeled_ratio: float | None = option(
        None,
        "instead of --selection: draw ceil(R x N) random training images to label (seeded)",
        metavar="R",
    )
    seed: int = option(0, "seed of the random labelled set, initialisation and data order")

    # model
    arch: str = option(
        "deeplabv2", "segmentation network (paper: deeplabv2)", choices=ARCHITECTURES
    )
    backbone: str = option(
        "resnet101",
        "backbone (paper: resnet101; mobilenet_v2 is the small one with installable weights)",
        choices=BACKBONE_NAMES,
    )
    pretrained: str = option(
        "none",
        "backbone weights: a registered NAME ('imagenet': fetched once, verified by sha256, "
        "cached; see 'als4gan weights list'), a weights file, an als4gan checkpoint or run "
        "folder, or 'none' (random init; use ImageNet weights for real work)",
        metavar="NAME|PATH|none",
    )
    freeze_bn: str = option(
        "auto",
        "freeze backbone BatchNorm (statistics and affine): auto = on with pretrained weights, "
        "off from random initialisation",
        choices=("auto", "on", "off"),
    )
    output_stride: int | None = option(
        None, "encoder output stride (default: 8 for deeplabv2, 16 for deeplabv3plus)"
    )
    aspp_rates: tuple[int, ...] | None = option(
        None,
        "ASPP dilation rates (default: 6 12 18 24 for deeplabv2, 6 12 18 for deeplabv3plus "
        "at stride 16, doubled at 8; at deeplabv2 stride 16 on small crops "
        "3 6 9 12 keeps every rate inside the feature map)",
        metavar="RATE",
    )
    multi_scale: bool = option(False, "deeplabv2 multi-scale inputs (1, 0.75, 0.5; max fusion)")
    sync_bn: bool = option(False, "SyncBatchNorm across processes (torchrun, trained BN only)")

    # schedule and augmentation
    iterations: int = option(20000, "training iterations (paper: 20000)")
    batch_size: int = option(
        10, "images per iteration and stream, over all processes and accumulation steps"
    )
    grad_accum: int = option(1, "split each iteration into N micro-batches (less memory)")
    crop_size: int = option(320, "random crop side in pixels (paper: 320)")
    scale_range: tuple[float, float] = option((0.5, 1.5), "random scale range (paper: 0.5 1.5)")
    mirror: bool = option(True, "random horizontal mirror")

    # generator optimiser
    lr: float = option(2.5e-4, "generator SGD learning rate (paper: 2.5e-4)")
    momentum: float = option(0.9, "generator SGD momentum")
    weight_decay: float = option(5e-4, "generator weight decay (not on head biases)")
    power: float = option(0.9, "polynomial learning-rate decay power (G and D)")
    head_weight_lr_mult: float = option(10.0, "learning-rate multiplier of head weights (ASPP)")
    head_bias_lr_mult: float = option(20.0, "learning-rate multiplier of head biases (ASPP)")

    # discriminator and s4GAN losses
    lr_d: float = option(1e-4, "discriminator Adam learning rate (paper: 1e-4)")
    betas_d: tuple[float, float] = option((0.9, 0.99), "discriminator Adam betas")
    threshold_st: float = option(
        0.8,
        "self-training threshold on D's output (reference commands 0.8; s4GAN used 0.6/0.7)",
    )
    lambda_fm: float = option(0.1, "weight of the feature-matching loss")
    lambda_st: float = option(1.0, "weight of the self-training loss")

    # UniMatch (published defaults; docs/method.md)
    threshold_u: float = option(
        0.95, "UniMatch: confidence a weak-view pseudo-label needs to be trained on (0.95)"
    )
    fp_dropout: float = option(
        0.5, "UniMatch: channel-dropout probability on the encoder features (0.5)"
    )
    fp_weight: float = option(
        0.5,
        "UniMatch: share of the unsupervised loss given to the feature-perturbation stream; "
        "the two strong views share the rest (0.5: 0.25 / 0.25 / 0.5)",
    )
    unsup_weight: float = option(
        1.0, "UniMatch: weight of the unsupervised loss; L = (L_x + w L_u) / 2 (1.0)"
    )
    cutmix_prob: float = option(0.5, "UniMatch: probability of a CutMix box per strong view")
    cutmix_area: tuple[float, float] = option(
        (0.02, 0.4), "UniMatch: range of the CutMix box's share of the crop (0.02 0.4)"
    )
    cutmix_ratio: tuple[float, float] = option(
        (0.3, 1 / 0.3), "UniMatch: range of the CutMix box's aspect ratio (0.3 3.33)"
    )
    jitter: tuple[float, float, float, float] = option(
        (0.5, 0.5, 0.5, 0.25),
        "UniMatch: colour-jitter strengths: brightness contrast saturation hue (0.5 0.5 0.5 0.25)",
    )
    jitter_prob: float = option(0.8, "UniMatch: probability of colour jitter (0.8)")
    grayscale_prob: float = option(0.2, "UniMatch: probability of grayscale (0.2)")
    blur_prob: float = option(0.5, "UniMatch: probability of Gaussian blur (0.5)")
    blur_sigma: tuple[float, float] = option(
        (0.1, 2.0), "UniMatch: range of the blur's sigma in pixels (0.1 2.0)"
    )
    pseudo_label_check: bool = option(
        True,
        "UniMatch: log pseudo-label accuracy against the unlabelled images' masks where they "
        "exist on disk (a diagnostic of simulated label scarcity; never used in training)",
    )

    # validation, checkpoints, logging
    val_split: str = option("val", "validation split for checkpoint choice (never test)")
    val_every: int = option(1000, "validate every K iterations (and at the end); 0 = never")
    val_window: int | None = option(
        None,
        "validation sliding-window side (default: the crop size); 0 = whole images in one "
        "pass; recorded, and repeated by 'als4gan evaluate'",
    )
    checkpoint_every: int = option(1000, "write checkpoints/latest.pt every K iterations")
    keep_checkpoints: bool = option(
        False,
        "also keep the network of every --checkpoint-every step as checkpoints/step_<K>.pt, "
        "for 'als4gan evaluate --all-checkpoints'",
    )
    stop_after: int | None = option(
        None, "stop (resumably) after N iterations in this invocation; continue with --resume"
    )
    tensorboard: str = option(
        "auto",
        "TensorBoard event files in RUN_DIR/tensorboard (auto: when installed)",
        choices=("auto", "on", "off"),
    )

    # runtime
    device: str = option("auto", "auto, cpu, cuda, cuda:N or mps")
    amp: str = option(
        "auto",
        "bf16 autocast: auto = where it is fast (never on CPUs without AVX512-BF16)",
        choices=("auto", "bf16", "off"),
    )
    channels_last: str = option(
        "auto",
        "channels_last memory format (auto: on for CPU and CUDA)",
        choices=("auto", "on", "off"),
    )
    compile: str = option(
        "auto",
        "torch.compile G and D (auto: only where measured faster, which no device is yet, so "
        "eager; on: compile or stop with the reason it cannot; docs/training.md)",
        choices=("auto", "on", "off"),
    )
    num_workers: int | None = option(None, "data loader workers (default: CPUs - 1, at most 8)")
    deterministic: bool = option(
        False, "deterministic algorithms only (slower on GPU; CPU runs are deterministic anyway)"
    )

    def resolved_output_stride(self) -> int:
        """The output stride, filling in the architecture's default."""
        if self.output_stride is not None:
            return self.output_stride
        return 8 if self.arch == "deeplabv2" else 16

    def model_options(self) -> dict[str, object]:
        """Architecture options for ``build_segmentation_model``."""
        options: dict[str, object] = {"output_stride": self.resolved_output_stride()}
        if self.arch == "deeplabv2":
            options["multi_scale"] = self.multi_scale
        if self.aspp_rates is not None:
            options["rates"] = tuple(self.aspp_rates)
        return options

    def validate(self) -> None:
        """Check values that argparse cannot.

        Raises:
            ConfigError: Naming the option and what is allowed.
        """
        positive = {
            "iterations": self.iterations,
            "batch_size": self.batch_size,
            "grad_accum": self.grad_accum,
            "crop_size": self.crop_size,
        }
        for name, value in positive.items():
            if value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        if self.batch_size % self.grad_accum:
            raise ConfigError(
                f"--batch-size {self.batch_size} must be divisible by --grad-accum "
                f"{self.grad_accum} (each accumulation step takes batch_size / grad_accum images)"
            )
        if self.labeled_ratio is not None and not 0 < self.labeled_ratio <= 1:
            raise ConfigError(f"--labeled-ratio must lie in (0, 1], got {self.labeled_ratio}")
        if self.selection is not None and self.labeled_ratio is not None:
            raise ConfigError("give either --selection or --labeled-ratio, not both")
        self._validate_unimatch()
        if not 0 <= self.threshold_st <= 1:
            raise ConfigError(f"--threshold-st must lie in [0, 1], got {self.threshold_st}")
        low, high = self.scale_range
        if not 0 < low <= high:
            raise ConfigError(f"--scale-range must be 0 < LOW <= HIGH, got {low} {high}")
        if self.aspp_rates is not None and (
            not self.aspp_rates or any(rate < 1 for rate in self.aspp_rates)
        ):
            raise ConfigError(f"--aspp-rates must be positive integers, got {self.aspp_rates}")
        if self.output_stride not in (None, 8, 16):
            raise ConfigError(f"--output-stride must be 8 or 16, got {self.output_stride}")
        if self.multi_scale and self.arch != "deeplabv2":
            raise ConfigError("--multi-scale is a DeepLab-v2 option; use --arch deeplabv2")
        for name in ("lr", "lr_d", "momentum", "weight_decay", "power"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 0, got {value}")
        if self.val_window is not None and self.val_window < 0:
            raise ConfigError(f"--val-window must be >= 0, got {self.val_window}")
        if self.val_every < 0 or self.checkpoint_every < 0:
            raise ConfigError("--val-every and --checkpoint-every must be >= 0 (0 = never)")
        if self.stop_after is not None and self.stop_after < 1:
            raise ConfigError(f"--stop-after must be at least 1, got {self.stop_after}")
        if self.num_workers is not None and self.num_workers < 0:
            raise ConfigError(f"--num-workers must be >= 0, got {self.num_workers}")

    def _validate_unimatch(self) -> None:
        """Check UniMatch's probabilities, weights and ranges (part of :meth:`validate`)."""
        for name in (
            "threshold_u",
            "fp_dropout",
            "fp_weight",
            "cutmix_prob",
            "jitter_prob",
            "grayscale_prob",
            "blur_prob",
        ):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ConfigError(f"--{name.replace('_', '-')} must lie in [0, 1], got {value}")
        if self.unsup_weight < 0:
            raise ConfigError(f"--unsup-weight must be >= 0, got {self.unsup_weight}")
        for name in ("cutmix_area", "cutmix_ratio", "blur_sigma"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise ConfigError(
                    f"--{name.replace('_', '-')} must be 0 < LOW <= HIGH, got {low} {high}"
                )
        if any(value < 0 for value in self.jitter):
            raise ConfigError(f"--jitter strengths must be >= 0, got {list(self.jitter)}")


def labelled_budget(ratio: float, num_images: int) -> int:
    """Number of labelled images B = ceil(ratio x N) (docs/method.md; the same B for random sets).

    The ratio is taken as the decimal number the user typed (``0.07`` is exactly 7/100, as in
    active selection's budget arithmetic), so binary rounding cannot add an image:
    ``0.07 * 100 == 7.000000000000001`` in floats.
    """
    return max(1, min(num_images, ratio_budget(ratio, num_images)))
