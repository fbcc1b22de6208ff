"""Options of ``als4gan select`` (one dataclass: CLI flags, ``--config`` YAML, ``config.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass

from als4gan.config import option
from als4gan.errors import ConfigError

ACQUISITION_MODES: tuple[str, ...] = ("classifier", "segmentation")
REFIT_MODES: tuple[str, ...] = ("full", "reinit", "incremental")
MODEL_CHOICES: tuple[str, ...] = (
    "auto",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "mobilenet_v2",
)
#: ``--model auto``: the paper's ResNet-50 for the classifier, a small ResNet-18 for segmentation.
DEFAULT_MODELS: dict[str, str] = {"classifier": "resnet50", "segmentation": "resnet18"}
#: Options that may change between an interrupted selection and its resumption.
RESUME_FREE_OPTIONS: frozenset[str] = frozenset({"num_workers", "sheet_max", "embedding_cache"})
#: ``--strategy auto``: below this labelled share of the pool a low-budget strategy is used.
#: Measured on DeepGlobe (docs/selection.md, "Which strategy at which budget"): typiclust and
#: probcover led at 2 % and lost to entropy at 5 % and 10 %, so the switch lies between.
DEFAULT_AUTO_THRESHOLD = 0.03
#: Labelled ratio used when neither --labeled-ratio nor --budget is given (the paper's 5%).
DEFAULT_LABELED_RATIO = 0.05


@dataclass
class SelectConfig:
    """Everything that decides a selection (written to ``selection/config.yaml``)."""

    # dataset (flags come from commands.common.add_dataset_arguments)
    dataset: str = option("synthetic", "dataset format", cli=False)
    root: str | None = option(None, "dataset root folder", cli=False)
    split: str = option("train", "split to select from", cli=False)
    classes_file: str | None = option(None, "folder datasets: class table file", cli=False)
    bands: list[int] | None = option(None, "folder datasets: 1-based bands", cli=False)

    # budget (stage 1 of docs/method.md)
    labeled_ratio: float | None = option(
        None,
        "share R of the pool to label: budget B = ceil(R x N); the paper uses 0.02, 0.05, "
        f"0.125; None = {DEFAULT_LABELED_RATIO} unless --budget is given",
        metavar="R",
    )
    budget: int | None = option(None, "number of images to label B (instead of R)", metavar="N")
    alpha: float = option(0.1, "initial random set: n0 = max(1, floor(alpha x B))")
    beta: float = option(0.5, "query size per round: q = max(1, ceil(beta x n0))")
    strategy: str = option(
        "entropy",
        "query strategy (higher score = labelled first)",
        choices=(
            "random",
            "entropy",
            "margin",
            "least-confidence",
            "bald",
            "coreset",
            "hybrid",
            "typiclust",
            "probcover",
            "auto",
        ),
    )
    initial_strategy: str = option(
        "random",
        "how the initial set of n0 images is chosen: random (paper), or typiclust / probcover "
        "on pretrained embeddings",
        choices=("random", "typiclust", "probcover"),
    )
    auto_threshold: float = option(
        DEFAULT_AUTO_THRESHOLD,
        "--strategy auto: below this share B/N of the pool use --auto-low, else --auto-high",
        metavar="SHARE",
    )
    auto_low: str = option(
        "probcover", "--strategy auto: strategy at low budgets", choices=("typiclust", "probcover")
    )
    auto_high: str = option(
        "entropy",
        "--strategy auto: strategy at higher budgets",
        choices=("entropy", "margin", "least-confidence", "bald", "coreset", "hybrid", "random"),
    )
    embedding_cache: str | None = option(
        None,
        "typiclust / probcover: folder caching the pool's pretrained embeddings (default: "
        "RUN_DIR/selection; reused when pool, backbone, weights and image size match)",
        metavar="DIR",
    )
    seed: int = option(0, "seed of every random step (same seed -> same selection)")

    # acquisition model
    acquisition: str = option(
        "classifier",
        "acquisition model: image 'classifier' (paper) or pixel-wise 'segmentation' network",
        choices=ACQUISITION_MODES,
    )
    model: str = option(
        "auto",
        "backbone: auto = resnet50 for the classifier (paper), resnet18 for segmentation",
        choices=MODEL_CHOICES,
    )
    pretrained: str = option(
        "none",
        "backbone init: a registered NAME ('imagenet': fetched once, verified, cached; see "
        "'als4gan weights list'), a weights file, or 'none' (random); the paper used ImageNet "
        "weights",
        metavar="NAME|PATH|none",
    )
    epochs: int = option(50, "training epochs of the acquisition model per round (paper: 50)")
    batch_size: int = option(4, "training batch size (paper: 4)")
    image_size: int = option(320, "network input side in pixels (paper: 320)")
    lr: float = option(1e-3, "SGD learning rate (paper: 1e-3)")
    momentum: float = option(0.9, "SGD momentum (paper: 0.9)")
    weight_decay: float = option(0.0, "SGD weight decay")
    scale_range: list[float] = option(
        [0.5, 1.5], "random scale range of training images (two numbers)", metavar="LOW HIGH"
    )
    mirror: bool = option(True, "random horizontal mirror of training images")
    refit: str = option(
        "full",
        "per-round refit: full (reference and default: all labelled images, all epochs, "
        "weights carried over), reinit (fresh weights each round), incremental (short "
        "fine-tune after round 1: about 3x faster, but a weaker model; see docs/selection.md)",
        choices=REFIT_MODES,
    )
    refit_epochs: int | None = option(
        None, "incremental refit: epochs of each round after the first; None = ceil(epochs / 10)"
    )
    reduction: str = option(
        "mean",
        "per-image score from pixel scores: mean, or class-balanced (up-weights pixels "
        "predicted as classes rare in the labelled set)",
        choices=("mean", "class-balanced"),
    )
    class_balance_power: float = option(
        0.5, "class-balanced weights: share ** -power (1 = inverse frequency)"
    )
    mc_samples: int = option(10, "bald: Monte-Carlo dropout passes")
    mc_dropout: float = option(0.5, "bald: dropout probability (trained and sampled)")
    hybrid_uncertainty: str = option(
        "entropy",
        "hybrid: uncertainty strategy choosing the candidates",
        choices=("entropy", "margin", "least-confidence", "bald"),
    )
    hybrid_factor: float = option(
        4.0, "hybrid: uncertain candidates kept per image to pick, narrowed by diversity"
    )
    output_stride: int = option(16, "segmentation mode: DeepLab output stride", choices=(8, 16))

    # runtime
    score_batch_size: int = option(32, "images per batch when scoring the pool")
    device: str = option("auto", "auto, cpu, cuda, cuda:N or mps")
    amp: str = option(
        "auto",
        "bf16 autocast: auto = only where it is fast (not on CPUs without AVX512-BF16/AMX)",
        choices=("auto", "bf16", "off"),
    )
    channels_last: str = option(
        "auto", "channels_last memory format for convolutions", choices=("auto", "on", "off")
    )
    compile: str = option(
        "auto",
        "torch.compile the acquisition network (auto: only where measured faster, which no "
        "device is yet, so eager; on: compile or stop with the reason it cannot; "
        "docs/selection.md)",
        choices=("auto", "on", "off"),
    )
    num_workers: int | None = option(None, "DataLoader workers (default: CPUs - 1, at most 8)")
    eval_pool: bool = option(
        False,
        "classifier mode: also measure the model's accuracy on the unlabelled pool each round "
        "(reads every pool mask; for experiments)",
    )
    sheet_max: int = option(120, "most images shown on the contact sheet")


def _training_checks(config: SelectConfig) -> list[tuple[bool, str]]:
    """(holds, message) for the acquisition model's training options."""
    low_high = config.scale_range
    return [
        (config.epochs >= 1, f"--epochs must be >= 1, got {config.epochs}"),
        (config.batch_size >= 1, f"--batch-size must be >= 1, got {config.batch_size}"),
        (config.image_size >= 32, f"--image-size must be >= 32 pixels, got {config.image_size}"),
        (config.lr > 0, f"--lr must be > 0, got {config.lr}"),
        (config.momentum >= 0, f"--momentum must be >= 0, got {config.momentum}"),
        (config.weight_decay >= 0, f"--weight-decay must be >= 0, got {config.weight_decay}"),
        (
            len(low_high) == 2 and 0 < low_high[0] <= low_high[1],
            f"--scale-range takes two numbers 0 < LOW <= HIGH, got {low_high}",
        ),
        (
            config.refit_epochs is None or config.refit_epochs >= 1,
            f"--refit-epochs must be >= 1, got {config.refit_epochs}",
        ),
    ]


def _strategy_checks(config: SelectConfig) -> list[tuple[bool, str]]:
    """(holds, message) for the strategies' and the runtime's options."""
    return [
        (config.mc_samples >= 2, f"--mc-samples must be >= 2, got {config.mc_samples}"),
        (
            0 < config.mc_dropout < 1,
            f"--mc-dropout must lie in (0, 1), got {config.mc_dropout}",
        ),
        (config.hybrid_factor >= 1, f"--hybrid-factor must be >= 1, got {config.hybrid_factor}"),
        (
            config.class_balance_power >= 0,
            f"--class-balance-power must be >= 0, got {config.class_balance_power}",
        ),
        (
            config.score_batch_size >= 1,
            f"--score-batch-size must be >= 1, got {config.score_batch_size}",
        ),
        (
            config.num_workers is None or config.num_workers >= 0,
            f"--num-workers must be >= 0, got {config.num_workers}",
        ),
        (config.sheet_max >= 0, f"--sheet-max must be >= 0, got {config.sheet_max}"),
        (
            0 < config.auto_threshold <= 1,
            f"--auto-threshold must lie in (0, 1], got {config.auto_threshold}",
        ),
    ]


def resolve_select_config(config: SelectConfig) -> SelectConfig:
    """Check option values and fill the labelled-ratio default.

    Raises:
        ConfigError: On an invalid value (the message names the flag).
    """
    if not config.root:
        raise ConfigError(
            "--root is required: the dataset folder written by 'als4gan prepare' "
            "(e.g. 'als4gan prepare synthetic --out data/synthetic', then --root data/synthetic)"
        )
    if config.labeled_ratio is not None and config.budget is not None:
        raise ConfigError(
            "give either --labeled-ratio or --budget, not both "
            f"(got --labeled-ratio {config.labeled_ratio} and --budget {config.budget})"
        )
    if config.labeled_ratio is None and config.budget is None:
        config.labeled_ratio = DEFAULT_LABELED_RATIO
    for ok, message in (*_training_checks(config), *_strategy_checks(config)):
        if not ok:
            raise ConfigError(message)
    return config
