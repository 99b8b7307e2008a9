"""CSV logs of a run: ``log.csv`` (one row per step) and ``val.csv`` (one row per epoch and validation group)."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

#: Columns of ``log.csv``; losses not enabled in a run stay empty. ``w_*`` are the CoV weights;
#: ``epoch`` counts from 1, ``fid`` and ``ear`` are sums over the supervised cascades.
STEP_FIELDS = (
    "step", "epoch", "lr", "loss", "fid", "ear", "sda", "adv", "disc", "w_fid", "w_ear", "w_sda",
    "grad_norm", "seconds", "domain", "pattern", "acceleration",
)
#: Columns of ``val.csv``: the organizers' metrics of the reconstruction and of the zero-filled input.
VAL_FIELDS = ("epoch", "step", "group", "samples", "ssim", "psnr", "nmse", "zf_ssim", "zf_psnr", "zf_nmse")


class CsvLog:
    """Append rows to a CSV file with a fixed header, flushed at every row (a crash loses nothing written)."""

    def __init__(self, path: Path, fields: Sequence[str]):
        self.path = Path(path)
        self.fields = tuple(fields)
        if not self.path.exists():
            with open(self.path, "w", newline="") as handle:
                csv.writer(handle).writerow(self.fields)

    def append(self, row: Mapping[str, object]) -> None:
        with open(self.path, "a", newline="") as handle:
            csv.DictWriter(handle, self.fields).writerow({k: _cell(row.get(k)) for k in self.fields})

    def rows(self) -> list[dict[str, str]]:
        with open(self.path, newline="") as handle:
            return list(csv.DictReader(handle))

    def truncate(self, field: str, last: int) -> None:
        """Drop rows whose integer ``field`` exceeds ``last``: what a crashed run wrote after its last checkpoint."""
        kept = [row for row in self.rows() if int(row[field]) <= last]
        with open(self.path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, self.fields)
            writer.writeheader()
            writer.writerows(kept)


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.7g}"
    return value


def column(rows: Sequence[Mapping[str, str]], name: str) -> list[float]:
    """A numeric column (empty cells as NaN)."""
    return [float(row[name]) if row.get(name) not in (None, "") else math.nan for row in rows]
