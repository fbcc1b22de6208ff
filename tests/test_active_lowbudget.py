"""Low-budget strategies (TypiClust, ProbCover) on hand-made embeddings with known right picks."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from als4gan.active import lowbudget
from als4gan.active.budget import plan_budget
from als4gan.active.config import SelectConfig
from als4gan.active.strategies import PoolScores, build_strategy
from als4gan.active.typical import kmeans, pca_2d, probcover, purity_delta, typiclust

DIM = 8


def _blobs(sizes: list[int], spread: float = 0.05, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Blobs around orthogonal directions (distinct after L2 normalisation), and their labels.

    Each blob's first point sits exactly at its centre: the most typical image of the blob.
    """
    rng = np.random.default_rng(seed)
    rows = []
    labels = []
    for blob, size in enumerate(sizes):
        centre = np.zeros(DIM)
        centre[blob] = 1.0
        noise = rng.normal(0, spread, (size, DIM))
        noise[0] = 0.0
        rows.append(centre + noise)
        labels += [blob] * size
    return np.concatenate(rows).astype(np.float32), np.asarray(labels)


def _with_outlier(points: np.ndarray) -> tuple[np.ndarray, int]:
    outlier = np.zeros((1, DIM), dtype=np.float32)
    outlier[0, DIM - 1] = 1.0
    outlier[0, 0] = 0.4
    return np.concatenate([points, outlier]), len(points)


def test_kmeans_separates_blobs_and_is_deterministic() -> None:
    points, truth = _blobs([30, 20, 10])
    labels, centres = kmeans(points, 3, seed=1)
    assert centres.shape == (3, DIM)
    for blob in range(3):  # every blob is one cluster
        assert len(set(labels[truth == blob].tolist())) == 1
    assert len(set(labels.tolist())) == 3
    again, _ = kmeans(points, 3, seed=1)
    assert np.array_equal(labels, again)


def test_typiclust_picks_the_centre_of_each_blob_largest_first_never_the_outlier() -> None:
    points, truth = _blobs([40, 30, 20])
    points, outlier = _with_outlier(points)
    none = np.zeros(len(points), dtype=bool)
    result = typiclust(points, none, 3, seed=0)
    picked = result.indices.tolist()
    assert [int(truth[i]) for i in picked] == [0, 1, 2]  # one per blob, largest blob first
    starts = [0, 40, 70]
    for pick, start in zip(picked, starts, strict=True):
        # the exact centre or one of its closest neighbours
        block = points[start : start + [40, 30, 20][starts.index(start)]]
        distances = np.linalg.norm(block - block[0], axis=1)
        assert distances[pick - start] <= np.sort(distances)[2]
    for budget in (1, 6, 12):
        assert outlier not in typiclust(points, none, budget, seed=3).indices.tolist()


def test_typiclust_skips_clusters_already_labelled() -> None:
    points, truth = _blobs([30, 30, 30])
    labelled = np.zeros(len(points), dtype=bool)
    labelled[[0, 30]] = True  # blobs 0 and 1 already have a label
    picked = typiclust(points, labelled, 1, seed=0).indices.tolist()
    assert truth[picked[0]] == 2
    assert not labelled[picked].any()


def test_typiclust_is_deterministic_for_a_seed() -> None:
    points, _ = _blobs([25, 25, 25, 25], spread=0.3)
    none = np.zeros(len(points), dtype=bool)
    first = typiclust(points, none, 7, seed=5)
    assert np.array_equal(first.indices, typiclust(points, none, 7, seed=5).indices)
    assert len(set(first.indices.tolist())) == 7


def test_purity_delta_lies_between_blob_spread_and_gap() -> None:
    points, _ = _blobs([50, 50], spread=0.02)
    delta, record = purity_delta(points, num_classes=2, seed=0)
    # within a blob rows are ~0.1 apart at most; blobs are sqrt(2) apart on the unit sphere
    assert 0.2 < delta < 1.5
    assert record["purity"] >= 0.95
    assert record["clusters"] == 2
    assert record["alpha"] == 0.95


def test_probcover_reaches_full_coverage_with_one_pick_per_blob() -> None:
    points, truth = _blobs([40, 30, 20])
    delta, _ = purity_delta(points, num_classes=3, seed=0)
    none = np.zeros(len(points), dtype=bool)
    result = probcover(points, none, 3, seed=0, delta=delta)
    assert sorted(int(truth[i]) for i in result.indices) == [0, 1, 2]
    assert result.details["coverage"] == 1.0
    # newly covered per pick: largest ball first, every row covered once
    assert result.scores.sum() == 90 and list(result.scores) == sorted(result.scores, reverse=True)
    again = probcover(points, none, 3, seed=0, delta=delta)
    assert np.array_equal(result.indices, again.indices)


def test_probcover_counts_labelled_balls_as_covered() -> None:
    points, truth = _blobs([40, 30, 20])
    delta, _ = purity_delta(points, num_classes=3, seed=0)
    labelled = np.zeros(len(points), dtype=bool)
    labelled[0] = True
    result = probcover(points, labelled, 2, seed=0, delta=delta)
    assert sorted(int(truth[i]) for i in result.indices) == [1, 2]
    assert 0 not in result.indices.tolist()


def test_strategies_select_through_the_registry() -> None:
    points, truth = _blobs([20, 20, 20])
    for name in ("typiclust", "probcover"):
        strategy = build_strategy(name, num_classes=3)
        assert not strategy.needs_model
        pool = PoolScores(size=50, embeddings=points[10:], labelled_embeddings=points[:10])
        selection = strategy.select(pool, 2, seed=0)
        chosen = truth[10:][selection.indices]
        assert sorted(chosen.tolist()) == [1, 2]  # blob 0 is labelled already
        assert strategy.details


def test_pca_map_is_deterministic_and_separates_blobs() -> None:
    points, truth = _blobs([20, 20])
    xy = pca_2d(points)
    assert xy.shape == (40, 2)
    assert np.array_equal(xy, pca_2d(points))
    assert abs(xy[truth == 0, 0].mean() - xy[truth == 1, 0].mean()) > 1.0


def test_auto_strategy_choice_follows_the_threshold() -> None:
    # defaults (measured): below 3 % of the pool probcover, from 3 % entropy
    tiny = plan_budget(200, labeled_ratio=0.02, budget=None, alpha=0.1, beta=0.5)
    low, record = lowbudget.resolve_strategy_choice(SelectConfig(strategy="auto"), tiny)
    assert low == "probcover"
    assert record is not None and "below" in record["reason"]
    plan = plan_budget(200, labeled_ratio=0.05, budget=None, alpha=0.1, beta=0.5)
    high, record = lowbudget.resolve_strategy_choice(SelectConfig(strategy="auto"), plan)
    assert high == "entropy"
    assert record is not None and "at or above" in record["reason"]
    config = SelectConfig(strategy="auto", auto_threshold=0.1, auto_high="hybrid")
    assert lowbudget.resolve_strategy_choice(config, plan)[0] == "probcover"
    assert lowbudget.resolve_strategy_choice(config, tiny)[0] == "probcover"
    config = SelectConfig(strategy="auto", auto_threshold=0.05, auto_high="hybrid")
    assert lowbudget.resolve_strategy_choice(config, plan)[0] == "hybrid"
    assert lowbudget.resolve_strategy_choice(SelectConfig(strategy="margin"), plan) == (
        "margin",
        None,
    )


class _TinyPool:
    """A generated pool of tiny images, each made on request (never all in memory)."""

    name = "tiny"
    in_channels = 3

    def load_image(self, sample_id: str) -> np.ndarray:
        value = int(sample_id[1:])
        rng = np.random.default_rng(value)
        return rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)


class _MeanEmbed(torch.nn.Module):
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)


def _fake_backbone(config: SelectConfig, in_channels: int) -> tuple[Any, dict[str, Any]]:
    return _MeanEmbed(), {"backbone": "mean", "pretrained": "none", "weights_sha256": "0" * 64}


def _embed_peak(count: int, folder: Path) -> tuple[int, np.ndarray]:
    ids = [f"t{i}" for i in range(count)]
    config = SelectConfig(image_size=16, score_batch_size=64, num_workers=0, device="cpu")
    tracemalloc.start()
    array, meta = lowbudget.pool_embeddings(config, _TinyPool(), ids, folder)  # type: ignore[arg-type]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert not meta["reused"]
    return peak, array


def test_embeddings_stream_with_flat_memory_and_are_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lowbudget, "embedding_backbone", _fake_backbone)
    small, _ = _embed_peak(2_000, tmp_path / "small")
    large, array = _embed_peak(20_000, tmp_path / "large")
    assert isinstance(array, np.memmap) and array.shape == (20_000, 6)
    images = 20_000 * 3 * 16 * 16 * 4  # the pool as float32: 61 MB
    # beyond the id list and its JSON sidecar, nothing grows with the pool
    assert large - small < 8_000_000 < images
    ids = [f"t{i}" for i in range(2_000)]
    config = SelectConfig(image_size=16, num_workers=0, device="cpu")
    again, meta = lowbudget.pool_embeddings(config, _TinyPool(), ids, tmp_path / "small")  # type: ignore[arg-type]
    assert meta["reused"]
    other, meta = lowbudget.pool_embeddings(config, _TinyPool(), ids[:-1], tmp_path / "small")  # type: ignore[arg-type]
    assert not meta["reused"] and other.shape == (1_999, 6)
    assert np.array_equal(np.asarray(again[:10]), np.asarray(other[:10]))


def test_pca_map_small_and_large_pools_agree() -> None:
    """The Gram route (N <= D) and the scatter route give the same map up to rounding."""
    points, _ = _blobs([3, 3], spread=0.2)  # 6 rows of width 8: Gram route
    small = pca_2d(points)
    wide = np.concatenate([points, points + 1e-9])  # 12 rows: scatter route
    large = pca_2d(wide)[:6]
    assert np.allclose(np.abs(small), np.abs(large), atol=1e-5)


def test_typicality_memory_stays_flat_in_cluster_size(monkeypatch: pytest.MonkeyPatch) -> None:
    # A big cluster (a small budget on a big pool) is processed in blocks of at most
    # TYPICALITY_BLOCK distances; the values match the one-block computation to float rounding.
    from als4gan.active import typical

    monkeypatch.setattr(typical, "TYPICALITY_BLOCK", 64 * 64)
    rng = np.random.default_rng(0)
    points = rng.normal(size=(640, 8)).astype(np.float32)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    tracemalloc.start()
    blocked = typical.typicality(points)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    monkeypatch.setattr(typical, "TYPICALITY_BLOCK", 10**12)  # every row in one block
    tracemalloc.start()
    whole = typical.typicality(points)
    peak_whole = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    np.testing.assert_allclose(blocked, whole, rtol=1e-6)
    assert peak < peak_whole / 4
