"""What an evaluation leaves behind: CSV files, fixed-width tables and PNG panels.

* ``per_file.csv``: one row per expected file (:data:`PER_FILE_COLUMNS`); metric cells are
  empty unless ``status`` is ``ok``; ``message`` says why a file is missing or failed.
* ``summary.csv``: long format (:data:`SUMMARY_COLUMNS`), one row per breakdown key (plain
  means over the scored files) and per leaderboard group (adjusted means), plus one
  ``mean of groups`` row per task, the score the leaderboard would show.
* The printed table: the same numbers for a terminal. ``inf`` (PSNR of an exact image) is
  printed as ``inf`` and averages to ``inf``, as in the grader; ``-`` means no value.

Columns ending in ``_sym`` hold the GT-referenced score; the others the argument order of the
scorer named in ``per_file.csv``'s ``grader`` column (:mod:`genre.evaluation.metrics`).
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from genre.evaluation.aggregate import BREAKDOWNS, Metrics, breakdown, plain_means, sort_key, task_scores
from genre.evaluation.evaluate import ERROR, MISSING, OK, TreeResult
from genre.evaluation.metrics import image_scores, normalize_percentile
from genre.data.cmrx import Case
from genre.data.matio import atomic_path

PER_FILE_COLUMNS = (
    "file", "task", "modality", "stem", "pattern", "acceleration", "centre", "vendor", "patient",
    "status", "message", "images", "psnr", "ssim", "nmse", "psnr_sym", "ssim_sym", "nmse_sym", "grader",
)  # fmt: skip
SUMMARY_COLUMNS = (
    "section", "key", "files_expected", "files_scored",
    "ssim", "psnr", "nmse", "ssim_sym", "psnr_sym", "nmse_sym",
)  # fmt: skip
MEAN_OF_GROUPS = "mean of groups"


def _csv_number(value: float | None) -> str:
    return "" if value is None else format(value, ".8g")


def _metric_cells(metrics: Metrics) -> list[str]:
    return [_csv_number(metrics.ssim), _csv_number(metrics.psnr), _csv_number(metrics.nmse)]


def per_file_rows(result: TreeResult) -> list[list[str]]:
    rows = []
    for f in result.files:
        case, loc = f.case, f.case.location
        lb, sym = f.leaderboard, f.symmetric
        rows.append([
            case.relative.as_posix(), loc.task, loc.modality, case.stem, case.pattern, str(case.acceleration),
            loc.centre, loc.vendor, loc.patient, f.status, f.message, str(lb.images) if lb else "",
            *(_csv_number(getattr(s, m) if s else None) for s in (lb, sym) for m in ("psnr", "ssim", "nmse")),
            result.grader.value,
        ])  # fmt: skip
    return rows


def summary_rows(result: TreeResult) -> list[list[str]]:
    rows = []
    for section, key in BREAKDOWNS.items():
        for row in breakdown(result.files, key):
            rows.append([section, row.key, str(row.expected), str(row.scored), *_metric_cells(row.leaderboard), *_metric_cells(row.symmetric)])
    for task in task_scores(result.files):
        section = f"leaderboard {task.task} by {task.grouped_by}"
        for g in task.groups:
            rows.append([section, g.key, str(g.expected), str(g.valid), *_metric_cells(g.leaderboard), *_metric_cells(g.symmetric)])
        expected = sum(g.expected for g in task.groups)
        valid = sum(g.valid for g in task.groups)
        rows.append([section, MEAN_OF_GROUPS, str(expected), str(valid), *_metric_cells(task.leaderboard), *_metric_cells(task.symmetric)])
    return rows


def _write_csv(path: Path, header: tuple[str, ...], rows: list[list[str]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def write_reports(out_dir: os.PathLike | str, result: TreeResult) -> tuple[Path, Path]:
    """Write ``per_file.csv`` and ``summary.csv`` into ``out_dir`` (created); return their paths."""
    out_dir = Path(out_dir)
    per_file, summary = out_dir / "per_file.csv", out_dir / "summary.csv"
    _write_csv(per_file, PER_FILE_COLUMNS, per_file_rows(result))
    _write_csv(summary, SUMMARY_COLUMNS, summary_rows(result))
    return per_file, summary


def _fmt(value: float, digits: int) -> str:
    if math.isnan(value):
        return "-"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}f}"


def _triple(m: Metrics) -> str:
    return f"{_fmt(m.ssim, 4):>7} {_fmt(m.psnr, 2):>7} {_fmt(m.nmse, 4):>7}"


_TRIPLE_HEAD = f"{'SSIM':>7} {'PSNR':>7} {'NMSE':>7}"


def format_tree_report(result: TreeResult) -> str:
    """The evaluation of one prediction tree as fixed-width text (see the module docstring)."""
    out = io.StringIO()
    n = len(result.files)
    out.write(
        f"{n} files expected: {result.count(OK)} scored, {result.count(MISSING)} missing, {result.count(ERROR)} failed\n"
        f"predictions   {result.pred_root}\nground truth  {result.gt_root} ({result.mode.value} mode where built from k-space)\n"
        f"scored as the organizers' {result.grader.value} scorer does (--grader)\n"
        f"Means over scored files; left: the {result.grader.value} scorer's argument order, right (sym): ground truth as reference.\n"
    )
    width = max([14, *(len(k(f.case)) for f in result.files for k in BREAKDOWNS.values())])
    for section, key in BREAKDOWNS.items():
        out.write(f"\n{section:<{width}} {'files':>9}  {_TRIPLE_HEAD}  | sym {_TRIPLE_HEAD}\n")
        for row in breakdown(result.files, key):
            files = f"{row.scored}/{row.expected}"
            out.write(f"{row.key:<{width}} {files:>9}  {_triple(row.leaderboard)}  |     {_triple(row.symmetric)}\n")
    out.write(
        "\nLeaderboard score: per group sum(valid)/expected for SSIM and PSNR, mean(valid)*(2 - valid/expected)\n"
        "for NMSE, missing and failed files 0; unweighted mean over groups (patients stand in for diseases).\n"
    )
    out.write(f"{'task':<8} {'grouped by':<14} {'groups':>6}  {_TRIPLE_HEAD}  | sym {_TRIPLE_HEAD}\n")
    for task in task_scores(result.files):
        out.write(f"{task.task:<8} {task.grouped_by:<14} {len(task.groups):>6}  {_triple(task.leaderboard)}  |     {_triple(task.symmetric)}\n")
        if task.empty_groups == len(task.groups):
            out.write(f"{'':<8} no valid file in any group: SSIM and PSNR 0, NMSE undefined (the test scorer stops with ZeroDivisionError)\n")
        elif task.empty_groups:
            out.write(f"{'':<8} {task.empty_groups} group(s) without any valid file left out of the mean, as the grader does\n")
    return out.getvalue()


def print_report(result: TreeResult, stream: TextIO | None = None) -> None:
    (stream or sys.stdout).write(format_tree_report(result))


@dataclass(frozen=True)
class ComparisonRow:
    """One row of a comparison: a (split, pattern, R) cell, each R over patterns (``any``), or ``all``."""

    group: str  # the split's value ("" without a split)
    pattern: str  # a pattern, "any" or "all"
    acceleration: str  # "" for "all"
    files: int  # files of the ground truth in the cell
    means: tuple[Metrics, ...]  # per method, in the order given


def comparison_rows(
    results: Mapping[str, TreeResult], symmetric: bool = False, split: Callable[[Case], str] | None = None
) -> list[ComparisonRow]:
    """The rows of a comparison of ``results`` (method -> tree): plain means over each method's scored files.

    ``symmetric`` picks the GT-referenced score instead of the grader's argument order;
    ``split`` (e.g. seen / unseen domain) repeats the rows for each of its values.
    """
    names = list(results)
    if not names:
        raise ValueError("a comparison needs at least one method")
    reference = results[names[0]].files
    part = split or (lambda case: "")

    def row(group: str, pattern: str, acc: str, select) -> ComparisonRow:
        means = tuple(plain_means([f for f in results[n].files if select(f)], symmetric) for n in names)
        return ComparisonRow(group, pattern, acc, sum(select(f) for f in reference), means)

    rows = []
    for group in sorted({part(f.case) for f in reference}, key=sort_key):
        mine = [f for f in reference if part(f.case) == group]
        cells = sorted({(f.case.pattern, f.case.acceleration) for f in mine}, key=lambda pr: (sort_key(pr[0]), pr[1]))
        for pattern, acc in cells:
            rows.append(row(group, pattern, str(acc), lambda f, g=group, p=pattern, a=acc: part(f.case) == g and f.case.pattern == p and f.case.acceleration == a))
        for acc in sorted({f.case.acceleration for f in mine}):
            rows.append(row(group, "any", str(acc), lambda f, g=group, a=acc: part(f.case) == g and f.case.acceleration == a))
        rows.append(row(group, "all", "", lambda f, g=group: part(f.case) == g))
    return rows


def _scorer_order(results: Mapping[str, TreeResult]) -> str:
    graders = sorted({r.grader.value for r in results.values()})
    return f"leaderboard argument order ({' and '.join(graders)} scorer)"


def _incomplete(results: Mapping[str, TreeResult]) -> list[str]:
    return [f"{name}: {r.count(MISSING)} missing and {r.count(ERROR)} failed files not in its means"
            for name, r in results.items() if not r.complete]


def format_comparison(
    results: Mapping[str, TreeResult], symmetric: bool = False, split: Callable[[Case], str] | None = None
) -> str:
    """Methods side by side as fixed-width text: the rows of :func:`comparison_rows`, SSIM/PSNR/NMSE per method.

    Files a method missed or failed are listed below.
    """
    names = list(results)
    rows = comparison_rows(results, symmetric, split)
    col = max(len(_TRIPLE_HEAD), *(len(n) for n in names))
    width = max(len(r.group) for r in rows)
    lead = f"{'':<{width}} " if width else ""
    out = io.StringIO()
    out.write(f"score: {'ground truth as reference (sym)' if symmetric else _scorer_order(results)}\n")
    out.write(f"{lead}{'':<12} {'':>3} {'files':>5} | " + " | ".join(f"{n:^{col}}" for n in names) + "\n")
    out.write(f"{lead}{'pattern':<12} {'R':>3} {'':>5} | " + " | ".join(f"{_TRIPLE_HEAD:>{col}}" for _ in names) + "\n")
    for r in rows:
        head = f"{r.group:<{width}} " if width else ""
        out.write(f"{head}{r.pattern:<12} {r.acceleration:>3} {r.files:>5} | " + " | ".join(f"{_triple(m):>{col}}" for m in r.means) + "\n")
    out.writelines(line + "\n" for line in _incomplete(results))
    return out.getvalue()


#: (metric, digits, whether larger is better) of the Markdown comparison's tables.
_MARKDOWN_METRICS = (("ssim", 4, True), ("psnr", 2, True), ("nmse", 4, False))


def format_comparison_markdown(
    results: Mapping[str, TreeResult], symmetric: bool = False, split: Callable[[Case], str] | None = None
) -> str:
    """The comparison as GitHub Markdown: one table per metric (SSIM, PSNR, NMSE), one column per method.

    The same rows and means as :func:`format_comparison`; the best method of each row is bold
    (the largest SSIM and PSNR, the smallest NMSE; ties all bold).
    """
    names = list(results)
    rows = comparison_rows(results, symmetric, split)
    grouped = any(r.group for r in rows)
    score = "ground truth as reference" if symmetric else f"the {_scorer_order(results)}"
    out = io.StringIO()
    for metric, digits, larger in _MARKDOWN_METRICS:
        out.write(f"**{metric.upper()}** ({score}; plain means over files)\n\n")
        head = (["domains"] if grouped else []) + ["pattern", "R", "files", *names]
        out.write("| " + " | ".join(head) + " |\n|" + "---|" * len(head) + "\n")
        for r in rows:
            values = [getattr(m, metric) for m in r.means]
            finite = [v for v in values if not math.isnan(v)]
            best = (max if larger else min)(finite) if finite else None
            cells = [f"**{_fmt(v, digits)}**" if best is not None and v == best else _fmt(v, digits) for v in values]
            lead = [r.group] if grouped else []
            out.write("| " + " | ".join([*lead, r.pattern, r.acceleration, str(r.files), *cells]) + " |\n")
        out.write("\n")
    out.writelines(f"{line}\n" for line in _incomplete(results))
    return out.getvalue()


def print_comparison(
    results: Mapping[str, TreeResult], symmetric: bool = False, stream: TextIO | None = None, split: Callable[[Case], str] | None = None
) -> None:
    (stream or sys.stdout).write(format_comparison(results, symmetric, split))


def write_panel(path: os.PathLike | str, gt2d: np.ndarray, preds: Mapping[str, np.ndarray], title: str = "") -> Path:
    """Save a PNG: ground truth and each method's image on top, their errors ``|pred - gt|`` below.

    Images are 2-D magnitude arrays shown as given (rows down, columns across); a MATLAB-order
    ``img4ranking[:, :, z, t]`` shows as MATLAB's ``imshow`` would. Images share the ground
    truth's grey scale and error maps one common scale, so methods compare at a glance; each
    method's title carries its GT-referenced SSIM and PSNR on that image.
    """
    # Imported here: only figure-writing callers should pay for matplotlib. The Agg canvas
    # renders without touching pyplot's global backend.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    gt = np.abs(np.asarray(gt2d, dtype=np.float64))
    if gt.ndim != 2:
        raise ValueError(f"write_panel wants a 2-D ground truth, got shape {gt.shape}")
    images = {name: np.abs(np.asarray(p, dtype=np.float64)) for name, p in preds.items()}
    for name, image in images.items():
        if image.shape != gt.shape:
            raise ValueError(f"write_panel: {name!r} has shape {image.shape}, ground truth {gt.shape}")
    errors = {name: np.abs(image - gt) for name, image in images.items()}
    vmax = float(np.percentile(gt, 99.5)) or float(gt.max()) or 1.0
    emax = max([float(np.percentile(e, 99.5)) for e in errors.values()] + [0.0]) or 1.0

    columns = 1 + len(images)
    width = 2.6  # inches per image; rows as tall as the image's aspect needs (within reason), plus titles
    aspect = min(max(gt.shape[0] / gt.shape[1], 1 / 3), 3)
    figure = Figure(figsize=(width * columns + 0.8, 2 * (width * aspect + 0.6)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(2, columns, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    axes[0, 0].imshow(gt, cmap="gray", vmin=0, vmax=vmax)
    axes[0, 0].set_title("ground truth", fontsize=9)
    reference = normalize_percentile(gt)
    for column, (name, image) in enumerate(images.items(), start=1):
        psnr, ssim, _ = image_scores(reference, normalize_percentile(image))
        axes[0, column].imshow(image, cmap="gray", vmin=0, vmax=vmax)
        axes[0, column].set_title(f"{name}\nSSIM {_fmt(ssim, 4)}  PSNR {_fmt(psnr, 2)} dB", fontsize=9)
        shown = axes[1, column].imshow(errors[name], cmap="magma", vmin=0, vmax=emax)
        axes[1, column].set_title(f"|{name} - GT|", fontsize=9)
    if images:
        figure.colorbar(shown, ax=axes[1, 1:].tolist(), shrink=0.8, label="error magnitude")
    if title:
        figure.suptitle(title, fontsize=10)
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120)
    return path
