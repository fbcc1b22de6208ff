"""Ranking and geometry helpers of the query strategies (numpy only, no model).

* :func:`rank_descending`: pool positions by score, ties to the earlier position;
* :func:`class_balance_weights`: per-class weights of the ``class-balanced`` reduction;
* :func:`k_center_greedy`: the core-set picker (Sener & Savarese 2018).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def rank_descending(scores: np.ndarray) -> np.ndarray:
    """Positions sorted by score, highest first; equal scores keep pool order (lowest first)."""
    scores = np.asarray(scores, dtype=np.float64)
    return np.lexsort((np.arange(scores.shape[0]), -scores))


def class_balance_weights(
    counts: Sequence[float] | np.ndarray, power: float = 0.5, floor: float = 1e-3
) -> np.ndarray:
    """Per-class weights that up-weight rare classes: ``w_c ~ max(f_c, floor) ** -power``.

    ``f_c`` is the share of class ``c`` in ``counts`` (pixel or image counts of the labelled
    set). The weights are scaled so that ``sum_c f_c w_c = 1``: an image with the labelled set's
    usual class mix keeps its plain mean score; one predicted to hold rare classes gains.

    Args:
        counts: Class counts (any non-negative numbers).
        power: 1 = inverse frequency; 0.5 (default) = inverse square root, gentler.
        floor: Smallest share used, so an unseen class gets a large but finite weight.

    Returns:
        ``(C,)`` float64 weights.
    """
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    shares = counts / total if total > 0 else np.full(counts.shape, 1.0 / max(1, counts.size))
    weights: np.ndarray = np.maximum(shares, floor) ** (-power)
    norm = float((shares * weights).sum())
    return weights / norm if norm > 0 else weights


def k_center_greedy(
    candidates: np.ndarray,
    centres: np.ndarray | None,
    k: int,
    chunk: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``k`` candidates greedily, each farthest from the centres and earlier picks.

    The core-set algorithm of Sener & Savarese (2018). Distances are Euclidean, computed in
    float32 chunk by chunk (memory ``O(len(candidates) x chunk)``). Ties go to the earliest
    candidate. Without centres the first pick is the candidate nearest the candidates' mean.

    Args:
        candidates: ``(M, D)`` embeddings to choose from.
        centres: ``(L, D)`` embeddings already labelled (may be empty or ``None``).
        k: Number of picks (at most ``M``).
        chunk: Centres compared at once.

    Returns:
        (positions in ``candidates`` in pick order, distance of each pick to its nearest
        centre at the time it was picked).
    """
    points = np.asarray(candidates, dtype=np.float32)
    count = points.shape[0]
    k = min(k, count)
    min_dist = np.full(count, np.inf, dtype=np.float64)
    if centres is not None and len(centres):
        norms = (points.astype(np.float64) ** 2).sum(1)
        for start in range(0, len(centres), chunk):
            block = np.asarray(centres[start : start + chunk], dtype=np.float32)
            block_norms = (block.astype(np.float64) ** 2).sum(1)
            cross = points.astype(np.float64) @ block.astype(np.float64).T
            dist = np.maximum(norms[:, None] + block_norms[None, :] - 2 * cross, 0.0)
            min_dist = np.minimum(min_dist, dist.min(axis=1))
    picks: list[int] = []
    distances: list[float] = []
    taken = np.zeros(count, dtype=bool)
    for _ in range(k):
        if np.isinf(min_dist).all():
            mean = points.mean(axis=0, dtype=np.float64)
            pick = int(np.argmin(((points - mean) ** 2).sum(1)))
            distance = math.inf
        else:
            masked = np.where(taken, -1.0, min_dist)
            pick = int(np.argmax(masked))
            distance = math.sqrt(max(0.0, float(min_dist[pick])))
        picks.append(pick)
        distances.append(distance)
        taken[pick] = True
        update = ((points - points[pick]) ** 2).sum(1, dtype=np.float64)
        min_dist = np.minimum(min_dist, update)
    return np.asarray(picks, dtype=np.int64), np.asarray(distances, dtype=np.float64)
