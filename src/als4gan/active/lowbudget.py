"""Low-budget selection through ``als4gan select``: pretrained embeddings, cached, then one pick.

``--strategy typiclust`` / ``probcover`` train no acquisition model. The pool is embedded once by
the pretrained backbone (``--model``, ``--pretrained``; globally average-pooled features at
``--image-size``), streamed batch by batch into a memory-mapped array
``selection/embeddings.npy`` (float32) with a JSON sidecar ``embeddings.json`` naming the
backbone, the sha256 of its weights, the image size and the pool ids; a later selection on the
same pool and backbone (another strategy, ``--force``, a shared ``--embedding-cache``) reuses
it. The whole budget ``B`` is then chosen in one go (same ``B`` as every other strategy), and
``selection/embedding_map.png`` shows a PCA map of the pool with the picks marked.

``--initial-strategy typiclust|probcover`` uses the same machinery for the initial set of any
other strategy; ``--strategy auto`` chooses by the labelled share of the pool.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from als4gan.active.budget import BudgetPlan
from als4gan.active.config import SelectConfig
from als4gan.active.data import PoolImages
from als4gan.active.pool import PoolState
from als4gan.active.sheet import class_histogram
from als4gan.active.strategies import LOW_BUDGET_STRATEGIES, build_strategy
from als4gan.data.base import SegmentationDataset
from als4gan.io import RunDir, read_json, write_json, write_yaml
from als4gan.runtime import default_num_workers, derive_seed, progress, resolve_device

log = logging.getLogger(__name__)

EMBEDDINGS_FILE = "embeddings.npy"
EMBEDDINGS_META = "embeddings.json"
MAP_FILE = "embedding_map.png"
EMBEDDINGS_FORMAT = "als4gan-embeddings"


def resolve_strategy_choice(
    config: SelectConfig, plan: BudgetPlan
) -> tuple[str, dict[str, Any] | None]:
    """The strategy to run: ``config.strategy``, or for ``auto`` the one its rule picks.

    Returns:
        ``(strategy name, record)``; the record (``None`` unless ``auto``) says what was chosen
        and why, and is kept in ``selection.json``.
    """
    if config.strategy != "auto":
        return config.strategy, None
    share = plan.budget / plan.pool_size
    low = share < config.auto_threshold
    chosen = config.auto_low if low else config.auto_high
    reason = (
        f"the budget B = {plan.budget} is {share:.1%} of the pool of {plan.pool_size}, "
        f"{'below' if low else 'at or above'} --auto-threshold {config.auto_threshold:g}: "
        + (
            "a model trained on so few labels is weak, so a strategy on pretrained embeddings"
            if low
            else "enough labels for a useful acquisition model"
        )
    )
    log.info("--strategy auto chose %s: %s", chosen, reason)
    return chosen, {
        "chosen": chosen,
        "share": share,
        "threshold": config.auto_threshold,
        "reason": reason,
    }


def _ids_digest(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


def _state_digest(module: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for key, value in sorted(module.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def embedding_backbone(
    config: SelectConfig, in_channels: int
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The backbone that embeds the pool, and what identifies its weights.

    Returns:
        ``(ImageClassifier, {"backbone", "pretrained", "weights_sha256"})``; without pretrained
        weights the sha256 is of the seeded random initialisation (warned: such embeddings
        carry little meaning).
    """
    from als4gan.active.acquisition import resolve_model_name
    from als4gan.models.classifier import ImageClassifier
    from als4gan.models.weights import load_pretrained

    name = resolve_model_name(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(config.seed, "embedding-init"))
        network = ImageClassifier(name, num_classes=1, in_channels=in_channels)
    loaded = load_pretrained(network.backbone, config.pretrained, name)
    if loaded is None:
        log.warning(
            "%s: --pretrained none, so the pool is embedded by a randomly initialised %s; such "
            "embeddings carry little meaning. Pass --pretrained imagenet (see 'als4gan weights "
            "list').",
            config.strategy,
            name,
        )
    sha = loaded.sha256 if loaded is not None else _state_digest(network.backbone)
    return network, {"backbone": name, "pretrained": config.pretrained, "weights_sha256": sha}


def _cached_embeddings(
    array_file: Path, meta_file: Path, key: dict[str, Any], count: int
) -> tuple[np.ndarray, dict[str, Any]] | None:
    """The cached memory map and its sidecar when they were made for ``key``, else None."""
    if not (array_file.is_file() and meta_file.is_file()):
        return None
    saved = read_json(meta_file)
    if isinstance(saved, dict) and all(saved.get(k) == v for k, v in key.items()):
        cached = np.load(array_file, mmap_mode="r")
        if cached.shape == (count, int(saved.get("dim", -1))):
            log.info("reusing the pool embeddings in %s", array_file)
            return cached, saved
    log.info("%s belongs to another pool or backbone: recomputing it", array_file)
    return None


def _embed_into(
    network: torch.nn.Module,
    loader: DataLoader[dict[str, Any]],
    device: torch.device,
    array_file: Path,
    count: int,
) -> int:
    """Embed every batch straight into a memory-mapped ``array_file``; the embedding width."""
    partial = array_file.with_name(array_file.name + ".partial")
    array: Any = None
    with torch.inference_mode():
        for batch in progress(loader, total=len(loader), desc="embed pool", unit="batch"):
            vectors = network.embed(batch["image"].to(device)).float().cpu().numpy()  # type: ignore[operator]
            if array is None:
                array = np.lib.format.open_memmap(
                    partial, mode="w+", dtype=np.float32, shape=(count, vectors.shape[1])
                )
            array[batch["position"].numpy()] = vectors
    assert array is not None
    dim = int(array.shape[1])
    array.flush()
    del array
    os.replace(partial, array_file)
    return dim


def pool_embeddings(
    config: SelectConfig,
    dataset: SegmentationDataset,
    ids: list[str],
    cache: Path,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Embeddings of ``ids`` (rows in that order) as a read-only memory map, cached in ``cache``.

    The images are streamed through a DataLoader; only one batch is in memory at a time, and
    each batch's embeddings are written straight into the memory-mapped file.

    Returns:
        ``(memmap (N, D) float32, record)``; ``record`` is the sidecar plus ``reused`` and
        ``seconds``.
    """
    started = time.perf_counter()
    device = resolve_device(config.device)
    network, identity = embedding_backbone(config, dataset.in_channels)
    key = {
        "format": EMBEDDINGS_FORMAT,
        "version": 1,
        **identity,
        "image_size": config.image_size,
        "in_channels": dataset.in_channels,
        "dataset": dataset.name,
        "count": len(ids),
        "ids_sha256": _ids_digest(ids),
    }
    array_file = cache / EMBEDDINGS_FILE
    meta_file = cache / EMBEDDINGS_META
    cached = _cached_embeddings(array_file, meta_file, key, len(ids))
    if cached is not None:
        seconds = time.perf_counter() - started
        return cached[0], {**cached[1], "reused": True, "seconds": seconds}
    cache.mkdir(parents=True, exist_ok=True)
    network.to(device).eval()
    workers = config.num_workers if config.num_workers is not None else default_num_workers()
    loader = DataLoader(
        PoolImages(dataset, ids, config.image_size),
        batch_size=config.score_batch_size,
        shuffle=False,
        num_workers=workers,
    )
    dim = _embed_into(network, loader, device, array_file, len(ids))
    meta = {**key, "dim": dim, "dtype": "float32", "ids": ids}
    write_json(meta_file, meta)
    seconds = time.perf_counter() - started
    log.info("embedded %d images (%d dims) into %s in %.1fs", len(ids), dim, array_file, seconds)
    return np.load(array_file, mmap_mode="r"), {**meta, "reused": False, "seconds": seconds}


def _record(meta: dict[str, Any]) -> dict[str, Any]:
    """The embedding facts kept in ``selection.json`` (no id list, wall time or cache use)."""
    skip = {"ids", "seconds", "reused", "format", "version"}
    return {k: v for k, v in meta.items() if k not in skip}


def pick(
    config: SelectConfig,
    dataset: SegmentationDataset,
    pool_ids: list[str],
    labelled_ids: list[str],
    name: str,
    count: int,
    seed: int,
    folder: Path,
) -> tuple[list[str], dict[str, Any], dict[str, Any]]:
    """Pick ``count`` unlabelled ids with low-budget strategy ``name``.

    Returns:
        ``(ids in pick order, record for selection.json, embedding timing: seconds, reused)``.
    """
    cache = Path(config.embedding_cache) if config.embedding_cache else folder
    points, meta = pool_embeddings(config, dataset, pool_ids, cache)
    labelled = np.isin(np.asarray(pool_ids), np.asarray(labelled_ids, dtype=str))
    strategy = build_strategy(name, num_classes=dataset.num_classes)
    result = strategy.pick(points, labelled, count, seed)  # type: ignore[attr-defined]
    rows = [int(i) for i in result.indices]
    write_embedding_map(
        folder / MAP_FILE,
        points,
        labelled,
        rows,
        f"{dataset.name}: {name} picks ({len(rows)}) on a PCA map of {len(pool_ids)} "
        f"{meta['backbone']} embeddings",
    )
    record = {
        "embeddings": _record(meta),
        name: result.details,
        "scores": [float(s) for s in result.scores],
    }
    timing = {"seconds": float(meta["seconds"]), "reused": bool(meta["reused"])}
    return [pool_ids[i] for i in rows], record, timing


def write_embedding_map(
    path: Path, points: np.ndarray, labelled: np.ndarray, rows: list[int], title: str
) -> None:
    """A PNG scatter of the pool's PCA projection, picks numbered in pick order."""
    from als4gan.active.typical import pca_2d
    from als4gan.draw.plots import figure_png, new_figure
    from als4gan.io import atomic_write_bytes

    xy = pca_2d(points)
    fig = new_figure(6.4, 5.2)
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(xy[:, 0], xy[:, 1], s=6, c="#b8c2cc", linewidths=0, label="pool")
    if labelled.any():
        ax.scatter(*xy[labelled].T, s=30, marker="s", c="#555555", label="labelled before")
    ax.scatter(*xy[rows].T, s=36, c="#d62728", edgecolors="black", linewidths=0.5, label="picked")
    for order, row in enumerate(rows[:60], start=1):
        ax.annotate(str(order), xy[row], fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("principal axis 1")
    ax.set_ylabel("principal axis 2")
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=7, loc="best")
    atomic_write_bytes(path, figure_png(fig))


def _start_folder(
    config: SelectConfig, run_dir: RunDir, name: str, plan: BudgetPlan
) -> tuple[Path, dict[str, Any]]:
    """Start ``selection/``: emptied, its ``config.yaml`` written, the stage marked running.

    One pass, nothing to resume; the embedding cache stays.

    Returns:
        The folder and the config as a dict.
    """
    from als4gan.active.loop import CONFIG_FILE, SELECTION_DIR, STAGE, _clear_state
    from als4gan.config import config_to_dict

    folder = run_dir / SELECTION_DIR
    _clear_state(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config_dict = config_to_dict(config)
    write_yaml(folder / CONFIG_FILE, config_dict)
    run_dir.mark_running(STAGE, strategy=name, budget=plan.budget)
    return folder, config_dict


def run_lowbudget_selection(
    config: SelectConfig,
    run_dir: RunDir,
    dataset: SegmentationDataset,
    pool: PoolState,
    plan: BudgetPlan,
    name: str,
    choice: dict[str, Any] | None,
    started: float,
) -> Any:
    """Select the whole budget with ``name`` (typiclust / probcover) and write the selection.

    Returns:
        The :class:`als4gan.active.loop.SelectionResult`.
    """
    from als4gan.active.loop import _finish

    assert name in LOW_BUDGET_STRATEGIES
    folder, config_dict = _start_folder(config, run_dir, name, plan)
    log.info(
        "%s: pool of %d images; budget B = %d chosen in one pass on pretrained embeddings",
        name,
        plan.pool_size,
        plan.budget,
    )
    seed = derive_seed(config.seed, "lowbudget", name)
    picked_at = time.perf_counter()
    ids, record, embedding = pick(
        config, dataset, pool.pool_ids, [], name, plan.budget, seed, folder
    )
    embed_seconds = embedding["seconds"]
    select_seconds = time.perf_counter() - picked_at - embed_seconds
    histogram = class_histogram(dataset, ids)
    pool.add_round(
        ids,
        {
            "kind": "lowbudget",
            "strategy": name,
            "seed": seed,
            "model": None,
            **record,
            "histogram": histogram,
            **({"auto": choice} if choice else {}),
        },
    )
    timing = [
        {
            "round": 0,
            "train": 0.0,
            "score": embed_seconds,
            "select": select_seconds,
            "embeddings_reused": embedding["reused"],
        }
    ]
    strategy = build_strategy(name, num_classes=dataset.num_classes)
    return _finish(
        run_dir, folder, dataset, config, config_dict, plan, pool, strategy, None,
        histogram, timing, 0, started,
    )  # fmt: skip


def initial_set(
    config: SelectConfig,
    dataset: SegmentationDataset,
    pool_ids: list[str],
    size: int,
    seed: int,
    folder: Path,
) -> tuple[list[str], dict[str, Any]]:
    """The initial set chosen by ``config.initial_strategy`` (typiclust / probcover).

    Returns:
        ``(ids, extra fields of the round-0 record)``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    ids, record, _ = pick(
        config, dataset, pool_ids, [], config.initial_strategy, size, seed, folder
    )
    return ids, record
