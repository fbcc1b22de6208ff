"""Results of a grid: per-cell metrics summarised over seeds, paired comparisons, tables.

Pure functions over :class:`CellResult` rows (no model, no files): the mean and spread of test
mIoU per (ratio, method, strategy), each strategy against random and each method against
supervised paired by seed, and those as Markdown and CSV.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from als4gan.errors import ConfigError
from als4gan.experiment.spec import REFERENCE_STRATEGY, Cell
from als4gan.stats import NO_INTERVAL, PairedDifference, paired_difference


@dataclass
class CellResult:
    """Metrics of one finished cell: test mIoU and the best validation mIoU of training."""

    cell: Cell
    miou: float
    pixel_accuracy: float | None = None
    run_dir: str = ""
    val_miou: float | None = None


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return mean, std


def _check_unique(results: Sequence[CellResult]) -> None:
    seen: set[Cell] = set()
    for result in results:
        if result.cell in seen:
            raise ConfigError(
                f"cell {result.cell.name} appears twice in the results (a repeated seed?); "
                "each (strategy, ratio, seed, method) must be measured once"
            )
        seen.add(result.cell)


def summarize(results: Iterable[CellResult]) -> list[dict[str, Any]]:
    """Group results by (ratio, method, strategy): mean, std, n and gain over random.

    Test mIoU gives ``miou_mean``/``miou_std``; the best validation mIoU of each training run
    gives ``val_miou_mean``/``val_miou_std`` (``None`` when a run has no validation). The
    relative gain of a strategy is ``mean / mean_random - 1`` of test mIoU at the same ratio and
    method (``None`` when there is no random row). ``share_of_full`` is the mean test mIoU as a
    fraction of the fully supervised reference's mean (``None`` without reference cells). The
    reference row (``strategy`` ``full``, ``reference`` true) comes first.

    Raises:
        ConfigError: If a cell appears twice (e.g. a repeated seed).
    """
    results = list(results)
    _check_unique(results)
    groups: dict[tuple[float, str, str], list[CellResult]] = {}
    for result in results:
        key = (result.cell.ratio, result.cell.method, result.cell.strategy)
        groups.setdefault(key, []).append(result)
    ordered = sorted(groups.items(), key=lambda item: (item[0][2] != REFERENCE_STRATEGY, item[0]))
    rows = [_summary_row(*key, members) for key, members in ordered]
    reference = next((row for row in rows if row["reference"]), None)
    for row in rows:
        if reference is not None and reference["miou_mean"] > 0:
            row["share_of_full"] = row["miou_mean"] / reference["miou_mean"]
        baseline = next(
            (
                other
                for other in rows
                if other["strategy"] == "random"
                and other["ratio"] == row["ratio"]
                and other["method"] == row["method"]
            ),
            None,
        )
        if (
            baseline is not None
            and row["strategy"] not in ("random", REFERENCE_STRATEGY)
            and baseline["miou_mean"] > 0
        ):
            row["gain_vs_random"] = row["miou_mean"] / baseline["miou_mean"] - 1
    return rows


def _summary_row(
    ratio: float, method: str, strategy: str, members: Sequence[CellResult]
) -> dict[str, Any]:
    """Mean and spread of test (and best validation) mIoU of one group of cells."""
    mean, std = _mean_std([member.miou for member in members])
    val = [member.val_miou for member in members]
    val_mean, val_std = (
        _mean_std([v for v in val if v is not None]) if None not in val else (None, None)
    )
    return {
        "ratio": ratio,
        "method": method,
        "strategy": strategy,
        "reference": strategy == REFERENCE_STRATEGY,
        "n": len(members),
        "seeds": sorted(member.cell.seed for member in members),
        "miou_mean": mean,
        "miou_std": std,
        "share_of_full": None,
        "val_miou_mean": val_mean,
        "val_miou_std": val_std,
        "gain_vs_random": None,
    }


def paired_comparisons(results: Iterable[CellResult]) -> list[dict[str, Any]]:
    """Paired per-seed differences of test mIoU against the baselines of the grid.

    Two kinds of comparison, each over the seeds both sides have (the same seed gives the same
    initialisation and data order, and for the method comparison the same labelled set):

    - ``strategy``: each strategy against ``random`` at the same ratio and method;
    - ``method``: each method against ``supervised`` with the same strategy and ratio.

    Returns:
        One mapping per comparison: ``kind``, ``ratio``, ``method``, ``strategy`` (the tested
        side), ``baseline_method``, ``baseline_strategy``, ``n``, ``seeds``, ``mean_diff``,
        ``sd``, ``ci_low``, ``ci_high`` (fractions of mIoU; ``None`` with one seed), ``wins``,
        ``losses``, ``ties``, ``significant`` (``None`` with one seed), ``verdict`` and
        ``sentence`` (the result in plain words).

    Raises:
        ConfigError: If a cell appears twice (e.g. a repeated seed).
    """
    results = [result for result in results if not result.cell.is_reference]
    _check_unique(results)
    by_group: dict[tuple[float, str, str], dict[int, float]] = {}
    for result in results:
        key = (result.cell.ratio, result.cell.method, result.cell.strategy)
        by_group.setdefault(key, {})[result.cell.seed] = result.miou
    comparisons: list[dict[str, Any]] = []
    for (ratio, method, strategy), values in sorted(by_group.items()):
        if strategy != "random" and (ratio, method, "random") in by_group:
            baseline = by_group[(ratio, method, "random")]
            if set(values) & set(baseline):
                difference = paired_difference(values, baseline)
                comparisons.append(
                    _comparison_row(
                        "strategy", ratio, method, strategy, method, "random", difference
                    )
                )
    for (ratio, method, strategy), values in sorted(by_group.items()):
        if method != "supervised" and (ratio, "supervised", strategy) in by_group:
            baseline = by_group[(ratio, "supervised", strategy)]
            if set(values) & set(baseline):
                difference = paired_difference(values, baseline)
                comparisons.append(
                    _comparison_row(
                        "method", ratio, method, strategy, "supervised", strategy, difference
                    )
                )
    return comparisons


def _comparison_row(
    kind: str,
    ratio: float,
    method: str,
    strategy: str,
    baseline_method: str,
    baseline_strategy: str,
    difference: PairedDifference,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "kind": kind,
        "ratio": ratio,
        "method": method,
        "strategy": strategy,
        "baseline_method": baseline_method,
        "baseline_strategy": baseline_strategy,
        "n": difference.n,
        "seeds": list(difference.seeds),
        "mean_diff": difference.mean,
        "sd": difference.sd,
        "ci_low": difference.ci_low,
        "ci_high": difference.ci_high,
        "wins": difference.wins,
        "losses": difference.losses,
        "ties": difference.ties,
        "significant": difference.significant,
        "verdict": difference.verdict,
    }
    row["sentence"] = comparison_sentence(row)
    return row


def comparison_label(row: Mapping[str, Any]) -> tuple[str, str, str]:
    """``(tested side, baseline, context)`` names of a comparison row.

    ``("entropy", "random", "s4gan")`` for a strategy comparison and
    ``("s4gan", "supervised", "entropy")`` for a method comparison.
    """
    if row["kind"] == "strategy":
        return str(row["strategy"]), str(row["baseline_strategy"]), str(row["method"])
    return str(row["method"]), str(row["baseline_method"]), str(row["strategy"])


def comparison_sentence(row: Mapping[str, Any]) -> str:
    """A comparison row in plain words, with test mIoU in points.

    E.g. ``"entropy beat random by 3.1 points (95 % CI 0.4..5.8, 4 of 5 seeds)"``,
    ``"entropy vs random: no significant difference (+1.0 points, 95 % CI -2.0..4.0, 3 of 5
    seeds)"`` or ``"entropy vs random: +1.0 points on one seed (n = 1, no interval)"``.
    """
    tested, baseline, _ = comparison_label(row)
    mean = float(row["mean_diff"]) * 100
    seeds = f"{row['wins']} of {row['n']} seeds"
    if row["significant"] is None:
        return f"{tested} vs {baseline}: {mean:+.1f} points on one seed ({NO_INTERVAL})"
    interval = f"95 % CI {float(row['ci_low']) * 100:.1f}..{float(row['ci_high']) * 100:.1f}"
    if not row["significant"]:
        return (
            f"{tested} vs {baseline}: no significant difference "
            f"({mean:+.1f} points, {interval}, {tested} ahead on {seeds})"
        )
    verb = "beat" if mean > 0 else "fell behind"
    return f"{tested} {verb} {baseline} by {abs(mean):.1f} points ({interval}, {seeds})"


def _fmt_gain(gain: float | None) -> str:
    return "—" if gain is None else f"{gain * 100:+.1f}%"


def _fmt_share(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.0f}%"


#: Printed under a table whose cells have one seed each.
ONE_SEED_NOTE = (
    "One seed per cell: differences of a few mIoU points between cells are within seed-to-seed "
    "variation (run several seeds for mean ± std and confidence intervals)."
)


def _fmt_miou(mean: float | None, std: float | None, n: int) -> str:
    if mean is None:
        return "—"
    text = f"{mean * 100:.1f}"
    if n > 1 and std is not None:  # one seed has no spread to show
        text += f" ± {std * 100:.1f}"
    return text


def _fmt_points(value: float | None, sign: bool = True) -> str:
    if value is None:
        return "—"
    return f"{value * 100:+.1f}" if sign else f"{value * 100:.1f}"


def comparisons_markdown(comparisons: Sequence[Mapping[str, Any]]) -> str:
    """The paired comparisons as a Markdown table (differences in mIoU points)."""
    lines = [
        "| comparison | labelled ratio | with | seeds | difference (points) | 95 % CI "
        "| wins | result |",
        "|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for row in comparisons:
        tested, baseline, context = comparison_label(row)
        interval = (
            NO_INTERVAL
            if row["ci_low"] is None
            else f"{_fmt_points(row['ci_low'])} .. {_fmt_points(row['ci_high'])}"
        )
        lines.append(
            f"| {tested} vs {baseline} | {row['ratio']:g} | {context} | {row['n']} | "
            f"{_fmt_points(row['mean_diff'])} | {interval} | {row['wins']}/{row['n']} | "
            f"{row['verdict']} |"
        )
    return "\n".join(lines) + "\n"


def results_markdown(
    rows: Sequence[dict[str, Any]],
    title: str = "",
    comparisons: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """The results table as Markdown (mIoU in %, mean ± std over seeds).

    With ``comparisons`` (from :func:`paired_comparisons`) a second table follows: the paired
    per-seed differences, their 95 % confidence intervals and whether they are significant.
    """
    lines = [f"### {title}", ""] if title else []
    lines += [
        "| labelled ratio | method | strategy | seeds | test mIoU (%) | share of full "
        "| gain vs random | best val mIoU (%) |",
        "|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        strategy = "all labels (reference)" if row.get("reference") else row["strategy"]
        lines.append(
            f"| {row['ratio']:g} | {row['method']} | {strategy} | {row['n']} | "
            f"{_fmt_miou(row['miou_mean'], row['miou_std'], row['n'])} | "
            f"{_fmt_share(row.get('share_of_full'))} | "
            f"{_fmt_gain(row['gain_vs_random'])} | "
            f"{_fmt_miou(row.get('val_miou_mean'), row.get('val_miou_std'), row['n'])} |"
        )
    if rows and all(row["n"] == 1 for row in rows):
        lines += ["", f"*{ONE_SEED_NOTE}*"]
    if comparisons:
        lines += [
            "",
            "Paired comparisons (test mIoU, same seeds; difference = tested - baseline):",
            "",
            comparisons_markdown(comparisons).rstrip("\n"),
        ]
    return "\n".join(lines) + "\n"


def _csv(rows: Sequence[Mapping[str, Any]], fields: Sequence[str], measured: set[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()

    def cell(key: str, value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, list):
            return " ".join(str(item) for item in value)
        return f"{value:.6f}" if key in measured else value

    for row in rows:
        writer.writerow({key: cell(key, row.get(key)) for key in fields})
    return buffer.getvalue()


def results_csv(rows: Sequence[dict[str, Any]]) -> str:
    """The results table as CSV (fractions, not percentages; empty where not applicable)."""
    fields = [
        "ratio",
        "method",
        "strategy",
        "n",
        "miou_mean",
        "miou_std",
        "gain_vs_random",
        "val_miou_mean",
        "val_miou_std",
        "share_of_full",
    ]
    return _csv(rows, fields, set(fields[4:]))


def comparisons_csv(comparisons: Sequence[Mapping[str, Any]]) -> str:
    """The paired comparisons as CSV (differences as fractions of mIoU; seeds space-separated)."""
    fields = [
        "kind",
        "ratio",
        "method",
        "strategy",
        "baseline_method",
        "baseline_strategy",
        "n",
        "seeds",
        "mean_diff",
        "sd",
        "ci_low",
        "ci_high",
        "wins",
        "losses",
        "ties",
        "significant",
        "verdict",
    ]
    return _csv(comparisons, fields, {"mean_diff", "sd", "ci_low", "ci_high"})


def is_finite(value: Any) -> bool:
    """Whether ``value`` is a finite number."""
    return isinstance(value, int | float) and math.isfinite(value)
