"""Held-out image families: images, motion and coils as documented, sources disjoint from training, trees predict reads."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from genre.cli import main
from genre.data import heldout
from genre.data.cmrx import find_cases, fullsample_path
from genre.data.heldout import (
    BIOLOGICAL_IMAGES,
    COIL_MODELS,
    FAMILIES,
    IMAGE_SOURCES,
    RENDERERS,
    BartUnavailable,
    bart_maps,
    birdcage_maps,
    motion_cycle,
    source_image,
)
from genre.data import simulation
from genre.data.matio import MatArray
from genre.data.synthetic import HeldoutSeries, SynthConfig, make_tree

needs_bart = pytest.mark.skipif(shutil.which("bart") is None, reason="needs the bart binary (apt-get install bart; .ci/run installs it)")
FAMILY_PARAMS = [pytest.param("bart", marks=needs_bart), "biological"]

def test_held_out_sources_are_disjoint_from_training_and_load_offline():
    assert set(FAMILIES) == set(COIL_MODELS) == set(RENDERERS)
    for family in FAMILIES:
        assert IMAGE_SOURCES[family] and not set(IMAGE_SOURCES[family]) & set(simulation.IMAGE_SOURCES)
        assert COIL_MODELS[family] not in simulation.COIL_MODELS
    for name in BIOLOGICAL_IMAGES:
        image = source_image(name)
        assert image.ndim == 2 and min(image.shape) >= 100 and np.isfinite(image).all() and image.max() == 1.0, name
    brain = source_image("matplotlib.sample_data:s1045.ima.gz")
    assert brain.shape == (256, 256) and (brain == 0).mean() > 0.3  # an MR slice: the head on a dark background


@pytest.mark.parametrize("family", FAMILY_PARAMS)
def test_cine_images_move_periodically_and_stacks_differ(family):
    render, _ = RENDERERS[family]
    images = render("cine_sax", 6, 2, 41, 53, seed=3, key="k")
    assert images.shape == (6, 2, 41, 53) and images.dtype == np.complex64 and np.isfinite(images).all()
    assert np.abs(images).max() == pytest.approx(1.0)
    magnitude = np.abs(images)
    assert not np.allclose(magnitude[0], magnitude[3], atol=1e-2)  # diastole vs end of the swing
    np.testing.assert_allclose(magnitude[1], magnitude[5], atol=1e-6)  # one periodic cycle
    assert not np.allclose(magnitude[0, 0], magnitude[0, 1], atol=1e-2)
    np.testing.assert_array_equal(render("cine_sax", 6, 2, 41, 53, seed=3, key="k"), images)
    assert not np.array_equal(render("cine_sax", 6, 2, 41, 53, seed=4, key="k"), images)


@pytest.mark.parametrize("family", FAMILY_PARAMS)
def test_mapping_weightings_decay_without_motion_and_single_frames(family):
    render, _ = RENDERERS[family]
    weightings = np.abs(render("T2map", 3, 1, 40, 48, seed=1, key="k"))
    assert np.all(np.diff(weightings.sum(axis=(1, 2, 3))) < 0)
    assert render("blackblood", 1, 1, 33, 47).shape == (1, 1, 33, 47)
    with pytest.raises(ValueError, match="not a series"):
        render("blackblood", 2, 1, 33, 47)
    assert motion_cycle("T2map", 3).tolist() == [0, 0, 0]
    np.testing.assert_allclose(motion_cycle("cine_sax", 4), [0, 0.5, 1, 0.5])


@pytest.mark.parametrize("family", FAMILY_PARAMS)
@pytest.mark.parametrize("coils", [4, 12])
def test_coil_maps_are_distinct_with_rss_peak_one(family, coils):
    _, render = RENDERERS[family]
    maps = render(coils, 37, 61, seed=2, key="k")
    assert maps.shape == (coils, 37, 61) and maps.dtype == np.complex64 and np.isfinite(maps).all()
    rss = np.sqrt((np.abs(maps) ** 2).sum(0))
    assert rss.max() == pytest.approx(1.0, rel=1e-5) and rss.min() > 0.05
    flat = np.abs(maps).reshape(coils, -1)
    correlation = np.corrcoef(flat)[~np.eye(coils, dtype=bool)]
    assert correlation.max() < 0.999  # no two coils alike: BART's 8 maps are repeated rotated


def test_birdcage_elements_peak_at_the_edge_nearest_them():
    maps = np.abs(birdcage_maps(8, 40, 80, seed=0))
    for coil in maps:
        y, x = np.unravel_index(np.argmax(coil), coil.shape)
        assert y in (0, 39) or x in (0, 79)
        assert coil[y, x] > 2 * coil[20, 40]  # 1 / distance: the far centre is weaker


def test_bart_family_fails_in_one_line_without_bart(monkeypatch, tmp_path):
    monkeypatch.setattr(heldout.shutil, "which", lambda name: None)
    with pytest.raises(BartUnavailable, match="needs BART's `bart` binary on PATH"):
        bart_maps(4, 32, 32)
    assert main(["synth", "--out", str(tmp_path / "t"), "--family", "bart"]) == 2


TINY = (HeldoutSeries("cine_sax", 40, 44, 3, 50), HeldoutSeries("blackblood", 41, 39, 5, 80, 4e-3),
        HeldoutSeries("T1w", 36, 40, 4, 60))


@pytest.mark.parametrize("family", FAMILY_PARAMS)
def test_held_out_tree_is_a_validation_tree_that_predict_walks(family, tmp_path):
    config = SynthConfig(family=family, heldout=TINY, frames=3, slices=2, accelerations=(8,))
    make_tree(tmp_path / "tree", config)
    cases = sorted(find_cases(tmp_path / "tree"), key=lambda c: c.location.patient)
    assert [c.stem for c in cases] == ["cine_sax", "blackblood", "T1w"]
    assert [c.pattern for c in cases] == ["Uniform", "ktGaussian", "ktRadial"]
    assert {c.location.domain.split("/")[0] for c in cases} == {"Center101" if family == "bart" else "Center102"}
    shapes = [MatArray(fullsample_path(c, tmp_path / "tree"), ["kspace"]).shape for c in cases]
    assert shapes == [(3, 2, 3, 40, 44), (5, 41, 39), (2, 4, 36, 40)]
    assert main(["predict", "--input", str(tmp_path / "tree"), "--output", str(tmp_path / "zf"),
                 "--method", "zero-filled", "--output-mode", "ranking", "--device", "cpu"]) == 0
    assert len(list((tmp_path / "zf").rglob("*_kus_*.mat"))) == 3
    with pytest.raises(ValueError, match="held out of training"):
        SynthConfig(family=family, layout="train")


def test_biological_images_sit_in_a_dark_margin():
    images = np.abs(heldout.biological_images("cine_sax", 4, 1, 50, 60, seed=5, key="k"))
    assert images[..., :3, :].max() == 0 and images[..., :, -3:].max() == 0  # 10% of each side, all round
    assert images[..., 5:45, 6:54].mean() > 0.05  # the image itself fills the rest
