"""The files of a training tree: their headers read once, unusable ones skipped, and the train/validation/unseen split."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from genre.data.cmrx import FULLY_SAMPLED_VARIABLES, TrainingCase, kspace_layout, mask_layout
from genre.data.matio import MatArray, MatFileError
from genre.series import Neighbours, neighbours

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SeriesFile:
    """A usable training file: its case, internal 5-D shape ``(frames, slices, coils, ky, kx)`` and checked masks."""

    case: TrainingCase
    shape: tuple[int, int, int, int, int]
    masks: tuple[tuple[str, int, Path], ...]  # (pattern, acceleration, path) with a fitting shape

    @property
    def neighbours(self) -> Neighbours:
        return neighbours(self.case.stem, self.shape[0])


def scan_files(cases: Sequence[TrainingCase]) -> list[SeriesFile]:
    """Read the headers of every case's k-space and masks; unusable files are skipped with a warning.

    Compressed (chunked) k-space files are counted and reported once: every training sample
    inflates the chunks it touches, up to most of a file (``genre repack`` rewrites them).
    """
    files = []
    chunked = 0
    for case in cases:
        try:
            with MatArray(case.kspace_path, FULLY_SAMPLED_VARIABLES) as data:
                shape = kspace_layout(case.stem, data.shape)
                chunked += data.chunked
        except (MatFileError, ValueError) as exc:
            log.warning("skipped %s", exc if isinstance(exc, MatFileError) else f"{case.kspace_path}: {exc}")
            continue
        masks = []
        for pattern, acceleration, path in case.masks:
            try:
                with MatArray(path, ["mask"]) as mask:
                    mask_layout(mask.shape, shape)
            except (MatFileError, ValueError) as exc:
                log.warning("skipped mask %s", exc if isinstance(exc, MatFileError) else f"{path}: {exc}")
                continue
            masks.append((pattern, acceleration, path))
        files.append(SeriesFile(case, shape, tuple(masks)))
    if chunked:
        log.warning(
            "%d of %d k-space files are compressed MATLAB v7.3 (chunked): each training sample inflates the chunks "
            "it touches, which can be most of a file; `genre repack --input TREE --output COPY` rewrites them "
            "contiguous (docs/benchmarks.md, \"Reading compressed v7.3 files\")", chunked, len(files))
    return files


def split_cases(
    cases: Sequence[TrainingCase], val_patients: int = 1, holdout_domains: Sequence[str] = ()
) -> tuple[list[TrainingCase], list[TrainingCase], list[TrainingCase]]:
    """``(train, validation, unseen)`` cases.

    A patient is a (centre/vendor, ``Pxxx``) pair across modalities. Per centre/vendor domain
    the last ``val_patients`` patients (sorted by name) go to validation, but only where the
    domain has more patients than that, so that every domain keeps training data. Every case of
    a domain in ``holdout_domains`` goes to ``unseen`` (the seen-vs-unseen experiment).
    Raises ``ValueError`` for a held-out domain that is not in the tree.
    """
    present = {c.location.domain for c in cases}
    missing = sorted(set(holdout_domains) - present)
    if missing:
        raise ValueError(f"held-out domains not in the tree: {', '.join(missing)} (present: {', '.join(sorted(present))})")
    unseen = [c for c in cases if c.location.domain in holdout_domains]
    seen = [c for c in cases if c.location.domain not in holdout_domains]
    patients: dict[str, set[str]] = defaultdict(set)
    for c in seen:
        patients[c.location.domain].add(c.location.patient)
    held = {
        (domain, p)
        for domain, names in patients.items()
        if len(names) > val_patients
        for p in sorted(names)[len(names) - val_patients :]
    }
    train = [c for c in seen if (c.location.domain, c.location.patient) not in held]
    val = [c for c in seen if (c.location.domain, c.location.patient) in held]
    return train, val, unseen
