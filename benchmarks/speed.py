"""``python -m benchmarks.speed``: GENRE-CMR inference and training speed, its hardware floor, and data-loading throughput.

For each preset and matrix size it times (median of ``--repeats`` after warm-ups; CUDA events
on CUDA, ``time.perf_counter`` on the CPU):

* inference per slice-frame and peak memory: fp32, bf16 autocast, channels-last, 1 / 4 / 8
  target frames per call, cudnn.benchmark, ``torch.compile`` and CUDA graphs
  (:mod:`benchmarks.inference`; bf16, compilation and CUDA graphs are CUDA-only and marked
  n/a on the CPU), and the reconstructor end to end on one slice: the plain path (fp32, NCHW,
  batch 1) and the final one (``genre predict``'s defaults);
* one training step with and without activation checkpointing (:mod:`benchmarks.training`);
* the floor: FLOPs and minimum bytes per slice-frame against the device's measured
  matrix-product rate and copy bandwidth, and each row's measured / floor
  (:mod:`benchmarks.floor`);
* reading a MATLAB v7.3 file slice by slice against what the final path consumes
  (:mod:`benchmarks.loading`).

Progress goes to stderr; the tables (GitHub markdown) are printed last on stdout, and
``--json`` writes everything, rewritten after every row (``"complete": false`` until the end), so
a run stopped by a time limit keeps what it measured. ``--parts`` and ``--only`` pick a subset,
to split a long GPU run into calls that each fit a time limit.

examples:
  python -m benchmarks.speed --quick                      # CPU smoke run, seconds
  python -m benchmarks.speed --device cpu --presets small --sizes 162x448 --repeats 3
  python -m benchmarks.speed --device cuda --json build/speed-cuda.json
  python -m benchmarks.speed --device cuda --presets paper --sizes 162x448 --parts inference \
      --only "torch.compile,CUDA graphs" --json build/speed-compile.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import torch

from benchmarks.floor import DeviceRates, Work, count_work, measure_rates
from benchmarks.inference import Variant, time_variant, variants
from benchmarks.loading import LAYOUTS, time_loading
from benchmarks.timing import release
from benchmarks.training import time_training
from genre.allocator import keep_freed_memory
from genre.models.config import PRESETS, preset
from genre.models.generator import Generator
from genre.device import DeviceUnavailable, resolve_device
from genre.recon.network import DEFAULT_MAX_BATCH

#: CMRxRecon 2025 test set per task: ~100 patients x ~10 files x ~10 slices x 12 frames.
TEST_SET_SLICE_FRAMES = 100 * 10 * 10 * 12
#: What the benchmark can measure, in the order it measures it.
PARTS = ("inference", "training", "loading")
_MIB = 2**20


@dataclass(frozen=True)
class Settings:
    presets: tuple[str, ...]
    sizes: tuple[tuple[int, int], ...]
    coils: int
    frames: int
    repeats: int
    loading_slices: int
    quick: bool
    compile: bool
    parts: tuple[str, ...] = PARTS
    only: tuple[str, ...] = ()  # substrings of the inference paths to run; empty: all


def parse_benchmark_size(text: str) -> tuple[int, int]:
    """``KYxKX`` -> ``(ky, kx)``, for argparse; at least the discriminator's minimum a side, since the training step runs it."""
    try:
        ny, nx = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"sizes are KYxKX, e.g. 162x448; got {text!r}") from None
    if min(ny, nx) < 24:
        raise argparse.ArgumentTypeError(f"sizes must be at least 24 a side (the discriminator's minimum), got {text}")
    return ny, nx


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.speed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto takes CUDA when present")
    parser.add_argument("--presets", help=f"comma-separated, from {', '.join(PRESETS)}; default paper,small on "
                        "CUDA, small on the CPU, small,tiny with --quick")
    parser.add_argument("--sizes", help="comma-separated KYxKX; default 162x448,246x512 on CUDA, 162x448 on the "
                        "CPU, 32x48 with --quick")
    parser.add_argument("--coils", type=int, help="receiver coils; default 10 (4 with --quick)")
    parser.add_argument("--frames", type=int,
                        help="frames of the end-to-end slice and of the loading file; default 12 (4 with --quick)")
    parser.add_argument("--repeats", type=int,
                        help="timed calls per measurement; default 5 on CUDA, 3 on the CPU, 1 with --quick")
    parser.add_argument("--json", type=Path, help="write every figure to this JSON file")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and presets: a smoke run of seconds on the CPU")
    parser.add_argument("--default-malloc", action="store_true",
                        help="leave glibc's allocator at its defaults instead of keeping freed memory as the genre "
                        "command does (genre/allocator.py); for the comparison in docs/benchmarks.md")
    parser.add_argument("--no-compile", action="store_true",
                        help="skip the torch.compile and CUDA-graph rows (minutes of compilation)")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"comma-separated, from {', '.join(PARTS)}: what to measure (default all); the rates "
                        "and the floor are always measured")
    parser.add_argument("--only", default="",
                        help="comma-separated substrings of inference path names (as in the table, e.g. "
                        "'end to end,bf16 channels-last batch 8'): run only the paths containing one of them")
    return parser.parse_args(argv)


def settings_for(args: argparse.Namespace, device: torch.device) -> Settings:
    """The explicit arguments, the rest from the defaults of ``device`` (or of ``--quick``); ``ValueError`` if unusable."""
    cuda = device.type == "cuda"
    if args.quick:
        presets, sizes, coils, frames, repeats, slices = "small,tiny", "32x48", 4, 4, 1, 2
    elif cuda:
        presets, sizes, coils, frames, repeats, slices = "paper,small", "162x448,246x512", 10, 12, 5, 4
    else:
        presets, sizes, coils, frames, repeats, slices = "small", "162x448", 10, 12, 3, 2
    chosen = tuple((args.presets or presets).split(","))
    unknown = [p for p in chosen if p not in PRESETS]
    if unknown:
        raise ValueError(f"unknown presets {', '.join(unknown)}; choose from {', '.join(PRESETS)}")
    for name, value in (("coils", args.coils), ("frames", args.frames), ("repeats", args.repeats)):
        if value is not None and value < 1:
            raise ValueError(f"--{name} must be >= 1, got {value}")
    parts = tuple(p.strip() for p in args.parts.split(",") if p.strip())
    if not parts or set(parts) - set(PARTS):
        raise ValueError(f"--parts takes a comma-separated subset of {', '.join(PARTS)}, got {args.parts!r}")
    only = tuple(o.strip() for o in args.only.split(",") if o.strip())
    names = [variant.name for variant, _ in variants(device)]
    unmatched = [o for o in only if not any(o in n for n in names)]
    if unmatched:
        raise ValueError(f"--only: no inference path contains {', '.join(map(repr, unmatched))}; "
                         f"the paths are: {'; '.join(names)}")
    return Settings(
        presets=chosen,
        sizes=tuple(parse_benchmark_size(s) for s in (args.sizes or sizes).split(",")),
        coils=args.coils or coils,
        frames=args.frames or frames,
        repeats=args.repeats or repeats,
        loading_slices=slices,
        quick=args.quick,
        compile=not args.no_compile,
        parts=parts,
        only=only,
    )


def describe_device(device: torch.device) -> dict[str, Any]:
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return {"type": "cuda", "name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
                "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()}
    model = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        model = names[0] if names else model
    return {"type": "cpu", "name": model, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads()}


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]


def _effective_batch(variant: Variant, frames: int) -> float:
    """Slice-frames sharing one read of the weights, on average."""
    if not variant.end_to_end:
        return variant.batch
    batch = variant.batch or DEFAULT_MAX_BATCH
    return frames / math.ceil(frames / batch)


def _attempt(row: dict[str, Any], label: str, device, save: Callable[[], None], measure: Callable[[], Any]) -> Any:
    """``measure()``, or ``None`` with the failure written into ``row["note"]``; the device's memory released and the report saved either way."""
    try:
        return measure()
    except Exception as exc:  # noqa: BLE001 - a failing path (OOM, a compiler error) is a result, not the end of the run
        row["note"] = _error(exc)
        _log(f"{label}: failed ({row['note']})")
        return None
    finally:
        release(device)
        save()


def _inference_rows(name: str, size, work: Work, rates: DeviceRates, state, settings: Settings, device,
                    rows: list[dict], save: Callable[[], None]) -> None:
    """Append one row per inference path to ``rows``, calling ``save`` after each."""
    cuda = device.type == "cuda"
    config = preset(name)
    for variant, skipped in variants(device, settings.compile):
        if settings.only and not any(o in variant.name for o in settings.only):
            continue
        row: dict[str, Any] = {
            "preset": name, "size": f"{size[0]}x{size[1]}", "path": variant.name, "batch": variant.batch or DEFAULT_MAX_BATCH,
            "bf16": variant.bf16 and cuda, "channels_last": variant.channels_last, "end_to_end": variant.end_to_end,
            "ms_per_slice_frame": None, "min_ms_per_slice_frame": None, "peak_mib": None,
            "floor_ms": None, "measured_over_floor": None, "note": skipped,
        }
        rows.append(row)
        if skipped:
            continue
        measured = _attempt(
            row, f"[{name} {row['size']}] {variant.name}", device, save,
            lambda: time_variant(variant, config, state, device, settings.coils, size, settings.frames, settings.repeats),
        )
        if measured is None:
            continue
        timing, slice_frames = measured
        floor = work.floor_s(rates, row["bf16"], _effective_batch(variant, settings.frames))
        per_frame = timing.median_s / slice_frames
        row.update(
            ms_per_slice_frame=1e3 * per_frame,
            min_ms_per_slice_frame=1e3 * timing.min_s / slice_frames,
            peak_mib=None if timing.peak_bytes is None else timing.peak_bytes / _MIB,
            floor_ms=1e3 * floor,
            measured_over_floor=per_frame / floor,
        )
        save()
        _log(f"[{name} {row['size']}] {variant.name}: {row['ms_per_slice_frame']:.1f} ms per slice-frame")


def _training_rows(name: str, size, state, settings: Settings, device, rows: list[dict],
                   save: Callable[[], None]) -> None:
    """Append one row per training-step case to ``rows``, calling ``save`` after each."""
    cuda = device.type == "cuda"
    cases = [(False, False), (True, False)] + ([(True, True)] if cuda else [])
    for checkpointing, channels_last in cases:
        label = f"{'bf16' if cuda else 'fp32'}, checkpointing {'on' if checkpointing else 'off'}"
        label += ", channels-last" if channels_last else ""
        row: dict[str, Any] = {"preset": name, "size": f"{size[0]}x{size[1]}", "step": label, "batch": 1,
                               "s_per_step": None, "min_s_per_step": None, "peak_mib": None, "note": None}
        rows.append(row)
        timing = _attempt(
            row, f"[{name} {row['size']}] training {label}", device, save,
            lambda: time_training(preset(name), state, device, settings.coils, size, checkpointing, channels_last,
                                  settings.repeats),
        )
        if timing is None:
            continue
        row.update(s_per_step=timing.median_s, min_s_per_step=timing.min_s,
                   peak_mib=None if timing.peak_bytes is None else timing.peak_bytes / _MIB)
        save()
        _log(f"[{name} {row['size']}] training {label}: {timing.median_s:.2f} s per step")


def run(settings: Settings, device: torch.device, report: dict[str, Any], save: Callable[[], None] = lambda: None) -> None:
    """Every measurement, filled into ``report`` (what ``--json`` writes); ``save`` is called after each row."""
    _log(f"measuring matrix-product rate and copy bandwidth on {device}")
    rates = measure_rates(device, settings.quick)
    report.update({"rates": asdict(rates), "floor": [], "inference": [], "training": [], "loading": [], "summary": []})
    save()
    for name in settings.presets:
        torch.manual_seed(0)
        with torch.device(device):
            model = Generator(preset(name)).eval()
        state = model.state_dict()
        for size in settings.sizes:
            label = f"{size[0]}x{size[1]}"
            work = count_work(model.config, settings.coils, *size)
            report["floor"].append({
                "preset": name, "size": label, **asdict(work),
                "min_bytes_fp32": work.bytes(False), "min_bytes_bf16": work.bytes(True),
                "floor_ms_fp32": 1e3 * work.floor_s(rates, False),
                "floor_ms_bf16": 1e3 * work.floor_s(rates, True) if rates.matmul_bf16 else None,
            })
            _log(f"[{name} {label}] {work.flops / 1e9:.3g} GFLOP per slice-frame")
            save()
            if "inference" in settings.parts:
                _inference_rows(name, size, work, rates, state, settings, device, report["inference"], save)
                report["summary"].append(_summary(name, label, [r for r in report["inference"]
                                                                if r["preset"] == name and r["size"] == label]))
            if "training" in settings.parts:
                _training_rows(name, size, state, settings, device, report["training"], save)
        del model, state
        release(device)
    if "loading" not in settings.parts:
        return
    for size, layout in itertools.product(settings.sizes, LAYOUTS):
        _log(f"[{size[0]}x{size[1]}] reading a MATLAB v7.3 file ({layout}) slice by slice")
        rate = time_loading(settings.frames, settings.loading_slices, settings.coils, size, settings.repeats, layout)
        label = f"{size[0]}x{size[1]}"
        consumers = {s["preset"]: s["final_ms"] for s in report["summary"] if s["size"] == label and s["final_ms"]}
        report["loading"].append({
            "size": label, "layout": layout, "frames": rate.frames, "slices": rate.slices, "coils": rate.coils,
            "file_mib": rate.file_bytes / _MIB, "slices_per_s": rate.slices_per_s,
            "slice_frames_per_s": rate.slice_frames_per_s,
            # Reading time over compute time per slice-frame, per preset's final path: above 1
            # the GPU waits for the disk even with perfect overlap; without overlap the two add.
            "read_over_compute": {p: 1e3 / rate.slice_frames_per_s / ms for p, ms in consumers.items()},
        })
        save()


def _summary(name: str, size: str, rows: list[dict]) -> dict[str, Any]:
    by_path = {r["path"]: r["ms_per_slice_frame"] for r in rows}
    plain, final = by_path.get("end to end: plain (fp32, batch 1)"), by_path.get("end to end: final (predict default)")
    return {
        "preset": name, "size": size, "plain_ms": plain, "final_ms": final,
        "speedup_final_over_plain": plain / final if plain and final else None,
        "test_set_hours_at_final": TEST_SET_SLICE_FRAMES * final / 3.6e6 if final else None,
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3g}"
    return str(value)


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def format_speed_report(report: dict[str, Any]) -> str:
    """The report as GitHub-markdown tables."""
    rates = report["rates"]
    tera = 1e12
    lines = [
        f"device: {report['device']['name']} ({report['device']['type']}); torch {report['torch']}; {report['date']}",
        "command: " + "".join(f"{k}={v} " for k, v in report["environment"].items()) + report["command"],
        f"allocator: {report['allocator']}",
        "measured: torch.mm {n} fp32 {fp32} TFLOP/s, tf32 {tf32}, bf16 {bf16}; copy {copy:.0f} GB/s".format(
            n=rates["matmul_size"], fp32=_fmt(rates["matmul_fp32"] / tera),
            tf32=_fmt(rates["matmul_tf32"] and rates["matmul_tf32"] / tera),
            bf16=_fmt(rates["matmul_bf16"] and rates["matmul_bf16"] / tera), copy=rates["copy"] / 1e9),
        "",
        "Floor per slice-frame (batch 1): FLOPs at the torch.mm rate, minimum bytes at the copy bandwidth, the larger.",
        "",
        _table(
            ["preset", "size", "GFLOP", "min MB fp32", "min MB bf16", "floor ms fp32", "floor ms bf16"],
            [[f["preset"], f["size"], f["flops"] / 1e9, f["min_bytes_fp32"] / 1e6, f["min_bytes_bf16"] / 1e6,
              f["floor_ms_fp32"], f["floor_ms_bf16"]] for f in report["floor"]],
        ),
        "",
        _table(
            ["preset", "size", "inference path", "batch", "ms / slice-frame", "min", "peak MiB", "measured / floor", "note"],
            [[r["preset"], r["size"], r["path"], r["batch"], r["ms_per_slice_frame"], r["min_ms_per_slice_frame"],
              r["peak_mib"], r["measured_over_floor"], r["note"] or ""] for r in report["inference"]],
        ),
        "",
        _table(
            ["preset", "size", "training step", "s / step", "min", "peak MiB", "note"],
            [[r["preset"], r["size"], r["step"], r["s_per_step"], r["min_s_per_step"], r["peak_mib"], r["note"] or ""]
             for r in report["training"]],
        ),
        "",
        _table(
            ["size", "layout", "file MiB", "slices / s", "slice-frames / s", "read / compute time (final path)"],
            [[r["size"], r["layout"], r["file_mib"], r["slices_per_s"], r["slice_frames_per_s"],
              ", ".join(f"{p} {v:.3f}" for p, v in r["read_over_compute"].items()) or "-"] for r in report["loading"]],
        ),
        "",
        _table(
            ["preset", "size", "plain ms", "final ms", "speed-up", f"test set h ({TEST_SET_SLICE_FRAMES:,} slice-frames)"],
            [[s["preset"], s["size"], s["plain_ms"], s["final_ms"], s["speedup_final_over_plain"], s["test_set_hours_at_final"]]
             for s in report["summary"]],
        ),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        device = resolve_device(args.device)
        settings = settings_for(args, device)
    except (DeviceUnavailable, ValueError) as exc:
        _log(str(exc))
        return 2
    kept = False if args.default_malloc else keep_freed_memory()
    started = time.perf_counter()
    report = {
        "command": "python -m benchmarks.speed " + shlex.join(sys.argv[1:] if argv is None else argv),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device": describe_device(device),
        "torch": torch.__version__,
        # The CPU allocator's settings change the CPU figures severalfold (docs/benchmarks.md).
        "environment": {k: v for k, v in os.environ.items() if k.startswith("MALLOC_") or k == "GLIBC_TUNABLES"},
        "allocator": "freed memory kept (genre/allocator.py)" if kept else "glibc defaults or the environment's",
        "settings": asdict(settings),
        "complete": False,
    }

    def save() -> None:
        if args.json:
            report["seconds"] = time.perf_counter() - started
            write_json(report, args.json)

    run(settings, device, report, save)
    report["complete"] = True
    save()
    print(format_speed_report(report))
    return 0


def write_json(report: dict[str, Any], path: Path) -> None:
    """Write ``report`` to ``path`` through a temporary file, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    partial.write_text(json.dumps(report, indent=2) + "\n")
    partial.replace(path)


if __name__ == "__main__":
    sys.exit(main())
