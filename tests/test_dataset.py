"""Training samples, the split, the curriculum and the domain-interleaved sampler (genre.data.dataset)."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from genre.data.cmrx import find_training_cases
from genre.data.dataset import (
    DEFAULT_CURRICULUM,
    DomainInterleavedSampler,
    SeriesFile,
    TrainingDataset,
    check_curriculum,
    curriculum_accelerations,
    scan_files,
    split_cases,
)
from genre.data.matio import MatArray, write_mat73
from genre.data.synthetic import SynthConfig, make_tree
from genre.kspace import acs_block, rss_from_kspace
from genre.series import adjacent_indices
from genre.series import Neighbours

ADJ = 5
# One stem of every storage kind: 5-D stack, nz = 1 with time, 4-D single-frame stack,
# no-time stack (neighbouring slices), no-time single slice (3-D).
STEMS = ("cine_sax", "cine_lax_4ch", "lge_sax", "T1w", "blackblood")
SYNTH = SynthConfig(layout="train", domains=2, cases=2, size=(32, 32), coils=4, frames=4, slices=3, stems=STEMS,
                    accelerations=(8, 16), acs=8)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("train_tree")
    make_tree(root, SYNTH)
    return root


@pytest.fixture(scope="module")
def files(tree) -> list[SeriesFile]:
    return scan_files(find_training_cases(tree))


def _file(files, stem: str) -> SeriesFile:
    return next(f for f in files if f.case.stem == stem)


def _full(f: SeriesFile) -> np.ndarray:
    with MatArray(f.case.kspace_path) as data:
        return data.complex64().reshape(f.shape)


@pytest.mark.parametrize(
    ("stem", "mode"),
    [("cine_sax", Neighbours.WRAP), ("cine_lax_4ch", Neighbours.WRAP), ("lge_sax", Neighbours.SLICES),
     ("T1w", Neighbours.SLICES), ("blackblood", Neighbours.SLICES)],
)
def test_items_hold_the_adjacent_kspace_mask_and_target(files, stem, mode):
    f = _file(files, stem)
    dataset = TrainingDataset([f], ADJ, accelerations=(8,), seed=3)
    frames, slices, coils, ny, nx = f.shape
    assert f.neighbours is mode
    assert len(dataset) == frames * slices
    full = _full(f)
    for index in (0, len(dataset) - 1):
        item = dataset[index]
        t, s = item["frame"], item["slice"]
        assert item["kspace"].shape == (ADJ, coils, ny, nx) and item["kspace"].dtype == torch.complex64
        assert item["mask"].shape == (ADJ, ny, nx) and item["mask"].dtype == torch.float32
        assert item["target"].shape == (ny, nx) and item["target"].dtype == torch.float32
        if mode is Neighbours.SLICES:
            expected = full[0, adjacent_indices(slices, s, ADJ, mode)]
        else:
            expected = full[adjacent_indices(frames, t, ADJ, mode), s]
        np.testing.assert_array_equal(item["kspace"].numpy(), expected)
        torch.testing.assert_close(item["target"], rss_from_kspace(torch.from_numpy(full[t, s])))
        assert item["domain"] == f.case.location.domain
        assert item["acceleration"] == 8 and item["mask_source"] == "file"
        assert set(item["mask"].unique().tolist()) == {0.0, 1.0}


def test_file_masks_follow_the_curriculum_and_keep_their_acs(files):
    f = _file(files, "cine_sax")
    dataset = TrainingDataset([f], ADJ, accelerations=(16,))
    seen = Counter()
    for index in range(len(dataset)):
        item = dataset[index]
        seen[item["pattern"]] += 1
        assert item["acceleration"] == 16
        ky, kx = acs_block(item["mask"])
        assert ky.stop - ky.start >= SYNTH.acs
        path = next(p for pattern, r, p in f.masks if (pattern, r) == (item["pattern"], 16))
        with MatArray(path) as data:
            frames = adjacent_indices(f.shape[0], item["frame"], ADJ, Neighbours.WRAP)
            np.testing.assert_array_equal(item["mask"].numpy(), data.float32()[frames])
    assert len(seen) > 1  # the pattern is drawn per item


def test_masks_are_made_on_the_fly_without_fitting_files(files):
    f = _file(files, "cine_lax_4ch")
    bare = SeriesFile(f.case, f.shape, masks=())
    dataset = TrainingDataset([bare], ADJ, accelerations=(24,), acs=8)
    for index in range(len(dataset)):
        item = dataset[index]
        assert item["mask_source"] == "generated" and item["acceleration"] == 24
        ky, _ = acs_block(item["mask"])
        assert ky.stop - ky.start >= 8
    # A file whose masks are all of other accelerations falls back the same way, with its patterns.
    item = TrainingDataset([f], ADJ, accelerations=(24,))[0]
    assert item["mask_source"] == "generated" and item["pattern"] in {p for p, _, _ in f.masks}


def test_items_are_deterministic_in_seed_epoch_and_index(files):
    dataset = TrainingDataset(files, ADJ, accelerations=(8, 16), seed=1)
    draws = lambda: [(dataset[i]["pattern"], dataset[i]["acceleration"]) for i in range(0, len(dataset), 7)]  # noqa: E731
    first = draws()
    assert draws() == first
    dataset.set_epoch(1)
    assert draws() != first


def test_domain_keys(files):
    by_modality = TrainingDataset(files, ADJ, domain_key="modality")
    assert set(by_modality.domains) == {"Cine", "LGE", "T1w", "BlackBlood"}
    by_pattern = TrainingDataset(files, ADJ, domain_key="pattern", accelerations=(8,))
    assert set(by_pattern.domains) == {"Uniform", "ktGaussian", "ktRadial"}
    assert len(by_pattern) == 3 * len(by_modality)  # every sample once per pattern
    for index in (0, 1, 2, len(by_pattern) - 1):
        item = by_pattern[index]
        assert item["pattern"] == item["domain"]
    with pytest.raises(ValueError, match="domain key"):
        TrainingDataset(files, ADJ, domain_key="scanner")


def test_split_holds_out_patients_and_domains(tree):
    cases = find_training_cases(tree)
    train, val, unseen = split_cases(cases, val_patients=1)
    assert {c.location.patient for c in train} == {"P001"} and {c.location.patient for c in val} == {"P002"}
    assert not unseen and len(train) + len(val) == len(cases)
    held = cases[0].location.domain
    train, val, unseen = split_cases(cases, val_patients=1, holdout_domains=[held])
    assert {c.location.domain for c in unseen} == {held}
    assert held not in {c.location.domain for c in train + val}
    # A domain with no more patients than val_patients keeps them all for training.
    train, val, _ = split_cases(cases, val_patients=2)
    assert not val and len(train) == len(cases)
    with pytest.raises(ValueError, match="Center999/X"):
        split_cases(cases, holdout_domains=["Center999/X"])


def test_unreadable_files_are_skipped_with_a_warning(tree, tmp_path, caplog):
    cases = find_training_cases(tree)
    bad = tmp_path / "MultiCoil" / "Cine" / "TrainingSet" / "FullSample" / "Center001" / "V" / "P001" / "cine_sax.mat"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a MATLAB file")
    with caplog.at_level(logging.WARNING):
        scanned = scan_files(find_training_cases(tmp_path) + cases[:1])
    assert len(scanned) == 1
    assert any(str(bad) in r.getMessage() for r in caplog.records)


def test_compressed_kspace_files_are_reported_once_with_the_remedy(tree, tmp_path, caplog):
    cases = find_training_cases(tree)[:3]
    with MatArray(cases[0].kspace_path) as source:
        name, values = source.name, source.complex64()
    compressed = tmp_path / "cine_sax.mat"
    write_mat73(compressed, {name: values}, chunks=True, compression="gzip")
    moved = [replace(cases[0], kspace_path=compressed), *cases[1:]]
    with caplog.at_level(logging.WARNING):
        scanned = scan_files(moved)
    assert len(scanned) == 3
    (warning,) = [r.getMessage() for r in caplog.records if "compressed" in r.getMessage()]
    assert warning.startswith("1 of 3 k-space files are compressed") and "genre repack" in warning

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        scan_files(cases)
    assert not [r for r in caplog.records if "compressed" in r.getMessage()]


def test_curriculum_schedule():
    epochs = [curriculum_accelerations(DEFAULT_CURRICULUM, e, 20) for e in range(20)]
    assert epochs[0] == (8,) and epochs[6] == (8,)
    assert epochs[7] == (8, 16) and epochs[13] == (8, 16)
    assert epochs[14] == (8, 16, 24) and epochs[19] == (8, 16, 24)
    assert [curriculum_accelerations(DEFAULT_CURRICULUM, e, 3) for e in range(3)] == [(8,), (8, 16), (8, 16, 24)]
    assert curriculum_accelerations(((0.0, (4,)), (0.5, (8,))), 1, 2) == (8,)
    for bad in ([], [(0.1, (8,))], [(0.0, (8,)), (0.0, ())], [(0.0, (8,)), (1.0, (16,))]):
        with pytest.raises(ValueError):
            check_curriculum(bad)


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
