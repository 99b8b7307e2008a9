"""Synthetic CMRxRecon trees: parsed by genre.data.cmrx, shaped as MATLAB saves them, deterministic."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from genre.cli import HelpFormatter
from genre.commands import synth as synth_command
from genre.data.cmrx import find_cases, find_training_cases, fullsample_path, kspace_layout, mask_layout
from genre.data.matio import MatArray
from genre.data.phantom import coil_maps, phantom_images, region_signals
from genre.data.synthetic import DOMAINS, SynthConfig, job_mask, job_paths, make_tree, plan, series_images, series_kspace
from genre.kspace import acs_block, fft2c
from genre.masks import PATTERNS
from genre.series import modality_of

CONFIG = SynthConfig()


@pytest.fixture(scope="module")
def validation_tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "validation"
    make_tree(root, CONFIG)
    return root


@pytest.fixture(scope="module")
def train_tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "train"
    make_tree(root, SynthConfig(layout="train", domains=2, stems=("cine_lax_4ch", "blackblood")))
    return root


def _expected_shapes(stem: str, coils: int, ny: int, nx: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """h5py shapes (k-space, mask) of the default config's stems, as MATLAB would have saved them."""
    return {
        "cine_sax": ((8, 3, coils, ny, nx), (8, ny, nx)),
        "cine_lax_4ch": ((8, 1, coils, ny, nx), (8, ny, nx)),  # interior singleton kept
        "T1map": ((9, 3, coils, ny, nx), (9, ny, nx)),
        "lge_sax": ((3, coils, ny, nx), (ny, nx)),  # nt = 1 dropped
        "blackblood": ((coils, ny, nx), (ny, nx)),  # no time axis, nz = 1 dropped
    }[stem]


def test_default_tree_holds_every_storage_kind_pattern_and_acceleration(validation_tree):
    cases = find_cases(validation_tree)
    assert len(cases) == len(plan(CONFIG)) == 15
    assert {c.pattern for c in cases} == set(PATTERNS)
    assert {c.acceleration for c in cases} == {8, 16, 24}
    assert {c.stem for c in cases} == set(CONFIG.stems)
    assert {c.location.domain for c in cases} == {d.name for d in DOMAINS[:3]}
    sizes = {MatArray(c.kus_path).shape[-2:] for c in cases}
    assert any(ny % 2 for ny, _ in sizes) and any(nx % 2 for _, nx in sizes)


def test_validation_cases_have_mask_and_ground_truth(validation_tree):
    for case in find_cases(validation_tree):
        loc = case.location
        assert (loc.task, loc.set_name, loc.patient) == ("TaskR1", "ValidationSet", "P001")
        assert loc.modality == modality_of(case.stem)
        assert case.mask_path is not None, case.kus_path
        assert fullsample_path(case, validation_tree).is_file(), case.kus_path


def test_file_shapes_follow_the_layout_rules(validation_tree):
    for case in find_cases(validation_tree):
        domain = next(d for d in DOMAINS if d.name == case.location.domain)
        ny, nx = CONFIG.shape_of(domain)
        with MatArray(case.kus_path, ["kus"]) as kus, MatArray(case.mask_path, ["mask"]) as mask, \
                MatArray(fullsample_path(case, validation_tree), ["kspace"]) as full:
            k_shape, m_shape = _expected_shapes(case.stem, CONFIG.coils_of(domain), ny, nx)
            assert kus.shape == full.shape == k_shape, case.relative
            assert mask.shape == m_shape, case.relative
            layout = kspace_layout(case.stem, kus.shape)
            assert mask_layout(mask.shape, layout) == (layout[0], ny, nx)


def test_kus_is_kspace_times_mask_exactly(validation_tree):
    for case in find_cases(validation_tree):
        kus = MatArray(case.kus_path, ["kus"])
        full = MatArray(fullsample_path(case, validation_tree), ["kspace"])
        mask = MatArray(case.mask_path, ["mask"])
        layout = kspace_layout(case.stem, kus.shape)
        m = mask.read().reshape(mask_layout(mask.shape, layout))
        k = full.complex64().reshape(layout)
        assert mask.read().dtype == np.float64 and set(np.unique(m)) == {0.0, 1.0}
        np.testing.assert_array_equal(kus.complex64().reshape(layout), k * m[:, None, None])
        for f in (kus, full, mask):
            f.close()


def test_files_are_matlab_v73(validation_tree):
    for path in sorted(validation_tree.rglob("*.mat")):
        assert h5py.is_hdf5(path)
        with open(path, "rb") as raw:
            assert raw.read(512).startswith(b"MATLAB 7.3 MAT-file")
        with h5py.File(path, "r") as f:
            (name,) = f.keys()
            expected = {"kspace": b"single", "kus": b"single", "mask": b"double"}[name]
            assert f[name].attrs["MATLAB_class"] == expected


def test_reading_back_gives_what_was_simulated(validation_tree):
    job = plan(CONFIG)[1]  # cine_lax_4ch: nz = 1 with time
    pattern, acceleration = job.combos[0]
    paths = job_paths(validation_tree, job, CONFIG)
    kspace = series_kspace(job, CONFIG.seed)
    mask = job_mask(job, pattern, acceleration, CONFIG)
    read_full = MatArray(paths[0], ["kspace"]).complex64()
    read_kus = MatArray(paths[2], ["kus"]).complex64()
    np.testing.assert_array_equal(read_full, kspace)
    np.testing.assert_array_equal(read_kus, kspace * mask[:, None, None])
    assert read_kus.shape == (job.frames, 1, job.coils, job.ny, job.nx)


def test_masks_in_the_tree_carry_the_20_line_acs(validation_tree):
    for case in find_cases(validation_tree):
        mask = torch.from_numpy(MatArray(case.mask_path, ["mask"]).read())
        ny, nx = mask.shape[-2:]
        ky, kx = acs_block(mask)
        assert ky.start <= ny // 2 - 10 and ky.stop >= ny // 2 + 10, case.relative
        if case.pattern == "ktRadial":
            assert kx.stop - kx.start < nx
        else:
            assert (kx.start, kx.stop) == (0, nx)


def test_training_tree(train_tree):
    cases = find_training_cases(train_tree)
    assert len(cases) == 4
    for case in cases:
        assert case.location.set_name == "TrainingSet"
        assert len(case.masks) == 9
        assert {(p, r) for p, r, _ in case.masks} == {(p, r) for p in PATTERNS for r in (8, 16, 24)}
        layout = kspace_layout(case.stem, MatArray(case.kspace_path, ["kspace"]).shape)
        for _, _, path in case.masks:
            assert mask_layout(MatArray(path, ["mask"]).shape, layout)
    assert not list(train_tree.rglob("*_kus_*"))


def test_same_seed_same_arrays_other_seed_other_arrays(tmp_path):
    small = SynthConfig(domains=1, stems=("cine_lax_4ch", "blackblood"), frames=4)
    a = make_tree(tmp_path / "a", small)
    b = make_tree(tmp_path / "b", small)
    c = make_tree(tmp_path / "c", SynthConfig(domains=1, stems=("cine_lax_4ch", "blackblood"), frames=4, seed=1))
    assert [p.relative_to(tmp_path / "a") for p in a] == [p.relative_to(tmp_path / "b") for p in b]
    for pa, pb, pc in zip(a, b, c):
        np.testing.assert_array_equal(MatArray(pa).read(), MatArray(pb).read())
        if "kus" in pa.name or pa.parent.parts[-4].startswith("FullSample"):
            assert not np.array_equal(MatArray(pa).read(), MatArray(pc).read())


def test_cardiac_family_draws_the_phantom_and_its_coils():
    job = plan(CONFIG)[2]  # T1map: weightings, a stack
    d = job.domain
    images, maps = series_images(job, 7)
    np.testing.assert_array_equal(images, phantom_images(job.stem, job.frames, job.slices, job.ny, job.nx, d.field_t, 7, f"{d.name}/{job.patient}"))
    np.testing.assert_array_equal(maps, coil_maps(job.coils, job.ny, job.nx, 7, f"{d.name}/{job.patient}"))
    assert job.family == "cardiac" and SynthConfig().family == "cardiac"


def test_noise_level_matches_the_domain_snr():
    job = plan(SynthConfig(domains=1, stems=("blackblood",)))[0]
    d = job.domain
    patient = f"{d.name}/{job.patient}"
    image = phantom_images(job.stem, 1, 1, job.ny, job.nx, d.field_t, 0, patient) * d.scale
    maps = coil_maps(job.coils, job.ny, job.nx, 0, patient)
    clean = fft2c(torch.from_numpy(image)[:, :, None] * torch.from_numpy(maps)).numpy()
    noise = series_kspace(job, 0) - clean
    assert np.std(noise) == pytest.approx(d.scale / (d.snr * math.sqrt(job.coils)), rel=0.05)


def test_contrast_physics():
    cine = region_signals("cine_sax", 4, 1.5)
    assert cine["lv"][0] > 2 * cine["myocardium"][0]  # bright blood
    lge = region_signals("lge_sax", 1, 3.0)
    assert abs(lge["myocardium"][0]) < 0.05 < lge["scar"][0]  # nulled myocardium, bright scar
    dark = region_signals("blackblood", 1, 3.0)
    assert dark["lv"][0] < 0.2 * dark["myocardium"][0]
    t1 = region_signals("T1map", 9, 3.0)
    assert t1["lv"][0] < 0 < t1["lv"][-1] and np.all(np.diff(t1["lv"]) > 0)  # inversion recovery
    perf = region_signals("perfusion", 30, 1.5)
    peaks = [int(np.argmax(perf[r])) for r in ("rv", "lv", "myocardium")]
    assert peaks == sorted(peaks) and peaks[0] < peaks[2]
    assert np.abs(np.concatenate(list(region_signals("T2map", 3, 1.5).values()))).max() == pytest.approx(1.0)


def test_cine_heart_beats_periodically():
    images = np.abs(phantom_images("cine_sax", 8, 1, 64, 80))
    assert not np.allclose(images[0], images[4], atol=1e-3)  # diastole vs systole
    # One cardiac cycle: frames equally far from end-diastole on either side look alike.
    np.testing.assert_allclose(images[1], images[7], atol=1e-5)


def _synth(args: list[str]) -> int:
    parser = argparse.ArgumentParser()
    synth_command.register(parser.add_subparsers(), HelpFormatter)
    parsed = parser.parse_args(["synth", *args])
    return parsed.func(parsed)


def test_command_writes_a_tree_and_refuses_bad_arguments(tmp_path):
    out = tmp_path / "cli"
    assert _synth(["--out", str(out), "--domains", "1", "--stems", "blackblood,T2map", "--patterns", "ktRadial",
                   "--accelerations", "16", "--size", "41x48", "--coils", "3"]) == 0
    cases = {c.stem: c for c in find_cases(out)}
    assert {(c.stem, c.pattern, c.acceleration) for c in cases.values()} == {("T2map", "ktRadial", 16), ("blackblood", "ktRadial", 16)}
    assert MatArray(cases["T2map"].kus_path).shape == (3, 3, 3, 41, 48)  # 3 echoes, 3 slices, 3 coils
    assert _synth(["--out", str(out), "--stems", "cine_foo"]) == 2
    assert _synth(["--out", str(out), "--size", "10x10"]) == 2
    assert _synth(["--out", str(out), "--domains", "9"]) == 2
