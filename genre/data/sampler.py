"""The domain-interleaved sampler: every window of consecutive training samples holds each domain once (SDA needs them)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Sequence

import numpy as np
import torch.distributed as dist
from torch.utils.data import Sampler


class DomainInterleavedSampler(Sampler[int]):
    """Round-robin over domains: every ``n_domains`` consecutive indices hold one sample of each domain.

    Per epoch (deterministic in ``seed`` and the epoch): the order of the domains is shuffled
    once and kept for the whole epoch, so that every window of ``n_domains`` consecutive
    samples, aligned or not, holds each domain once; each domain's indices are shuffled and
    cycled (reshuffled at each pass) to the length of the largest domain, so an epoch visits
    every sample at least once and a small domain more often. The epoch is a list of rounds (one
    index per domain); with ``W = num_replicas`` processes (DDP) the streams are cycled on to a
    multiple of ``W`` rounds and rank ``r`` takes rounds ``r, r + W, ...``: the shards are
    equally long (DDP needs that), disjoint except for that padding, and interleaved themselves.

    ``set_epoch(epoch, position)`` selects the epoch and skips its first ``position`` indices of
    this rank (resumption); ``len()`` is what is left.
    """

    def __init__(
        self,
        domains: Sequence[str],
        seed: int = 0,
        shuffle: bool = True,
        num_replicas: int | None = None,
        rank: int | None = None,
    ):
        if not domains:
            raise ValueError("no samples to draw from")
        if num_replicas is None:
            num_replicas = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        if rank is None:
            rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} outside [0, {num_replicas})")
        groups: dict[str, list[int]] = defaultdict(list)
        for index, domain in enumerate(domains):
            groups[domain].append(index)
        self.names = sorted(groups)
        self.groups = [groups[name] for name in self.names]
        self.seed = seed
        self.shuffle = shuffle
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.position = 0
        rounds = max(len(g) for g in self.groups)
        self.rounds_per_rank = math.ceil(rounds / num_replicas)

    @property
    def num_domains(self) -> int:
        return len(self.groups)

    def set_epoch(self, epoch: int, position: int = 0) -> None:
        if not 0 <= position <= self.rounds_per_rank * self.num_domains:
            raise ValueError(f"position {position} outside the epoch of {self.rounds_per_rank * self.num_domains}")
        self.epoch = epoch
        self.position = position

    def epoch_indices(self) -> list[int]:
        """This rank's whole epoch, from its start."""
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(self.num_domains) if self.shuffle else np.arange(self.num_domains)
        length = self.rounds_per_rank * self.num_replicas
        streams = []
        for group in self.groups:
            passes = math.ceil(length / len(group))
            stream = [group[i] for _ in range(passes) for i in (rng.permutation(len(group)) if self.shuffle else range(len(group)))]
            streams.append(stream[:length])
        return [streams[d][r] for r in range(self.rank, length, self.num_replicas) for d in order]

    def __iter__(self) -> Iterator[int]:
        return iter(self.epoch_indices()[self.position :])

    def __len__(self) -> int:
        return self.rounds_per_rank * self.num_domains - self.position
