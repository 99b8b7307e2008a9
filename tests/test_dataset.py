"""Training samples (genre.data.dataset)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from genre.data.cmrx import find_training_cases
from genre.data.dataset import TrainingDataset
from genre.data.training_files import SeriesFile, scan_files
from genre.data.matio import MatArray
from genre.kspace import acs_block, rss_from_kspace
from genre.series import adjacent_indices
from genre.series import Neighbours
from conftest import TRAINING_TREE

ADJ = 5


@pytest.fixture(scope="module")
def files(training_tree) -> list[SeriesFile]:
    return scan_files(find_training_cases(training_tree))


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
        assert ky.stop - ky.start >= TRAINING_TREE.acs
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


def test_a_two_dimensional_file_is_one_coil(tmp_path):
    from genre.data.matio import write_mat73

    rng = np.random.default_rng(0)
    kspace = (rng.standard_normal((20, 22)) + 1j * rng.standard_normal((20, 22))).astype(np.complex64)
    write_mat73(tmp_path / "MultiCoil" / "BlackBlood" / "TrainingSet" / "FullSample" / "Center001" / "GE_15T_Signa" / "P001"
                / "blackblood.mat", {"kspace": kspace})
    (f,) = scan_files(find_training_cases(tmp_path))
    assert f.shape == (1, 1, 1, 20, 22)
    item = TrainingDataset([f], ADJ, accelerations=(8,), acs=8)[0]
    np.testing.assert_array_equal(item["kspace"].numpy(), np.broadcast_to(kspace, (ADJ, 1, 20, 22)))
    torch.testing.assert_close(item["target"], rss_from_kspace(torch.from_numpy(kspace[None])))
