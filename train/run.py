"""Set up and run a training: data split, datasets, process group, resumption, then :meth:`Trainer.fit`.

This is what ``genre train`` calls; it is the same under ``torchrun`` (every process runs it).
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import ConcatDataset, Dataset

from genre.data.cmrx import find_training_cases
from genre.data.curriculum import curriculum_accelerations
from genre.data.dataset import TrainingDataset
from genre.data.simulation import SimulatedDataset
from genre.data.training_files import scan_files, split_cases
from genre.device import resolve_device
from genre.weights_file import WeightsFileError, load_generator, read_sidecar
from genre.train import training_state
from genre.train.config import TrainConfig
from genre.train.distributed import DistContext, broadcast_object, cleanup, init_distributed
from genre.train.trainer import Trainer

log = logging.getLogger("genre.train")

#: Settings that change how a run is carried out, not what it computes: a resumed run takes them
#: from the command line; every other setting comes from the run's checkpoint.
RUNTIME_FIELDS = ("num_workers", "ckpt_every", "keep_checkpoints", "stop_after")


class TrainingSetupError(Exception):
    """The run cannot start (no training data, an existing run in the way); ``str()`` is one line."""


class _Combined(ConcatDataset):
    """Training datasets one after the other, with their domains and epochs (the trainer's dataset interface)."""

    def __init__(self, parts: list):
        super().__init__(parts)
        self.domains = [d for part in parts for d in part.domains]

    def set_epoch(self, epoch: int, accelerations=None) -> None:
        for part in self.datasets:
            part.set_epoch(epoch, accelerations)


def build_datasets(config: TrainConfig, data: Path | None, ctx: DistContext) -> tuple[Dataset, dict[str, Dataset]]:
    """Training dataset and validation datasets.

    From the files of ``data`` (a training tree; ``seen``: held-out patients, ``unseen``:
    held-out domains) and/or ``config.simulated`` samples per epoch simulated on the fly
    (validated on ``config.simulated_val`` fixed simulated samples, group ``simulated``).
    Rank 0 scans the file headers and shares the result, so every process sees the same files.
    """
    if data is None and not config.simulated:
        raise TrainingSetupError("no training data: give --data, --simulated N or both")
    adjacent = config.generator_config().adjacent
    first = curriculum_accelerations(config.curriculum, 0, config.epochs)
    final = curriculum_accelerations(config.curriculum, config.epochs - 1, config.epochs)
    parts, val_sets = [], {}
    if data is not None:
        train_part, val_sets = _file_datasets(config, Path(data), ctx, adjacent, first, final)
        parts.append(train_part)
    if config.simulated:
        parts.append(SimulatedDataset(config.simulated, adjacent, first, config.seed, config.simulation))
        if config.simulated_val:
            val_sets["simulated"] = SimulatedDataset(config.simulated_val, adjacent, final, config.seed + 1,
                                                     config.simulation, fixed=True)
    return (parts[0] if len(parts) == 1 else _Combined(parts)), val_sets


def _file_datasets(config: TrainConfig, data: Path, ctx: DistContext, adjacent: int, first, final):
    files = None
    if ctx.is_main:
        files = _scan(config, data)
    files = broadcast_object(ctx, files)
    if isinstance(files, str):
        raise TrainingSetupError(files)
    train_files, val_files, unseen_files = files
    sizes = sorted({f.shape[2:] for f in train_files})
    if config.batch_size > 1 and len(sizes) > 1:
        raise TrainingSetupError(
            f"batch size {config.batch_size} needs one matrix size (coils, ky, kx), the training files have "
            f"{len(sizes)}: {', '.join(map(str, sizes[:4]))}{' ...' if len(sizes) > 4 else ''}; use batch size 1"
        )
    train_set = TrainingDataset(train_files, adjacent, config.domain_key, first, config.seed, config.acs)
    # Validation always groups by centre/vendor and draws from every acceleration of the last
    # stage, with the same masks every epoch, so that epochs compare.
    val_sets = {
        group: TrainingDataset(group_files, adjacent, "centre/vendor", final, config.seed, config.acs)
        for group, group_files in (("seen", val_files), ("unseen", unseen_files))
        if group_files
    }
    return train_set, val_sets


def initial_weights(config: TrainConfig) -> dict[str, torch.Tensor] | None:
    """The generator state of ``config.init_weights`` (None without it); raises :class:`TrainingSetupError`.

    The file's generator must have this run's configuration, up to how it is computed
    (activation checkpointing, bf16) and up to appended cascades: fine-tuning, or growing a
    trained network by cascades that start near the identity (:func:`genre.models.generator.grown_state`).
    """
    if config.init_weights is None:
        return None
    try:
        start = load_generator(config.init_weights)
    except WeightsFileError as exc:
        raise TrainingSetupError(str(exc)) from None
    computed = ("checkpointing", "bf16", "cascades")
    wanted = {k: v for k, v in config.generator_config().to_dict().items() if k not in computed}
    found = {k: v for k, v in start.config.to_dict().items() if k not in computed}
    if wanted != found:
        differ = sorted(k for k in wanted if wanted[k] != found.get(k))
        raise TrainingSetupError(f"{config.init_weights}: a generator of another configuration than the "
                                 f"{config.preset} preset's (differs in {', '.join(differ)})")
    have, need = start.config.cascades, config.generator_config().cascades
    if have > need:
        raise TrainingSetupError(f"{config.init_weights}: {have} cascades, more than this run's {need}")
    if have < need:
        log.info("growing %s from %d to %d cascades: the appended ones start near the identity", config.init_weights,
                 have, need)
    return start.state_dict()


def lineage(config: TrainConfig) -> list[str]:
    """The commands that made ``config.init_weights``, from its sidecar: a fine-tuning's sidecar lists them before its own.

    Empty without initial weights or when their sidecar records none.
    """
    if config.init_weights is None:
        return []
    try:
        summary = read_sidecar(config.init_weights).get("summary") or {}
    except WeightsFileError:
        return []  # initial_weights() reports an unusable file
    return [str(c) for c in summary.get("commands", [])]


def _data_description(config: TrainConfig, data: Path | None) -> str:
    """What the run trains on, for config.json and the weights' sidecar."""
    parts = [str(data)] if data is not None else []
    if config.simulated:
        parts.append(f"{config.simulated} samples per epoch simulated on the fly (genre.data.simulation, "
                     f"sources {', '.join(config.simulation.sources)})")
    return " + ".join(parts)


def _scan(config: TrainConfig, data: Path):
    """The usable files per split, or a one-line problem (a string, so that it can be broadcast)."""
    if not data.is_dir():
        return f"{data}: training data folder not found"
    cases = find_training_cases(data)
    if not cases:
        return f"{data}: no training files (MultiCoil/<Modality>/TrainingSet/FullSample/<Centre>/<Vendor>/<Pxxx>/<stem>.mat)"
    try:
        train, val, unseen = split_cases(cases, config.val_patients, config.holdout_domains)
    except ValueError as exc:
        return f"{data}: {exc}"
    train_files, val_files, unseen_files = scan_files(train), scan_files(val), scan_files(unseen)
    if not train_files:
        return f"{data}: no readable training files left for training"
    log.info("%d training files, %d validation files (held-out patients), %d files of held-out domains",
             len(train_files), len(val_files), len(unseen_files))
    return train_files, val_files, unseen_files


def resumable_state(out: Path) -> tuple[Path, dict[str, Any], TrainConfig]:
    """The newest training state in ``out`` that can be resumed from: its path, the state and its config.

    A newer one that cannot (truncated by a kill, or not a training state) is skipped with a
    warning naming it; none at all raises :class:`TrainingSetupError` with the newest one's problem.
    """
    problems = []
    for path in reversed(training_state.list_states(out)):
        try:
            state = training_state.load_state(path)
            config = _saved_config(path, state)
        except training_state.CheckpointError as exc:
            problems.append(str(exc))
            log.warning("%s; trying the checkpoint before it", exc)
            continue
        return path, state, config
    raise TrainingSetupError(f"no usable training checkpoint in {out / training_state.STATE_DIR}: {problems[0]}")


def _saved_config(path: Path, state: dict[str, Any]) -> TrainConfig:
    try:
        return TrainConfig.from_dict(state["config"])
    except (TypeError, ValueError) as exc:
        raise training_state.CheckpointError(f"{path}: its config cannot be used ({exc})") from None


def run_training(
    config: TrainConfig, data: Path | None, out: Path, resume: bool = False, device: str = "auto",
    command: str | None = None,
) -> dict[str, Any]:
    """Train (or resume) a run in ``out``; returns the summary of :meth:`Trainer.fit`.

    With ``resume`` the config saved in ``out``'s newest usable checkpoint (:func:`resumable_state`)
    replaces ``config`` except for :data:`RUNTIME_FIELDS`; without a checkpoint, the run starts
    afresh (with a warning). Temporaries of a run killed while saving are removed first.
    Without ``resume`` an ``out`` that already holds checkpoints is refused. ``command`` (the
    command line) goes into the weights' sidecars, beside the commands of earlier sessions of a
    resumed run. Raises
    :class:`TrainingSetupError`.
    """
    out = Path(out)
    ctx = init_distributed(resolve_device(device))
    if not ctx.is_main:
        log.setLevel(logging.WARNING)  # one copy of the progress messages, from rank 0
    try:
        latest = training_state.latest_state(out)
        state = None
        if latest is not None and not resume:
            raise TrainingSetupError(f"{out}: holds a run ({latest.name}); pass --resume to continue it or choose another --out")
        if resume and latest is None:
            log.warning("%s: no checkpoint to resume from; starting a new run", out)
        if ctx.is_main:
            for path in training_state.remove_temporaries(out):
                log.warning("removed %s, left by a run killed while saving", path)
        if resume and latest is not None:
            latest, state, saved = resumable_state(out)
            given, kept = config.to_dict(), saved.to_dict()
            ignored = [f"{k}={given[k]!r} (the run has {kept[k]!r})" for k in kept
                       if given[k] != kept[k] and k not in RUNTIME_FIELDS]
            if ignored:
                log.warning("resuming with the run's saved settings; ignored: %s", ", ".join(ignored))
            config = replace(saved, **{k: getattr(config, k) for k in RUNTIME_FIELDS})
            log.info("resuming %s: step %d, %d epochs done", latest, state["step"], state["epoch"])
        train_set, val_sets = build_datasets(config, data, ctx)
        if ctx.is_main:
            out.mkdir(parents=True, exist_ok=True)
            (out / "config.json").write_text(json.dumps(
                {"train": config.to_dict(), "generator": config.generator_config().to_dict(),
                 "data": _data_description(config, data),
                 "world_size": ctx.world_size}, indent=2) + "\n")
        commands = list(state.get("commands", [])) if state is not None else lineage(config)
        if command:
            commands.append(command)
        summary = {"data": _data_description(config, data), "train_samples": len(train_set), "domains": sorted(set(train_set.domains)),
                   "world_size": ctx.world_size, "commands": commands}
        initial = initial_weights(config) if state is None else None
        trainer = Trainer(config, out, train_set, val_sets, ctx, summary, initial)
        if state is not None:
            try:
                trainer.load_state_dict(state)
            except ValueError as exc:
                raise TrainingSetupError(f"{latest}: {exc}") from None
            except (KeyError, IndexError, TypeError, RuntimeError) as exc:
                # load_state_dict's own messages run over several lines: the first says what failed.
                first = (str(exc).strip().splitlines() or [""])[0]
                raise TrainingSetupError(f"{latest}: not a state of this run's networks ({type(exc).__name__}: {first})") from None
        log.info("training %s preset on %s (%d process%s): %d samples in %d %s domains, %d steps per epoch",
                 config.preset, ctx.device, ctx.world_size, "es" if ctx.distributed else "", len(train_set),
                 trainer.sampler.num_domains, config.domain_key, trainer.steps_per_epoch())
        return trainer.fit()
    finally:
        cleanup(ctx)
