"""The generalization analysis: stem kinds, coil counts from vendor folders, map coherence, error shares."""

import numpy as np
import pytest

from benchmarks.generalization import coil_class, correction, map_coherence, stem_kind, vendor_coils


def test_stem_kinds_follow_the_neighbour_rules():
    assert [stem_kind(s) for s in ("cine_sax", "flow2d", "T2map", "T1rho", "lge_sax", "T1w", "blackblood")] == [
        "cine", "cine", "mapping", "mapping", "single-frame", "single-frame", "single-frame"]


def test_coil_counts_come_from_held_out_vendor_folders():
    assert vendor_coils("HeldOut_04ch_SNR40") == 4 and vendor_coils("HeldOut_32ch_SNR100") == 32
    assert vendor_coils("Siemens_30T_Vida") is None and coil_class(None) is None
    assert [coil_class(n) for n in (4, 6, 8, 12, 16, 32)] == ["4-6 coils"] * 2 + ["8-12 coils"] * 2 + ["16-32 coils"] * 2


def test_map_coherence_ignores_a_phase_and_scale_per_pixel_only():
    rng = np.random.default_rng(0)
    truth = rng.standard_normal((4, 6, 7)) + 1j * rng.standard_normal((4, 6, 7))
    region = np.ones((6, 7), bool)
    per_pixel = 3 * np.exp(1j * rng.uniform(0, 2 * np.pi, (6, 7)))
    assert map_coherence(truth * per_pixel, truth, region) == pytest.approx(1.0)
    assert map_coherence(truth[::-1], truth, region) < 0.9  # coils swapped


def test_correction_shares():
    rng = np.random.default_rng(1)
    gt, zf = rng.uniform(0, 1, (8, 9)), rng.uniform(0, 1, (8, 9))
    assert correction(gt, zf, zf) == (0.0, 0.0)
    moved, removed = correction(gt, zf, gt)
    assert moved == pytest.approx(1.0) and removed == pytest.approx(1.0)
    moved, removed = correction(gt, zf, zf + 0.5 * (gt - zf))
    assert 0 < moved < 1 and 0 < removed < 1
