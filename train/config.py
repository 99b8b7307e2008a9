"""Training configuration: one dataclass with the paper's defaults (METHOD.md, "Training").

The resolved config is written to ``<out>/config.json`` and into every checkpoint; a resumed
run takes it from the checkpoint. Every field is a JSON value (tuples become lists), and
:meth:`TrainConfig.from_dict` turns them back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from genre.data.curriculum import DEFAULT_CURRICULUM, check_curriculum
from genre.data.dataset import DOMAIN_KEYS
from genre.data.simulation import SimulationConfig
from genre.losses.ear import TAU_REL
from genre.losses.sda import SDAConfig
from genre.masks import DEFAULT_ACS
from genre.models.config import PRESETS, GeneratorConfig, preset
from genre.models.discriminator import DiscriminatorConfig


#: Discriminator per generator preset: the paper's PatchGAN, and lighter ones so that it does not
#: outweigh a CPU-sized generator.
DISCRIMINATOR_PRESETS = {
    "paper": DiscriminatorConfig(),
    "small": DiscriminatorConfig(base_channels=32),
    "tiny": DiscriminatorConfig(base_channels=8, num_layers=2),
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what a training run computes; defaults are the paper's where it gives them."""

    preset: str = "paper"
    # None: the preset's. More than the initial weights' count grows them (genre.models.generator.grown_state).
    cascades: int | None = None
    epochs: int = 20
    steps_per_epoch: int | None = None  # cap for quick runs; None: the sampler's whole epoch
    batch_size: int = 1  # matrix sizes differ between files: larger batches need one size
    lr: float = 0.002
    weight_decay: float = 0.1
    grad_clip: float = 0.1  # max global gradient norm, per network
    lr_step: int = 11  # StepLR step size in epochs
    lr_gamma: float = 0.1
    # The paper gives one optimiser recipe; the discriminator gets the same unless told otherwise.
    disc_lr: float = 0.002
    seed: int = 0
    # --- data
    domain_key: str = "centre/vendor"
    holdout_domains: tuple[str, ...] = ()  # centre/vendor domains never trained on (unseen-domain experiment)
    val_patients: int = 1  # per centre/vendor domain, held out for validation
    val_max_samples: int | None = 64  # per validation group (seen / unseen), evenly spaced; None: all
    curriculum: tuple[tuple[float, tuple[int, ...]], ...] = DEFAULT_CURRICULUM
    acs: int = DEFAULT_ACS  # ACS lines of masks made on the fly (files without fitting masks)
    num_workers: int = 2
    # Samples per epoch simulated on the fly (genre.data.simulation; 0: none), beside or instead of
    # the files of --data, and the fixed simulated samples validated every epoch.
    # Weights file the generator starts from (its configuration must be this preset's); None:
    # a random initialisation. The optimisers, schedulers and CoV statistics start afresh.
    init_weights: str | None = None
    simulated: int = 0
    simulated_val: int = 24
    simulation: SimulationConfig = field(default_factory=SimulationConfig)
    # --- losses (the ablation switches of the paper's Table 2 and --no-gan)
    sda: bool = True
    ear: bool = True
    gan: bool = True
    residual: bool = True
    deep_supervision: bool = True  # losses on every cascade's output (paper), or on the final one only
    sda_config: SDAConfig = field(default_factory=SDAConfig)  # window 4 (paper)
    ear_tau_rel: float = TAU_REL
    # **Decision**: the paper adds the adversarial term without a weight; pix2pix's ratio (GAN 1 :
    # L1 100) keeps the discriminator from dominating the CoV-weighted reconstruction losses.
    adv_weight: float = 0.01
    disc_per_cascade: bool = False  # METHOD.md decision: one discriminator update per iteration
    # None: sized with the generator preset (see DISCRIMINATOR_PRESETS); paper: pix2pix's 64 / 3 layers.
    discriminator: DiscriminatorConfig | None = None
    # --- compute
    activation_checkpointing: bool = True
    bf16: bool = True  # CUDA only: CNNs of the generator and the discriminator under bf16 autocast
    # --- bookkeeping
    ckpt_every: int = 1000  # steps between training-state checkpoints (also one at every epoch end)
    keep_checkpoints: int = 3
    # Minutes of training after which this session saves its state and stops; a resumed run
    # continues from that step. For machines lent by the hour and runs that must end in time.
    stop_after: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "holdout_domains", tuple(self.holdout_domains))
        object.__setattr__(
            self, "curriculum", tuple((float(f), tuple(int(a) for a in accs)) for f, accs in self.curriculum)
        )
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        if self.domain_key not in DOMAIN_KEYS:
            raise ValueError(f"domain key must be one of {', '.join(DOMAIN_KEYS)}, got {self.domain_key!r}")
        if self.cascades is not None and self.cascades < 1:
            raise ValueError(f"cascades must be >= 1 or unset, got {self.cascades}")
        positive = ("epochs", "batch_size", "lr_step", "ckpt_every", "keep_checkpoints")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("steps_per_epoch", "val_max_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or unset, got {value}")
        if min(self.lr, self.disc_lr, self.grad_clip) <= 0 or self.weight_decay < 0 or self.val_patients < 0:
            raise ValueError("lr, disc_lr and grad_clip must be positive; weight_decay and val_patients not negative")
        if self.num_workers < 0 or self.adv_weight < 0 or self.acs < 1:
            raise ValueError("num_workers and adv_weight must not be negative, acs must be >= 1")
        if self.stop_after is not None and self.stop_after <= 0:
            raise ValueError(f"stop_after must be a positive number of minutes or unset, got {self.stop_after}")
        if self.simulated < 0 or self.simulated_val < 0:
            raise ValueError("simulated and simulated_val must not be negative")
        check_curriculum(self.curriculum)

    def generator_config(self) -> GeneratorConfig:
        """The preset with this run's cascade count, residual switch, activation checkpointing and bf16."""
        base = preset(self.preset)
        return replace(
            base,
            cascades=base.cascades if self.cascades is None else self.cascades,
            residual=self.residual,
            checkpointing=self.activation_checkpointing,
            bf16=self.bf16,
        )

    def discriminator_config(self) -> DiscriminatorConfig:
        return self.discriminator or DISCRIMINATOR_PRESETS[self.preset]

    @property
    def loss_names(self) -> tuple[str, ...]:
        """The CoV-weighted losses of this run, in order."""
        return ("fid",) + (("ear",) if self.ear else ()) + (("sda",) if self.sda else ())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; missing keys take their defaults, unknown keys raise ``ValueError``."""
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown TrainConfig keys: {', '.join(unknown)}")
        kwargs = dict(data)
        if "simulation" in kwargs:
            kwargs["simulation"] = SimulationConfig(**kwargs["simulation"])
        if "sda_config" in kwargs:
            kwargs["sda_config"] = SDAConfig(**kwargs["sda_config"])
        if kwargs.get("discriminator") is not None:
            kwargs["discriminator"] = DiscriminatorConfig(**kwargs["discriminator"])
        return cls(**kwargs)
