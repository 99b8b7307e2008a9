"""Walk a CMRxRecon input tree, reconstruct every undersampled file, write the mirrored outputs.

One file failing never stops the run: its problem is logged as one line naming the file, the
other files are still reconstructed, and the caller exits non-zero at the end. Outputs already
present with the right shape are kept (the run is resumable) unless ``overwrite`` is set, and the
temporaries a killed run left are removed first. Several workers may share one input and output
tree, each taking a disjoint :class:`Shard` of the files.
"""

from __future__ import annotations

import logging
import os
import shlex
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from genre.data.cmrx import Case, kspace_layout, mask_from_kspace, read_mask, scan_cases, stored_index
from genre.data.contract import OutputMode, expected_output_shape, reduce_image, selection
from genre.data.matio import MatArray, MatFileError, remove_stale_temporaries, write_img4ranking
from genre.recon.base import Reconstructor, SeriesInfo
from genre.submission import check_output, validate_submission
from genre.series import Neighbours

log = logging.getLogger("genre.predict")

#: complex64 copies of the data being reconstructed (one slice, or a single-frame volume) that
#: reading and a method hold at their peak, besides the raw read buffer. Measured peaks over
#: that data: 5-7x for zero-filled and 9-11x for CG-SENSE on 87-139 MB of cine and T1w k-space
#: (the GENRE-CMR network's activations are bounded by --max-batch, not by the file).
WORKING_COPIES = 12


class CaseError(Exception):
    """A case that cannot be reconstructed; ``str()`` is one line naming the file and the problem."""


class PredictionSetupError(Exception):
    """The run cannot start (no input, unwritable output); ``str()`` is one line."""


@dataclass(frozen=True)
class Shard:
    """Worker ``index`` (0-based) of ``count`` sharing one tree: the files at positions ``index``, ``index + count``, ...

    Positions are in the walk's order (sorted relative paths), so each worker's share is the same
    on every rerun, the shares are disjoint and cover the tree, and they differ in size by at most
    one file. ``str()`` is the 1-based spelling of ``--shard`` (``2/4`` is index 1 of 4).
    """

    index: int
    count: int

    def __post_init__(self):
        if not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index + 1} of {self.count} does not exist (shards are 1 to {self.count})")

    def __str__(self) -> str:
        return f"{self.index + 1}/{self.count}"

    def take(self, cases: Sequence[Case]) -> list[Case]:
        return list(cases[self.index :: self.count])


@dataclass
class RunReport:
    done: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what the submission check found afterwards
    seconds: float = 0.0
    shard: Shard | None = None
    whole_tree_check: str = ""  # for a shard: the command that checks the whole tree once every shard is done

    @property
    def ok(self) -> bool:
        return not self.failed and not self.problems


def check_input(input_root: Path) -> None:
    """Refuse a missing input folder; touches nothing."""
    if not input_root.is_dir():
        raise PredictionSetupError(f"{input_root}: input folder not found")


def check_roots(input_root: Path, output_root: Path) -> None:
    """Refuse a missing input, an output inside the input (read-only in the harness), an unwritable output."""
    check_input(input_root)
    inp, out = input_root.resolve(), output_root.resolve()
    if out == inp or inp in out.parents:
        raise PredictionSetupError(f"{output_root}: the output folder must not lie inside the input folder {input_root}")
    try:
        output_root.mkdir(parents=True, exist_ok=True)
        # An unnamed file (O_TMPFILE) where the filesystem allows, a unique name otherwise: runs
        # sharing the output tree never meet on it, and a kill leaves nothing behind.
        with tempfile.TemporaryFile(dir=output_root, prefix=".write-test."):
            pass
    except OSError as exc:
        raise PredictionSetupError(f"{output_root}: output folder is not writable ({exc.strerror or exc})") from None


def load_case(case: Case) -> tuple[MatArray, np.ndarray, tuple[int, int, int, int, int]]:
    """Open the k-space lazily and read the mask; returns (kus, mask ``(1 or frames, ky, kx)``, 5-D shape).

    The declared shapes are checked before any value is read: the k-space against the memory
    its reconstruction needs (:func:`check_memory`), the mask against the k-space. Without a
    mask file the mask is read off the nonzero k-space samples
    (:func:`genre.data.cmrx.mask_from_kspace`). What had to be assumed to read the file (no mask
    file, its one variable taken for ``kus``, real values taken as complex) is logged as one
    warning line naming it.
    """
    kus = MatArray(case.kus_path, ["kus"])
    try:
        shape = kspace_layout(case.stem, kus.shape, case.single_coil)
        check_memory(kus, shape, _reads_whole_volume(case.stem, shape))
        mask_path = case.mask_path
        assumed = []
        if mask_path is not None:
            mask = read_mask(mask_path, shape)
        else:
            mask, whole_lines = mask_from_kspace(kus, shape, case.single_coil)
            looked = ", ".join(str(p) for p in case.mask_candidates)
            assumed.append(f"no mask file found (looked for {looked}); derived the mask from the nonzero k-space samples "
                           f"({'whole ky lines' if whole_lines else 'single samples'})")
        if kus.name != "kus":
            assumed.append(f"no variable 'kus': read its only variable {kus.name!r} as the k-space")
        if not kus.is_complex:
            assumed.append(f"real-valued k-space ({kus.dtype}): read with a zero imaginary part")
        if assumed:
            log.warning("%s: %s", case.kus_path, "; ".join(assumed))
    except ValueError as exc:
        kus.close()
        raise CaseError(f"{case.kus_path}: {exc}") from None
    except BaseException:
        kus.close()
        raise
    return kus, mask, shape


def _reads_whole_volume(stem: str, shape: tuple[int, int, int, int, int]) -> bool:
    """Whether :func:`reconstruct_case` reads the whole volume at once rather than one slice at a time.

    Series of one frame go in whole, since neighbouring slices stand in for neighbouring frames there.
    """
    return SeriesInfo(stem, shape[0]).neighbours is Neighbours.SLICES


def available_memory() -> int | None:
    """Bytes of host memory this process may still take: MemAvailable, capped by its cgroup's limit; None if unknown."""
    known = []
    try:
        with open("/proc/meminfo") as meminfo:
            known += [int(line.split()[1]) * 1024 for line in meminfo if line.startswith("MemAvailable:")]
    except (OSError, ValueError, IndexError):
        pass
    # A container's limit is its cgroup's (v2, then v1); /proc/meminfo shows the host's memory.
    for limit, usage in (("memory.max", "memory.current"), ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes")):
        try:
            cap = Path("/sys/fs/cgroup", limit).read_text().strip()
            if cap != "max":
                known.append(int(cap) - int(Path("/sys/fs/cgroup", usage).read_text()))
                break
        except (OSError, ValueError):
            continue
    return min(known) if known else None


def check_memory(kus: MatArray, shape: tuple[int, int, int, int, int], whole: bool) -> None:
    """Refuse k-space whose declared ``shape`` ``(frames, slices, coils, ky, kx)`` needs more memory than is available.

    The estimate is what :func:`reconstruct_case` holds at its peak: the output image (float32,
    every frame and slice), the read buffers and a method's working copies of the data being
    reconstructed (one slice of every frame, or the whole volume when ``whole``), and where the
    file is read whole (MAT v5) the whole variable twice (scipy's array and its transpose into
    h5py order). Raises :class:`CaseError` with one line.
    """
    frames, slices, coils, ny, nx = shape
    image = frames * slices * ny * nx * 4
    chunk = frames * coils * ny * nx * (slices if whole else 1)
    needed = image + chunk * (kus.itemsize + WORKING_COPIES * 8) + (2 * kus.nbytes if kus.reads_whole else 0)
    available = available_memory()
    if available is not None and needed > available:
        raise CaseError(
            f"{kus.path}: k-space of declared shape {tuple(kus.shape)} (h5py order) needs about {_gib(needed)} of memory "
            f"to reconstruct, more than the {_gib(available)} available"
        )


def _gib(nbytes: float) -> str:
    return f"{nbytes / 2**30:.1f} GiB"


def _checked(kus: MatArray, index, shape: tuple[int, ...]) -> torch.Tensor:
    values = kus.complex64(index).reshape(shape)
    if not np.isfinite(values).all():
        raise CaseError(f"{kus.path}: k-space holds NaN or Inf values")
    return torch.from_numpy(values)


def reconstruct_case(case: Case, method: Reconstructor, mode: OutputMode) -> np.ndarray:
    """The case's output array (MATLAB order, see :mod:`genre.data.contract`).

    Only the slices the output keeps are reconstructed, one at a time, so a whole file is
    never in memory; the next slice is read while the current one is reconstructed. Series of
    one frame go in whole, since neighbouring slices stand in for neighbouring frames there.
    """
    kus, mask, shape = load_case(case)
    frames, slices, coils, ny, nx = shape
    info = SeriesInfo(case.stem, frames)
    mask_t = torch.from_numpy(np.broadcast_to(mask, (frames, ny, nx)).copy())
    image = np.zeros((frames, slices, ny, nx), np.float32)
    signal = False  # whether any sample read is nonzero
    with kus:
        if _reads_whole_volume(case.stem, shape):
            volume = _checked(kus, (), shape) * mask_t[:, None, None]
            signal = bool(volume.any())
            image[:] = method.reconstruct(volume, mask_t, info).numpy()
        else:
            _, keep = selection(case.stem, frames, slices, mode)

            def read(z: int) -> torch.Tensor:
                # h5py order (nt, nz[, nc], ny, nx): one slice is a strided read of every frame.
                index = stored_index(kus.shape, case.single_coil, slice_=z)
                return _checked(kus, index, (frames, 1, coils, ny, nx)) * mask_t[:, None, None]

            # closing(): the read in flight ends before the file closes, also on an error.
            with closing(_read_ahead(read, keep)) as chunks:
                for z, chunk in chunks:
                    signal = signal or bool(chunk.any())
                    image[:, z : z + 1] = method.reconstruct(chunk, mask_t, info).numpy()
    if not signal:
        log.warning("%s: the k-space read is all zero where the mask samples; its output is an empty image", case.kus_path)
    if not np.isfinite(image).all():
        raise CaseError(f"{case.kus_path}: the reconstruction produced NaN or Inf")
    return reduce_image(image, case.stem, mode)


def _read_ahead(read: Callable[[int], torch.Tensor], indices: Sequence[int]) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(i, read(i))`` for each index, reading the next one in a thread while the caller works on this one.

    h5py releases the GIL in its dataset reads and torch in its kernels, so the read of slice
    z+1 overlaps the reconstruction of slice z (docs/benchmarks.md: a cold disk's read is a
    large fraction of a GPU's compute time). A read's error is raised where its slice is used.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead") as pool:
        upcoming = pool.submit(read, indices[0]) if indices else None
        for position, index in enumerate(indices):
            values = upcoming.result()
            if position + 1 < len(indices):
                upcoming = pool.submit(read, indices[position + 1])
            yield index, values


def predict_tree(
    input_root: Path,
    output_root: Path,
    method: Reconstructor,
    mode: OutputMode = OutputMode.FULL,
    overwrite: bool = False,
    budget_seconds: float | None = None,
    fallbacks: Sequence[Reconstructor] = (),
    shard: Shard | None = None,
) -> RunReport:
    """Reconstruct every case below ``input_root`` (or ``shard``'s share of them) into the mirrored path below ``output_root``.

    With a time budget, the run predicts after each file how long the rest would take with the
    method in use (its mean time per file so far); when that would overrun the budget it moves
    to the next, faster method of ``fallbacks`` for the remaining files, since a missing file
    scores 0 and a classical reconstruction does not. At the end the output tree is checked as
    the graders read it (:func:`genre.submission.validate_submission`); a shard checks only its
    own outputs, since the other shards may still be writing theirs.
    """
    input_root, output_root = Path(input_root), Path(output_root)
    check_roots(input_root, output_root)
    try:
        cases, folders = scan_cases(input_root)
    except ValueError as exc:  # two inputs with one output path
        raise PredictionSetupError(str(exc)) from None
    for folder in folders:
        log.warning("%s: a folder named like an undersampled file; skipped (no output is expected for it)", folder)
    if not cases:
        raise PredictionSetupError(f"{input_root}: no undersampled files (*_kus_*.mat) found")
    # Every shard clears the whole tree: the lock spares live writes, and the shard that was
    # killed may be the one that is not rerun.
    remove_leftovers(output_root, cases)
    report = RunReport(shard=shard)
    share = shard.take(cases) if shard else cases
    chain = [method, *fallbacks]
    level = 0
    seconds_per_file: dict[int, list[float]] = {}
    start = time.perf_counter()
    log.info("%d files under %s%s; method %s, output mode %s", len(cases), input_root,
             f", {len(share)} of them for shard {shard}" if shard else "", method.name, mode.value)
    for index, case in enumerate(tqdm(share, desc=f"predict ({method.name})", unit="file", dynamic_ncols=True)):
        if budget_seconds is not None:
            level = _affordable_level(level, seconds_per_file, len(share) - index, budget_seconds - (time.perf_counter() - start), chain)
        out = case.output_path(output_root)
        tic = time.perf_counter()
        try:
            _refuse_links(output_root, out)
            if not overwrite and out.exists() and not check_output(out, expected_output_shape(case, mode)):
                report.skipped.append(out)
                log.info("kept %s (already complete)", case.relative)
                continue
            result = reconstruct_case(case, chain[level], mode)
            write_img4ranking(out, result)
        except (CaseError, MatFileError, ValueError) as exc:
            # A method's own ValueError (a bart step, a bad shape) does not know the file.
            problem = str(exc) if str(case.kus_path) in str(exc) else f"{case.kus_path}: {exc}"
            report.failed.append((case.kus_path, problem))
            log.error("FAILED %s", problem)
            continue
        except OSError as exc:
            report.failed.append((case.kus_path, f"{out}: cannot write ({exc.strerror or exc})"))
            log.error("FAILED %s: cannot write (%s)", out, exc.strerror or exc)
            continue
        except Exception as exc:  # noqa: BLE001 - one broken case must not stop the others
            report.failed.append((case.kus_path, f"{case.kus_path}: {type(exc).__name__}: {exc}"))
            log.error("FAILED %s: unexpected %s: %s", case.kus_path, type(exc).__name__, exc)
            log.debug("traceback", exc_info=True)
            continue
        took = time.perf_counter() - tic
        seconds_per_file.setdefault(level, []).append(took)
        report.done.append(out)
        remaining = (len(share) - index - 1) * float(np.mean(seconds_per_file[level]))
        log.info("wrote %s %s with %s in %.2fs; about %s left", case.relative, tuple(result.shape), chain[level].name, took, _duration(remaining))
    report.seconds = time.perf_counter() - start
    if shard is None:
        report.problems = validate_submission(output_root, input_root, mode).problems
    else:
        failed = {path for path, _ in report.failed}
        for case in share:
            if case.kus_path not in failed:  # already reported
                report.problems += check_output(case.output_path(output_root), expected_output_shape(case, mode))
        report.whole_tree_check = shlex.join(["genre", "validate-submission", str(output_root), "--input", str(input_root),
                                              "--mode", "test", "--output-mode", mode.value])
    return report


def remove_leftovers(output_root: Path, cases: Sequence[Case]) -> None:
    """Delete (and log) the temporaries that killed runs left for the outputs of ``cases``.

    Only temporaries of this package's naming for those very outputs are touched, none that a
    live run is writing (:func:`genre.data.matio.remove_stale_temporaries`), and none behind a
    symbolic link (:func:`_linked_folder`).
    """
    names: dict[Path, set[str]] = {}
    for case in cases:
        out = case.output_path(output_root)
        if _linked_folder(output_root, out) is None:
            names.setdefault(out.parent, set()).add(out.name)
    for folder, folder_names in sorted(names.items()):
        try:
            removed = remove_stale_temporaries(folder, folder_names)
        except OSError as exc:
            log.warning("%s: left any temporaries of interrupted runs in place (%s)", folder, exc.strerror or exc)
            continue
        for path in removed:
            log.warning("removed %s, the temporary of a write that was interrupted", path)


def _linked_folder(output_root: Path, out: Path) -> Path | None:
    """The outermost folder of ``out`` below ``output_root`` that is a symbolic link, or None.

    Only the folders count: an output file that is a link is replaced, not written through.
    """
    for folder in reversed(out.relative_to(output_root).parents[:-1]):
        if (output_root / folder).is_symlink():
            return output_root / folder
    return None


def _refuse_links(output_root: Path, out: Path) -> None:
    """Refuse an output whose folder below ``output_root`` is, or lies in, a symbolic link: it could lead anywhere."""
    link = _linked_folder(output_root, out)
    if link is not None:
        raise CaseError(f"{out}: its folder {link} is a symbolic link (to {os.readlink(link)}); refusing to write through it")


def _affordable_level(level: int, seconds_per_file: dict[int, list[float]], files_left: int, seconds_left: float, chain) -> int:
    """The first method from ``level`` on whose measured pace finishes the files left in time."""
    while level < len(chain) - 1 and level in seconds_per_file:
        if files_left * float(np.mean(seconds_per_file[level])) <= seconds_left:
            break
        level += 1
        log.warning("time budget: %s would not finish the %d files left in %s; using %s from here on",
                    chain[level - 1].name, files_left, _duration(max(seconds_left, 0)), chain[level].name)
    return level


def _duration(seconds: float) -> str:
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def log_summary(report: RunReport) -> None:
    log.info(
        "done in %.1fs: %d written, %d kept, %d failed%s",
        report.seconds,
        len(report.done),
        len(report.skipped),
        len(report.failed),
        f" (shard {report.shard})" if report.shard else "",
    )
    for path, problem in report.failed:
        log.error("failed: %s", problem)
    checked = f"shard {report.shard}'s outputs" if report.shard else "the output tree"
    if report.problems:
        log.error("%s would not pass the graders' checks (%d problems):", checked, len(report.problems))
        for problem in report.problems:
            log.error("  %s", problem)
    else:
        log.info("%s pass%s the submission check", checked, "" if report.shard else "es")
    if report.whole_tree_check:
        log.info("once every shard has finished, check the whole tree: %s (or rerun genre predict without "
                 "--shard, which redoes whatever is missing and then checks it)", report.whole_tree_check)
