"""The domain-interleaved sampler (genre.data.sampler)."""

import pytest

from genre.data.sampler import DomainInterleavedSampler

DOMAINS = ["a"] * 7 + ["b"] * 3 + ["c"] * 5


def test_sampler_interleaves_every_window():
    sampler = DomainInterleavedSampler(DOMAINS, seed=0)
    order = list(sampler)
    assert len(order) == len(sampler) == 3 * 7
    labels = [DOMAINS[i] for i in order]
    for start in range(len(labels) - 2):  # every window, aligned or not
        assert sorted(labels[start : start + 3]) == ["a", "b", "c"]
    # Every sample at least once; the small domains are cycled.
    assert set(order) == set(range(len(DOMAINS)))


def test_sampler_is_deterministic_per_epoch_and_resumes_at_a_position():
    sampler = DomainInterleavedSampler(DOMAINS, seed=5)
    first = list(sampler)
    assert list(DomainInterleavedSampler(DOMAINS, seed=5)) == first
    sampler.set_epoch(1)
    second = list(sampler)
    assert second != first
    sampler.set_epoch(1, position=4)
    assert list(sampler) == second[4:] and len(sampler) == len(second) - 4
    other = DomainInterleavedSampler(DOMAINS, seed=0)
    other.set_epoch(1, position=4)
    assert list(other) != list(sampler)  # the seed matters too


def test_sampler_shards_across_ranks():
    shards = [list(DomainInterleavedSampler(DOMAINS, seed=2, num_replicas=2, rank=r)) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 12  # 7 rounds padded to 8, 4 each
    for shard in shards:
        labels = [DOMAINS[i] for i in shard]
        for start in range(len(labels) - 2):
            assert sorted(labels[start : start + 3]) == ["a", "b", "c"]
    # No overlap in the unpadded part: the 7 rounds of the largest domain split without repeats.
    a0 = [i for i in shards[0] if DOMAINS[i] == "a"]
    a1 = [i for i in shards[1] if DOMAINS[i] == "a"]
    assert len(set(a0[:4]) | set(a1[:3])) == 7
    assert set(shards[0]) | set(shards[1]) == set(range(len(DOMAINS)))
    with pytest.raises(ValueError):
        DomainInterleavedSampler(DOMAINS, num_replicas=2, rank=2)
