"""Low-budget selection on fixed embeddings: k-means, TypiClust and ProbCover (numpy only).

At budgets of a few percent an acquisition model trained on a few dozen images is weak and its
uncertainty points at outliers. These algorithms need no trained model: they read embeddings of
a pretrained backbone and pick images that are *typical* (TypiClust: Hacohen, Dekel & Weinshall,
ICML 2022) or that *cover* the pool (ProbCover: Yehuda et al., NeurIPS 2022).

Embeddings may be a memory-mapped ``(N, D)`` array: every pass reads it in row chunks, so memory
beyond the array itself is ``O(N)`` small vectors plus one chunk (the distance graph of
ProbCover is ``O(edges)``). Rows are L2-normalised before use (both papers do so). Everything is
deterministic for a seed; ties go to the lowest row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Rows read at once in chunked passes.
CHUNK = 1024
#: Most distances held at once by :func:`typicality` (a block of rows by the cluster's size), so
#: that memory stays flat however large a cluster is (CHUNK rows while a cluster is small).
TYPICALITY_BLOCK = CHUNK * CHUNK
#: TypiClust: neighbours of the typicality (the paper's k = 20).
TYPICALITY_NEIGHBOURS = 20
#: TypiClust: clusters smaller than this are skipped while larger ones remain (the paper's 5).
MIN_CLUSTER_SIZE = 5
#: TypiClust: most clusters (the paper caps K at 500).
MAX_CLUSTERS = 500
#: ProbCover: least share of pure delta-balls (the paper's alpha = 0.95).
PURITY = 0.95


def _rows(points: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` as float32, L2-normalised (zero rows stay zero)."""
    block = np.asarray(points[start:stop], dtype=np.float32)
    norms = np.linalg.norm(block, axis=1, keepdims=True)
    result: np.ndarray = block / np.maximum(norms, 1e-12)
    return result


def normalised(points: np.ndarray) -> np.ndarray:
    """All rows as L2-normalised float32 (for small sets; large ones go through chunks)."""
    return _rows(points, 0, len(points))


def _sq_dist(block: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances ``(len(block), len(centres))``, clipped at 0."""
    cross = block @ centres.T
    dist = (block * block).sum(1)[:, None] + (centres * centres).sum(1)[None, :] - 2 * cross
    clipped: np.ndarray = np.maximum(dist, 0.0)
    return clipped


def kmeans(
    points: np.ndarray, k: int, seed: int, iterations: int = 50, chunk: int = CHUNK
) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means with a seeded k-means++ initialisation, over L2-normalised rows.

    Args:
        points: ``(N, D)`` array (a memory map is read in chunks).
        k: Number of clusters (clipped to ``N``).
        seed: Seeds the k-means++ draws (same seed -> same clusters).
        iterations: Most Lloyd iterations (stops earlier when no label changes).
        chunk: Rows read at once.

    Returns:
        ``(labels (N,) int64, centres (k, D) float32)``. An emptied cluster keeps its centre.
    """
    count = len(points)
    k = max(1, min(k, count))
    rng = np.random.default_rng(seed)
    first = int(rng.integers(count))
    centres = [_rows(points, first, first + 1)[0]]
    closest = np.full(count, np.inf)
    for _ in range(1, k):
        latest = centres[-1][None, :]
        for start in range(0, count, chunk):
            block = _rows(points, start, start + chunk)
            closest[start : start + len(block)] = np.minimum(
                closest[start : start + len(block)], _sq_dist(block, latest)[:, 0]
            )
        total = float(closest.sum())
        if total <= 0:  # fewer distinct points than clusters: take the next unused row
            pick = len(centres) % count
        else:
            pick = int(np.searchsorted(np.cumsum(closest / total), rng.random(), side="right"))
            pick = min(pick, count - 1)
        centres.append(_rows(points, pick, pick + 1)[0])
    centre_array = np.stack(centres).astype(np.float32)
    labels = np.full(count, -1, dtype=np.int64)
    for _ in range(iterations):
        sums = np.zeros_like(centre_array, dtype=np.float64)
        sizes = np.zeros(k, dtype=np.int64)
        new_labels = np.empty(count, dtype=np.int64)
        for start in range(0, count, chunk):
            block = _rows(points, start, start + chunk)
            assigned = _sq_dist(block, centre_array).argmin(axis=1)
            new_labels[start : start + len(block)] = assigned
            np.add.at(sums, assigned, block)
            sizes += np.bincount(assigned, minlength=k)
        filled = sizes > 0
        centre_array[filled] = (sums[filled] / sizes[filled, None]).astype(np.float32)
        changed = not np.array_equal(new_labels, labels)
        labels = new_labels
        if not changed:
            break
    return labels, centre_array


def typicality(points: np.ndarray, neighbours: int = TYPICALITY_NEIGHBOURS) -> np.ndarray:
    """``1 / mean distance to the k nearest other points`` of each row (higher = more typical).

    Args:
        points: ``(M, D)`` L2-normalised rows (one cluster).
        neighbours: ``k``; clipped to ``M - 1`` (a lone point gets typicality 0).
    """
    count = len(points)
    k = min(neighbours, count - 1)
    if k < 1:
        return np.zeros(count)
    result = np.empty(count)
    rows = max(1, min(CHUNK, TYPICALITY_BLOCK // count))
    for start in range(0, count, rows):
        block = points[start : start + rows]
        dist = np.sqrt(_sq_dist(block, points).astype(np.float64))
        dist[np.arange(len(block)), np.arange(start, start + len(block))] = np.inf
        nearest = np.partition(dist, k - 1, axis=1)[:, :k]
        result[start : start + len(block)] = 1.0 / (nearest.mean(axis=1) + 1e-8)
    return result


@dataclass
class LowBudgetPick:
    """Rows a low-budget strategy picked, and what it decided on the way.

    Attributes:
        indices: Picked rows (never labelled ones), in pick order.
        scores: Per pick: typicality (TypiClust) or newly covered points (ProbCover).
        details: Recorded in ``selection.json`` (clusters, delta, purity, coverage, ...).
    """

    indices: np.ndarray
    scores: np.ndarray
    details: dict[str, Any] = field(default_factory=dict)


def _visit_order(
    clusters: np.ndarray, labelled: np.ndarray, k: int, min_cluster_size: int
) -> tuple[list[int], list[int]]:
    """TypiClust's cluster order and the clusters visited first.

    Order: fewest labelled rows, then largest, then lowest index. Visited first: the clusters
    of at least ``min_cluster_size`` rows (all of them when there are none).
    """
    sizes = np.bincount(clusters, minlength=k)
    existing = np.bincount(clusters[labelled], minlength=k)
    order = [int(c) for c in np.lexsort((np.arange(k), -sizes, existing)) if sizes[c] > 0]
    large = [c for c in order if sizes[c] >= min_cluster_size]
    return order, large or order


def _most_typical(
    points: np.ndarray,
    clusters: np.ndarray,
    labelled: np.ndarray,
    orders: tuple[list[int], list[int]],
    budget: int,
    neighbours: int,
) -> tuple[list[int], list[float]]:
    """Visit the clusters in turn, taking each one's most typical unlabelled row."""
    order, visit = orders
    taken = labelled.copy()
    picks: list[int] = []
    scores: list[float] = []
    position = 0
    while len(picks) < budget:
        cluster = visit[position % len(visit)]
        position += 1
        members = np.flatnonzero((clusters == cluster) & ~taken)
        if members.size == 0:
            if all(not ((clusters == c) & ~taken).any() for c in visit):
                visit = [c for c in order if ((clusters == c) & ~taken).any()]
            continue
        values = typicality(normalised(points[members]), min(neighbours, members.size // 2))
        best = int(np.argmax(values))  # ties: the earliest row
        picks.append(int(members[best]))
        scores.append(float(values[best]))
        taken[members[best]] = True
    return picks, scores


def typiclust(
    points: np.ndarray,
    labelled: np.ndarray,
    budget: int,
    seed: int,
    *,
    max_clusters: int = MAX_CLUSTERS,
    min_cluster_size: int = MIN_CLUSTER_SIZE,
    neighbours: int = TYPICALITY_NEIGHBOURS,
) -> LowBudgetPick:
    """TypiClust: one typical image from each of the largest clusters without a label.

    K-means with ``K = min(labelled + budget, max_clusters)``. Clusters are visited by fewest
    labelled images first, then largest first; clusters of fewer than ``min_cluster_size``
    images are skipped unless no larger one exists. From each visited cluster the unlabelled
    image with the highest typicality (computed among the cluster's unlabelled images) is
    taken. With more picks than clusters the visit order repeats.

    Args:
        points: ``(N, D)`` embeddings of the whole pool (memory map allowed).
        labelled: ``(N,)`` booleans, true for already labelled rows.
        budget: Images to pick (at most the unlabelled count).
        seed: Seeds k-means.
        max_clusters: Cap on K.
        min_cluster_size: Smaller clusters are visited only when no larger one is left.
        neighbours: k of the typicality (halved for small clusters, as in the paper).
    """
    labelled = np.asarray(labelled, dtype=bool)
    count = len(points)
    budget = min(budget, int((~labelled).sum()))
    k = max(1, min(int(labelled.sum()) + budget, max_clusters, count))
    clusters, _ = kmeans(points, k, seed)
    sizes = np.bincount(clusters, minlength=k)
    order, visit = _visit_order(clusters, labelled, k, min_cluster_size)
    picks, scores = _most_typical(points, clusters, labelled, (order, visit), budget, neighbours)
    return LowBudgetPick(
        indices=np.asarray(picks, dtype=np.int64),
        scores=np.asarray(scores),
        details={
            "clusters": k,
            "cluster_sizes": [int(s) for s in sizes],
            "picked_clusters": [int(clusters[i]) for i in picks],
            "min_cluster_size": min_cluster_size,
            "neighbours": neighbours,
        },
    )


def nearest_other_cluster(points: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """Per row, the distance to the nearest row of another cluster (``inf`` if none)."""
    count = len(points)
    result = np.full(count, np.inf)
    for start in range(0, count, CHUNK):
        block = _rows(points, start, start + CHUNK)
        own = clusters[start : start + len(block)]
        for other in range(0, count, CHUNK):
            rows = _rows(points, other, other + CHUNK)
            dist = _sq_dist(block, rows).astype(np.float64)
            dist[own[:, None] == clusters[other : other + len(rows)][None, :]] = np.inf
            result[start : start + len(block)] = np.minimum(
                result[start : start + len(block)], dist.min(axis=1)
            )
    distances: np.ndarray = np.sqrt(result)
    return distances


def purity_delta(
    points: np.ndarray, num_classes: int, seed: int, purity: float = PURITY
) -> tuple[float, dict[str, Any]]:
    """ProbCover's delta: the largest ball radius whose purity stays at least ``purity``.

    A ball ``B(x, delta) = {y : |x - y| < delta}`` is pure when all its points share x's
    k-means cluster (``K = num_classes``), that is when ``delta <=`` the distance from x to
    the nearest point of another cluster. So the share of pure balls at ``delta`` is the share
    of rows whose such distance is at least ``delta``, and the largest delta keeping
    it ``>= purity`` is an order statistic of those distances (computed exactly, no grid).

    Returns:
        ``(delta, record)``; ``record`` holds K, the purity target, the purity reached and
        the purity at a few other radii (to see how sharp the choice is).
    """
    count = len(points)
    clusters, _ = kmeans(points, max(1, num_classes), seed)
    other = np.sort(nearest_other_cluster(points, clusters))
    finite = other[np.isfinite(other)]
    allowed = math.floor((1.0 - purity) * count + 1e-9)
    delta = float(other[min(allowed, count - 1)]) if finite.size else math.inf
    if not math.isfinite(delta) or delta <= 0:
        # one cluster only, or duplicates at the boundary: fall back to the median distance
        # to the nearest other row
        delta = float(np.median(finite)) if finite.size else 1.0
        if delta <= 0:
            delta = 1e-6

    def share(radius: float) -> float:
        return float((other >= radius).mean())

    record = {
        "rule": "largest delta with purity >= alpha (k-means labels, K = classes)",
        "clusters": int(max(1, num_classes)),
        "alpha": purity,
        "delta": delta,
        "purity": share(delta),
        "purity_at": {f"{factor:g}x": share(delta * factor) for factor in (0.5, 2.0, 4.0)},
    }
    return delta, record


def _ball_edges(points: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (row, row in its delta-ball) as two ``int32`` arrays (chunked distances)."""
    count = len(points)
    sources: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    for start in range(0, count, CHUNK):
        block = _rows(points, start, start + CHUNK)
        for other in range(0, count, CHUNK):
            rows = _rows(points, other, other + CHUNK)
            near = np.argwhere(_sq_dist(block, rows) < delta * delta)
            sources.append((near[:, 0] + start).astype(np.int32))
            targets.append((near[:, 1] + other).astype(np.int32))
    return np.concatenate(sources), np.concatenate(targets)


def _greedy_cover(
    source: np.ndarray,
    target: np.ndarray,
    covered: np.ndarray,
    labelled: np.ndarray,
    budget: int,
    seed: int,
) -> tuple[list[int], list[float]]:
    """Pick the rows covering the most uncovered rows (``covered`` is updated in place)."""
    count = len(covered)
    taken = labelled.copy()
    picks: list[int] = []
    scores: list[float] = []
    rng = np.random.default_rng(seed)
    while len(picks) < budget:
        degree = np.bincount(source, minlength=count).astype(np.int64)
        degree[taken] = -1
        best = int(np.argmax(degree))
        if degree[best] <= 0:
            free = np.flatnonzero(~taken)
            best = int(free[rng.integers(free.size)])
            gain = 0
        else:
            gain = int(degree[best])
            newly = target[source == best]
            covered[newly] = True
            keep = ~covered[target]
            source, target = source[keep], target[keep]
        picks.append(best)
        scores.append(float(gain))
        taken[best] = True
    return picks, scores


def probcover(
    points: np.ndarray,
    labelled: np.ndarray,
    budget: int,
    seed: int,
    *,
    delta: float,
) -> LowBudgetPick:
    """ProbCover: greedy maximum coverage of delta-balls.

    Each pick is the unlabelled row whose ball covers the most rows not yet covered (ties:
    the earliest row); balls of labelled rows count as covered from the start. Once all is
    covered the remaining picks are drawn at random (seeded) from the unlabelled rows.

    Args:
        points: ``(N, D)`` embeddings of the whole pool (memory map allowed).
        labelled: ``(N,)`` booleans.
        budget: Images to pick.
        seed: Seeds the draws after full coverage.
        delta: Ball radius (see :func:`purity_delta`).
    """
    labelled = np.asarray(labelled, dtype=bool)
    count = len(points)
    budget = min(budget, int((~labelled).sum()))
    source, target = _ball_edges(points, delta)
    edges = int(source.size)
    covered = np.zeros(count, dtype=bool)
    for row in np.flatnonzero(labelled):
        covered[target[source == row]] = True
    keep = ~covered[target]
    source, target = source[keep], target[keep]
    picks, scores = _greedy_cover(source, target, covered, labelled, budget, seed)
    return LowBudgetPick(
        indices=np.asarray(picks, dtype=np.int64),
        scores=np.asarray(scores),
        details={
            "delta": delta,
            "edges": edges,
            "mean_ball_size": edges / max(1, count),
            "coverage": float(covered.mean()),
        },
    )


def pca_2d(points: np.ndarray, chunk: int = CHUNK) -> np.ndarray:
    """``(N, 2)`` projection of L2-normalised rows on their two principal axes (chunked).

    Signs are fixed (largest |loading| positive) so the map does not flip between runs. A pool
    smaller than the embedding width is projected through its ``N x N`` Gram matrix (a small
    eigenproblem), a larger one through the ``D x D`` scatter matrix, accumulated in chunks.
    """
    count = len(points)
    dim = points.shape[1]
    if count <= dim:
        rows = _rows(points, 0, count).astype(np.float64)
        rows -= rows.mean(axis=0)
        values, vectors = np.linalg.eigh(rows @ rows.T)
        top = np.argsort(values)[::-1][:2]
        projected = vectors[:, top] * np.sqrt(np.maximum(values[top], 0.0))
        if projected.shape[1] < 2:
            projected = np.pad(projected, ((0, 0), (0, 2 - projected.shape[1])))
        signs = np.sign(projected[np.abs(projected).argmax(axis=0), np.arange(2)])
        gram_result: np.ndarray = projected * np.where(signs == 0, 1.0, signs)
        return gram_result
    total = np.zeros(dim)
    for start in range(0, count, chunk):
        total += _rows(points, start, start + chunk).sum(0, dtype=np.float64)
    mean = total / max(1, count)
    scatter = np.zeros((dim, dim))
    for start in range(0, count, chunk):
        block = _rows(points, start, start + chunk).astype(np.float64) - mean
        scatter += block.T @ block
    values, vectors = np.linalg.eigh(scatter)
    axes = vectors[:, np.argsort(values)[::-1][:2]]
    if axes.shape[1] < 2:
        axes = np.pad(axes, ((0, 0), (0, 2 - axes.shape[1])))
    signs = np.sign(axes[np.abs(axes).argmax(axis=0), np.arange(axes.shape[1])])
    axes = axes * np.where(signs == 0, 1.0, signs)
    result = np.empty((count, 2))
    for start in range(0, count, chunk):
        result[start : start + chunk] = (
            _rows(points, start, start + chunk).astype(np.float64) - mean
        ) @ axes
    return result
