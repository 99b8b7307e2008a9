"""The GENRE-CMR training loop (METHOD.md, "Training"; Algorithm 1 lines 12-31).

One iteration, per batch of samples (:mod:`genre.data.dataset`):

1. undersample the fully sampled adjacent k-space with the mask, divide everything by the input
   scale (:func:`genre.train.batch.scaled_batch`, the scale inference applies);
2. run the generator (activation checkpointing per cascade, bf16 CNNs on CUDA);
3. update the patch discriminator on the detached final output (or once per cascade), real pair
   ``(GT, zero-filled)``, fake pair ``(reconstruction, zero-filled)`` (:mod:`genre.train.adversary`);
4. update the generator with the CoV-weighted per-cascade losses plus the adversarial term on
   the final output (:class:`genre.train.objective.Objective`); AdamW, gradient norm clipped.

StepLR steps once per epoch; the curriculum sets the accelerations of each epoch. After every
epoch: validation on held-out patients (:mod:`genre.train.validation`), ``last.safetensors`` /
``best.safetensors`` (by validation SSIM; by the epoch's mean training loss without validation
data), a training-state checkpoint, and the plots. Training-state checkpoints also every
``ckpt_every`` steps. Under DDP only rank 0 writes. With ``stop_after`` minutes the run saves
its state and ``last.safetensors`` at the first step past that time and returns; ``--resume``
continues from that step.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.nn.utils import clip_grad_norm_
from torch.optim import AdamW
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader
from tqdm import tqdm

from genre.data.curriculum import curriculum_accelerations
from genre.data.dataset import TrainingDataset
from genre.data.sampler import DomainInterleavedSampler
from genre.models.discriminator import PatchDiscriminator
from genre.models.generator import Generator, grown_state
from genre.weights_file import save_weights
from genre.train import plots, training_state
from genre.train.adversary import adversarial_loss, discriminator_step
from genre.train.batch import scaled_batch
from genre.train.config import TrainConfig
from genre.train.distributed import DistContext, all_reduce_mean, all_reduce_sum, gather_objects
from genre.train.objective import Objective, rss_image
from genre.train.records import STEP_FIELDS, VAL_FIELDS, CsvLog
from genre.train.validation import validate

log = logging.getLogger("genre.train")

def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


class Trainer:
    """Owns the models, optimisers, schedulers, objective, sampler and logs of one run.

    ``train_set`` feeds the training; ``val_sets`` maps a group name (``seen``, ``unseen``) to a
    validation dataset (possibly empty). ``out`` receives everything the run writes.
    ``initial``: a generator state to start from (:func:`genre.train.run.initial_weights`).
    """

    def __init__(
        self,
        config: TrainConfig,
        out: Path,
        train_set: TrainingDataset,
        val_sets: dict[str, TrainingDataset],
        ctx: DistContext,
        summary: dict[str, Any] | None = None,
        initial: dict[str, torch.Tensor] | None = None,
    ):
        self.config = config
        self.out = Path(out)
        self.train_set = train_set
        self.val_sets = val_sets
        self.ctx = ctx
        self.device = ctx.device
        self.summary = dict(summary or {})
        torch.manual_seed(config.seed)

        generator = Generator(config.generator_config())
        if initial is not None:
            generator.load_state_dict(grown_state(generator, initial))
        generator = generator.to(self.device)
        self.generator: torch.nn.Module = DistributedDataParallel(generator) if ctx.distributed else generator
        self.opt_g = AdamW(generator.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.sched_g = StepLR(self.opt_g, config.lr_step, config.lr_gamma)
        self.discriminator: torch.nn.Module | None = None
        if config.gan:
            disc = PatchDiscriminator(config.discriminator_config()).to(self.device)
            self.discriminator = DistributedDataParallel(disc) if ctx.distributed else disc
            self.opt_d = AdamW(disc.parameters(), lr=config.disc_lr, weight_decay=config.weight_decay)
            self.sched_d = StepLR(self.opt_d, config.lr_step, config.lr_gamma)

        self.sampler = DomainInterleavedSampler(
            train_set.domains, seed=config.seed, num_replicas=ctx.world_size, rank=ctx.rank
        )
        sda = config.sda and self.sampler.num_domains > 1
        if config.sda and not sda:
            log.warning("SDA loss off: the training data has a single %s domain", config.domain_key)
        self.objective = Objective(config, ctx, sda=sda)

        self.step = 0
        self.epoch = 0
        self.step_in_epoch = 0
        self.deadline: float | None = None  # time.monotonic() at which fit() stops (stop_after)
        self.stopped = False
        self.best: float | None = None
        self.epoch_losses: list[float] = []
        if ctx.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "plots").mkdir(exist_ok=True)
            self.step_log = CsvLog(self.out / "log.csv", STEP_FIELDS)
            self.val_log = CsvLog(self.out / "val.csv", VAL_FIELDS)

    # ------------------------------------------------------------------ state

    @property
    def gen_module(self) -> Generator:
        return _unwrap(self.generator)

    def steps_per_epoch(self) -> int:
        full = (self.sampler.rounds_per_rank * self.sampler.num_domains) // self.config.batch_size
        return min(full, self.config.steps_per_epoch or full)

    def state_dict(self) -> dict[str, Any]:
        """The whole training state (collective under DDP: every process must call it)."""
        local = {"rng": training_state.capture_rng()}
        if self.objective.bank is not None:
            local["sda"] = training_state.to_cpu(self.objective.bank.state_dict())
        state = {
            "config": self.config.to_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "best": self.best,
            "epoch_losses": list(self.epoch_losses),
            "generator": self.gen_module.state_dict(),
            "optimizers": {"generator": self.opt_g.state_dict()},
            "schedulers": {"generator": self.sched_g.state_dict()},
            "objective": self.objective.state_dict(),
            "ranks": gather_objects(self.ctx, local),
            "commands": list(self.summary.get("commands", [])),
        }
        if self.discriminator is not None:
            state["discriminator"] = _unwrap(self.discriminator).state_dict()
            state["optimizers"]["discriminator"] = self.opt_d.state_dict()
            state["schedulers"]["discriminator"] = self.sched_d.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state["ranks"]) != self.ctx.world_size:
            raise ValueError(f"the checkpoint was written by {len(state['ranks'])} processes, this run has {self.ctx.world_size}")
        self.step, self.epoch, self.step_in_epoch = state["step"], state["epoch"], state["step_in_epoch"]
        self.best = state["best"]
        self.epoch_losses = list(state["epoch_losses"])
        self.gen_module.load_state_dict(state["generator"])
        self.opt_g.load_state_dict(state["optimizers"]["generator"])
        self.sched_g.load_state_dict(state["schedulers"]["generator"])
        if self.discriminator is not None:
            _unwrap(self.discriminator).load_state_dict(state["discriminator"])
            self.opt_d.load_state_dict(state["optimizers"]["discriminator"])
            self.sched_d.load_state_dict(state["schedulers"]["discriminator"])
        self.objective.load_state_dict(state["objective"])
        local = state["ranks"][self.ctx.rank]
        if self.objective.bank is not None:
            self.objective.bank.load_state_dict(training_state.to_device(local["sda"], self.device))
        training_state.restore_rng(local["rng"])
        if self.ctx.is_main:
            # Rows written after this checkpoint by the interrupted run are redone now.
            self.step_log.truncate("step", self.step)
            self.val_log.truncate("epoch", self.epoch)  # 1-based there: the completed epochs

    def save_training_state(self) -> None:
        state = self.state_dict()
        if self.ctx.is_main:
            training_state.save_state(training_state.state_path(self.out, self.step), state)
            training_state.prune(self.out, self.config.keep_checkpoints)

    # ------------------------------------------------------------------ one step

    def train_step(self, batch: dict[str, Any]) -> dict[str, Any]:
        """One iteration on ``batch`` (collated dataset items); returns the row logged for it."""
        tic = time.perf_counter()
        b = scaled_batch(batch["kspace"].to(self.device, non_blocking=True), batch["mask"].to(self.device, non_blocking=True))
        domains = list(batch["domain"])

        self.generator.train()
        out = self.generator(b.measured, b.mask)
        values, complete = self.objective.losses(out, b.target_kspace, b.target, domains)
        total, weights, averaged = self.objective.weigh(values, complete)
        row: dict[str, Any] = dict(averaged)
        if self.discriminator is not None:
            final = rss_image(out.kspace[-1])
            fakes = [rss_image(k) for k in out.kspace] if self.config.disc_per_cascade else [final]
            bf16 = self.config.bf16
            disc_loss = discriminator_step(self.discriminator, self.opt_d, fakes, b.target, b.zero_filled,
                                           self.config.grad_clip, bf16)
            row["disc"] = float(all_reduce_mean(self.ctx, disc_loss))
            # The frozen discriminator runs outside DDP: no gradient of it to synchronise.
            adversarial = adversarial_loss(_unwrap(self.discriminator), final, b.zero_filled, bf16)
            total = total + self.config.adv_weight * adversarial
            row["adv"] = float(all_reduce_mean(self.ctx, adversarial.detach()))
        self.opt_g.zero_grad(set_to_none=True)
        total.backward()
        grad_norm = clip_grad_norm_(self.generator.parameters(), self.config.grad_clip)
        self.opt_g.step()

        row.update(
            step=self.step + 1,
            epoch=self.epoch + 1,  # 1-based, as in val.csv and the progress bar
            lr=self.opt_g.param_groups[0]["lr"],
            loss=float(all_reduce_mean(self.ctx, total.detach())),
            grad_norm=float(grad_norm),
            seconds=time.perf_counter() - tic,
            domain=domains[0],
            pattern=batch["pattern"][0],
            acceleration=int(batch["acceleration"][0]),
        )
        row.update({f"w_{name}": float(w) for name, w in zip(self.objective.names, weights)})
        return row

    # ------------------------------------------------------------------ epochs

    def _loader(self) -> DataLoader:
        return DataLoader(
            self.train_set,
            batch_size=self.config.batch_size,
            sampler=self.sampler,
            num_workers=self.config.num_workers,
            pin_memory=self.device.type == "cuda",
            drop_last=True,
        )

    def train_epoch(self) -> None:
        accelerations = curriculum_accelerations(self.config.curriculum, self.epoch, self.config.epochs)
        self.train_set.set_epoch(self.epoch, accelerations)
        self.sampler.set_epoch(self.epoch, self.step_in_epoch * self.config.batch_size)
        total = self.steps_per_epoch()
        running: dict[str, list[float]] = defaultdict(list)
        bar = tqdm(total=total, initial=self.step_in_epoch, disable=not self.ctx.is_main, dynamic_ncols=True,
                   desc=f"epoch {self.epoch + 1}/{self.config.epochs} R={','.join(map(str, accelerations))}")
        with bar:
            for batch in itertools.islice(self._loader(), max(0, total - self.step_in_epoch)):
                row = self.train_step(batch)
                self.step += 1
                self.step_in_epoch += 1
                self.epoch_losses.append(row["loss"])
                if self.ctx.is_main:
                    self.step_log.append(row)
                for name in ("loss", "fid", "ear", "sda", "adv", "disc"):
                    if name in row:
                        running[name].append(row[name])
                postfix = {name: f"{np.mean(v):.3g}" for name, v in running.items()}
                postfix["alpha"] = "/".join(f"{row[f'w_{n}']:.2f}" for n in self.objective.names)
                bar.set_postfix(postfix, refresh=False)
                bar.update()
                # An epoch's last step goes on to its validation; fit() checks the time after it.
                if self.step_in_epoch < total and self.out_of_time():
                    self.stopped = True
                    return
                if self.step % self.config.ckpt_every == 0 and self.step_in_epoch < total:
                    self.save_training_state()

    def out_of_time(self) -> bool:
        """Whether the ``stop_after`` time is up on any process (all of them must stop at the same step)."""
        if self.deadline is None:
            return False
        late = torch.tensor(float(time.monotonic() >= self.deadline), device=self.device)
        return bool(all_reduce_sum(self.ctx, late) > 0)

    def validate(self) -> dict[str, dict[str, float]]:
        """Mean metrics per validation group (:func:`genre.train.validation.validate`); rank 0 draws this epoch's panel."""
        epoch = self.epoch + 1
        panel = self.out / "plots" / f"val_epoch{epoch:03d}.png" if self.ctx.is_main else None
        return validate(self.gen_module, self.val_sets, self.ctx, self.config.val_max_samples, epoch, panel)

    def _score(self, metrics: dict[str, dict[str, float]]) -> float:
        """Higher is better: validation SSIM of the seen domains (else of the simulated samples), else minus the epoch's mean training loss."""
        for group in ("seen", "simulated"):
            if group in metrics:
                return metrics[group]["ssim"]
        return -float(np.mean(self.epoch_losses)) if self.epoch_losses else -math.inf

    def _write_weights(self, name: str, metrics: dict[str, dict[str, float]]) -> None:
        summary = {**self.summary, "epoch": self.epoch, "step": self.step, "validation": metrics,
                   "train_config": self.config.to_dict()}
        save_weights(self.out / name, self.gen_module, summary)

    def _plot(self) -> None:
        rows = self.step_log.rows()
        if rows:
            plots.plot_losses(rows, self.out / "plots" / "losses.png")
            plots.plot_cov_weights(rows, self.out / "plots" / "cov_weights.png")

    def fit(self) -> dict[str, Any]:
        """Train from the current state to the last epoch, or until ``stop_after``; returns the final summary.

        The summary's ``stopped`` is true when the time ran out first: the training state and
        ``last.safetensors`` (without validation scores) are then those of the step it stopped at.
        """
        if self.config.stop_after is not None:
            self.deadline = time.monotonic() + 60 * self.config.stop_after
        metrics: dict[str, dict[str, float]] = {}
        while self.epoch < self.config.epochs:
            self.train_epoch()
            if self.stopped:
                return self._stop()
            metrics = self.validate()
            score = self._score(metrics)
            self.sched_g.step()
            if self.discriminator is not None:
                self.sched_d.step()
            improved = self.best is None or score > self.best
            if improved:
                self.best = score
            if self.ctx.is_main:
                for group, values in metrics.items():
                    self.val_log.append({"epoch": self.epoch + 1, "step": self.step, "group": group, **values})
                    log.info("epoch %d %s: SSIM %.4f PSNR %.2f NMSE %.4f (zero-filled SSIM %.4f) on %d samples",
                             self.epoch + 1, group, values["ssim"], values["psnr"], values["nmse"],
                             values["zf_ssim"], values["samples"])
            self.epoch += 1
            self.step_in_epoch = 0
            self.epoch_losses = []
            if self.ctx.is_main:
                self._write_weights("last.safetensors", metrics)
                if improved:
                    self._write_weights("best.safetensors", metrics)
                self._plot()
            self.save_training_state()
            if self.epoch < self.config.epochs and self.out_of_time():
                return self._stop()
        return {"epoch": self.epoch, "step": self.step, "validation": metrics, "best": self.best, "stopped": False}

    def _stop(self) -> dict[str, Any]:
        """Save what a resumed run needs, and weights to look at, at the step where the time ran out."""
        self.stopped = True
        if self.step_in_epoch:  # at an epoch's end both were written, with validation scores
            self.save_training_state()
            if self.ctx.is_main:
                self._write_weights("last.safetensors", {})
                self._plot()
        log.info("stopped by the %g-minute limit at step %d, %d of %d epochs done%s; continue with --resume",
                 self.config.stop_after, self.step, self.epoch, self.config.epochs,
                 f" and {self.step_in_epoch} step{'s' * (self.step_in_epoch > 1)} of the next" if self.step_in_epoch else "")
        return {"epoch": self.epoch, "step": self.step, "validation": {}, "best": self.best, "stopped": True}
