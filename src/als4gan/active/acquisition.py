"""Acquisition models: trained on the labelled images each round, then run over the pool.

Two modes share one training loop and one streaming scorer:

* ``classifier`` (the paper): an image-level classifier (ResNet, new linear head) trained on
  image-level labels (UC Merced scene class, dominant class elsewhere); its softmax scores
  each unlabelled image.
* ``segmentation``: a DeepLab-v2 network (small backbone) trained on the labelled masks; its
  pixel-wise softmax is scored per pixel and reduced to one score per image by the strategy.

Pool scoring streams through a DataLoader in batches under ``torch.inference_mode()``
(channels_last, bf16 autocast only where it is fast): only per-image scores, and embeddings
when a diversity strategy asks for them, are kept, never images.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from als4gan.active.config import DEFAULT_MODELS, SelectConfig
from als4gan.active.data import PoolImages
from als4gan.active.fitting import fit_acquisition, rng_devices
from als4gan.active.scoring import PoolOutputs, Shard, score_ids
from als4gan.active.strategies import QueryStrategy
from als4gan.data.base import SegmentationDataset
from als4gan.errors import DataError
from als4gan.models import build_classifier, build_segmentation_model
from als4gan.models.classifier import ImageClassifier
from als4gan.models.deeplab import DeepLabV2
from als4gan.runtime import derive_seed, maybe_compile

__all__ = [
    "ACQUISITION_MODELS",
    "AcquisitionModel",
    "ClassifierAcquisition",
    "PoolOutputs",
    "SegmentationAcquisition",
    "resolve_model_name",
]


def resolve_model_name(config: SelectConfig) -> str:
    """``--model auto`` -> the mode's default backbone."""
    return DEFAULT_MODELS[config.acquisition] if config.model == "auto" else config.model


class _DropoutSegmentation(nn.Module):
    """DeepLab-v2 with channel dropout on the backbone features before the ASPP head.

    Dropout makes Monte-Carlo sampling (BALD) meaningful: the network is trained with it and
    sampled with it. ``p = 0`` is plain DeepLab-v2.
    """

    def __init__(self, network: DeepLabV2, dropout: float) -> None:
        super().__init__()
        self.network = network
        self.dropout = dropout

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features (B, F, h, w) at the output stride."""
        features: torch.Tensor = self.network.backbone.forward_features(self.network.normalize(x))[
            "out"
        ]
        return features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits upsampled to the input size (training)."""
        features = F.dropout2d(self.features(x), self.dropout, training=self.training)
        logits = self.network.classifier(features)
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


class AcquisitionModel(abc.ABC):
    """A network refitted on the labelled set each round and run over the pool.

    Args:
        dataset: The pool's dataset.
        config: Resolved options.
        device: Where to train and score.
        amp: Whether bf16 autocast is used.
        channels_last: Whether convolutions use the channels_last layout.
        compiled: Whether the network's forward is compiled with torch.compile (``--compile``).
        num_workers: DataLoader workers.
        strategy: The query strategy (decides whether dropout, embeddings, MC samples are used).
    """

    def __init__(
        self,
        dataset: SegmentationDataset,
        config: SelectConfig,
        device: torch.device,
        amp: bool,
        channels_last: bool,
        num_workers: int,
        strategy: QueryStrategy,
        compiled: bool = False,
    ) -> None:
        self.dataset = dataset
        self.config = config
        self.device = device
        self.amp = amp
        self.channels_last = channels_last
        self.compiled = compiled
        self.num_workers = num_workers
        self.strategy = strategy
        self.model_name = resolve_model_name(config)
        self.dropout = config.mc_dropout if strategy.needs_mc_samples else 0.0
        self.network: nn.Module | None = None

    # ------------------------------------------------------------------ to implement
    @abc.abstractmethod
    def build_network(self) -> nn.Module:
        """A freshly initialised network."""

    @abc.abstractmethod
    def loss(self, network: nn.Module, batch: dict[str, Any]) -> torch.Tensor | None:
        """Training loss of one batch (already on the device); ``None`` if it has no label."""

    @abc.abstractmethod
    def pool_outputs(
        self, network: nn.Module, images: torch.Tensor, mc_generator: torch.Generator | None
    ) -> dict[str, torch.Tensor]:
        """Network outputs for scoring.

        Returns:
            ``probs`` (B, C[, h, w]); ``mc_probs`` (T, B, C[, h, w]) when ``mc_generator`` is
            given; ``embeddings`` (B, D).
        """

    @abc.abstractmethod
    def check_trainable(self, labelled_ids: Sequence[str]) -> None:
        """Raise :class:`DataError` when the labelled images give nothing to learn from."""

    #: Whether training items carry the mask (segmentation) or only the label.
    with_mask: bool = False

    # ------------------------------------------------------------------ provided
    def describe(self) -> dict[str, Any]:
        """The model as recorded in ``selection.json``."""
        return {
            "mode": self.config.acquisition,
            "model": self.model_name,
            "pretrained": self.config.pretrained,
            "dropout": self.dropout,
        }

    def reset(self) -> None:
        """Re-create the network from its initial weights (same for every reset)."""
        with torch.random.fork_rng(devices=rng_devices(self.device)):
            torch.manual_seed(derive_seed(self.config.seed, "acquisition-init"))
            network = self.build_network()
        network.to(self.device)
        if self.channels_last:
            network.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.network = maybe_compile(network, self.compiled)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Weights of the network."""
        if self.network is None:
            raise RuntimeError("the acquisition model has no network yet")
        return {key: value.detach().cpu() for key, value in self.network.state_dict().items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore weights saved by :meth:`state_dict`."""
        if self.network is None:
            self.reset()
        assert self.network is not None
        self.network.load_state_dict(state)

    def to_device(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` on the device, in channels_last layout when that is used."""
        images = images.to(self.device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    def fit(self, labelled_ids: Sequence[str], round_index: int, epochs: int) -> dict[str, Any]:
        """Train on ``labelled_ids`` for ``epochs`` epochs with a fresh SGD optimiser.

        Randomness (batch order, augmentation, dropout) is derived from the seed and the round,
        so a resumed selection repeats exactly what an uninterrupted one does
        (:func:`als4gan.active.fitting.fit_acquisition`).

        Returns:
            ``{"epochs", "images", "steps", "loss", "seconds"}`` (loss = mean of the last epoch).

        Raises:
            TrainingDivergedError: If the loss becomes non-finite.
        """
        return fit_acquisition(self, labelled_ids, round_index, epochs)

    def pool_batches(self, ids: Sequence[str], with_labels: bool) -> Iterator[dict[str, Any]]:
        """``ids`` read and resized in batches of ``--score-batch-size``, in order."""
        loader = DataLoader(
            PoolImages(self.dataset, ids, self.config.image_size, with_labels=with_labels),
            batch_size=self.config.score_batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            pin_memory=self.device.type == "cuda",
        )
        yield from loader

    def score_pool(
        self,
        ids: Sequence[str],
        round_index: int,
        *,
        with_scores: bool,
        with_embeddings: bool,
        with_labels: bool = False,
        desc: str = "score pool",
    ) -> PoolOutputs:
        """Run the network over ``ids`` in streamed batches.

        Args:
            ids: Images to score, in order (rows of the outputs).
            round_index: Round number (seeds the Monte-Carlo dropout masks).
            with_scores: Compute the strategy's scores.
            with_embeddings: Keep float16 embeddings.
            with_labels: Read image labels and measure accuracy (classifier mode).
            desc: Progress-bar label.
        """
        flags = (with_scores, with_embeddings, with_labels)
        return score_ids(self, ids, round_index, flags, desc, Shard())

    def score_shard(
        self,
        ids: Sequence[str],
        round_index: int,
        flags: tuple[bool, bool, bool],
        desc: str,
        shard: Shard,
    ) -> PoolOutputs:
        """Like :meth:`score_pool` for this process's ``shard`` of the batches (rows: theirs).

        Args:
            ids: All images of the pass, in order.
            round_index: Round number (seeds the Monte-Carlo dropout masks).
            flags: ``(with_scores, with_embeddings, with_labels)``.
            desc: Progress-bar label (shown by rank 0 only).
            shard: This process's rank and the number of processes.
        """
        return score_ids(self, ids, round_index, flags, desc, shard)

    def mc_mask_shape(self, batch_size: int) -> tuple[int, ...]:
        """Shape of one Monte-Carlo dropout mask for a batch of ``batch_size`` images."""
        raise NotImplementedError(f"{type(self).__name__} draws no Monte-Carlo dropout masks")

    def mc_masks(
        self, shape: tuple[int, ...], generator: torch.Generator, device: torch.device
    ) -> Iterator[torch.Tensor]:
        """``mc_samples`` inverted-dropout masks of ``shape`` drawn from ``generator``."""
        keep = 1.0 - self.dropout
        for _ in range(self.config.mc_samples):
            mask = torch.empty(shape, device=device).bernoulli_(keep, generator=generator)
            yield mask / keep


class ClassifierAcquisition(AcquisitionModel):
    """The paper's acquisition model: a ResNet image classifier on image-level labels."""

    with_mask = False

    def build_network(self) -> nn.Module:
        """ResNet + new linear head (dropout before the head for BALD)."""
        return build_classifier(
            self.model_name,
            num_classes=len(self.dataset.label_names),
            in_channels=self.dataset.in_channels,
            pretrained=self.config.pretrained,
            dropout=self.dropout,
        )

    def check_trainable(self, labelled_ids: Sequence[str]) -> None:
        """Refuse to train when no labelled image has an image-level label.

        Raises:
            DataError: If every label is unknown (-1).
        """
        labels = [self.dataset.image_label(sample_id) for sample_id in labelled_ids]
        if all(label < 0 for label in labels):
            raise DataError(
                f"none of the {len(labels)} labelled images has an image-level label (their "
                "masks are all ignore); the classifier cannot be trained. Use --strategy random "
                "or a larger --alpha."
            )

    def loss(self, network: nn.Module, batch: dict[str, Any]) -> torch.Tensor | None:
        """Cross-entropy on image labels (-1 = unknown, ignored)."""
        labels = batch["label"]
        if not bool((labels >= 0).any()):
            return None
        logits = network(batch["image"]).float()
        return F.cross_entropy(logits, labels, ignore_index=-1)

    def mc_mask_shape(self, batch_size: int) -> tuple[int, ...]:
        """One dropout value per image and embedding channel."""
        assert isinstance(self.network, ImageClassifier)
        return (batch_size, self.network.backbone.out_channels)

    def pool_outputs(
        self, network: nn.Module, images: torch.Tensor, mc_generator: torch.Generator | None
    ) -> dict[str, torch.Tensor]:
        """Softmax, MC-dropout softmax samples and pooled embeddings."""
        assert isinstance(network, ImageClassifier)
        embed = network.embed(images).float()
        head = network.head
        outputs = {"probs": F.softmax(head(embed).float(), dim=1), "embeddings": embed}
        if mc_generator is not None:
            samples = [
                F.softmax(head(embed * mask).float(), dim=1)
                for mask in self.mc_masks(
                    self.mc_mask_shape(embed.shape[0]), mc_generator, embed.device
                )
            ]
            outputs["mc_probs"] = torch.stack(samples)
        return outputs


class SegmentationAcquisition(AcquisitionModel):
    """Pixel-wise uncertainty from a DeepLab-v2 network trained on the labelled masks."""

    with_mask = True

    def build_network(self) -> nn.Module:
        """DeepLab-v2 (small backbone, output stride 16 by default) with feature dropout."""
        network = build_segmentation_model(
            "deeplabv2",
            backbone=self.model_name,
            num_classes=self.dataset.num_classes,
            in_channels=self.dataset.in_channels,
            pretrained=self.config.pretrained,
            output_stride=self.config.output_stride,
        )
        assert isinstance(network, DeepLabV2)
        return _DropoutSegmentation(network, self.dropout)

    def check_trainable(self, labelled_ids: Sequence[str]) -> None:
        """Refuse to train when every labelled mask is entirely ignore.

        Raises:
            DataError: If no labelled pixel has a class.
        """
        ignore = self.dataset.classes.ignore_index
        for sample_id in labelled_ids:
            if bool((self.dataset.load_mask(sample_id) != ignore).any()):
                return
        raise DataError(
            f"the masks of all {len(labelled_ids)} labelled images are entirely ignore; the "
            "segmentation network cannot be trained. Use --strategy random or a larger --alpha."
        )

    def loss(self, network: nn.Module, batch: dict[str, Any]) -> torch.Tensor | None:
        """Pixel cross-entropy (ignore label skipped)."""
        mask = batch["mask"]
        ignore = self.dataset.classes.ignore_index
        if not bool((mask != ignore).any()):
            return None
        logits = network(batch["image"]).float()
        return F.cross_entropy(logits, mask, ignore_index=ignore)

    def mc_mask_shape(self, batch_size: int) -> tuple[int, ...]:
        """One dropout value per image and feature channel (the same at every position)."""
        assert isinstance(self.network, _DropoutSegmentation)
        return (batch_size, self.network.network.backbone.out_channels, 1, 1)

    def pool_outputs(
        self, network: nn.Module, images: torch.Tensor, mc_generator: torch.Generator | None
    ) -> dict[str, torch.Tensor]:
        """Pixel softmax, MC samples and globally pooled features.

        Probabilities stay at the network's output stride: cheaper than upsampled maps, and the
        same per-image means up to interpolation.
        """
        assert isinstance(network, _DropoutSegmentation)
        features = network.features(images)
        classifier = network.network.classifier
        outputs = {
            "probs": F.softmax(classifier(features).float(), dim=1),
            "embeddings": features.float().mean(dim=(2, 3)),
        }
        if mc_generator is not None:
            shape = self.mc_mask_shape(features.shape[0])
            outputs["mc_probs"] = torch.stack(
                [
                    F.softmax(classifier(features * mask).float(), dim=1)
                    for mask in self.mc_masks(shape, mc_generator, features.device)
                ]
            )
        return outputs


#: Acquisition mode -> class.
ACQUISITION_MODELS: dict[str, type[AcquisitionModel]] = {
    "classifier": ClassifierAcquisition,
    "segmentation": SegmentationAcquisition,
}
