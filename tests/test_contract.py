import numpy as np
import pytest

from genre.data.contract import OutputMode, output_shape, ranking_frames, ranking_slices, reduce_image


# The contract's worked examples, MATLAB order (x, y, z, t) -> ranking shape.
@pytest.mark.parametrize("stem,matlab,expected", [
    ("cine_sax", (448, 162, 14, 12), (149, 81, 2, 3)),
    ("cine_lax_4ch", (448, 204, 1, 12), (149, 102, 1, 3)),
    ("T1map", (384, 144, 5, 9), (128, 72, 2, 9)),
    ("T1w", (514, 201, 11, 1), (171, 101, 2)),
    ("blackblood", (256, 205, 1, 1), (85, 103)),
    ("lge_sax", (256, 208, 10, 1), (85, 104, 2)),
])
def test_ranking_shapes(stem, matlab, expected):
    internal = tuple(reversed(matlab))
    assert output_shape(stem, internal, OutputMode.RANKING) == expected
    assert reduce_image(np.zeros(internal, np.float32), stem, OutputMode.RANKING).shape == expected


def test_full_mode_keeps_interior_singletons():
    assert output_shape("cine_lax_4ch", (12, 1, 204, 448), OutputMode.FULL) == (448, 204, 1, 12)
    assert output_shape("T1w", (1, 11, 201, 514), OutputMode.FULL) == (514, 201, 11)


def test_slices_and_frames_rules():
    assert ranking_slices(1) == [0] and ranking_slices(2) == [0, 1]
    assert ranking_slices(3) == [0, 1]  # c = round(1.5) = 2
    assert ranking_slices(11) == [4, 5]  # c = round(5.5) = 6
    assert ranking_slices(14) == [5, 6]
    assert ranking_frames("T1w", 1) == [0]
    assert ranking_frames("T2map", 3) == [0, 1, 2]
    assert ranking_frames("cine_sax", 12) == [0, 1, 2]
    assert ranking_frames("cine_sax", 2) == [0, 1]


def test_reduce_picks_the_right_pixels():
    frames, slices, ny, nx = 5, 4, 201, 12
    image = np.random.default_rng(0).random((frames, slices, ny, nx)).astype(np.float32)
    out = reduce_image(image, "cine_sax", OutputMode.RANKING)
    cy, cx = 101, 4  # round(201/2) = 101 (MATLAB), round(12/3) = 4
    assert out.shape == (cx, cy, 2, 3)
    y0, x0 = 201 // 2 - 50, 12 // 2 - 2
    # slices: c = round(4/2) = 2 keeps [0, 1]
    np.testing.assert_array_equal(out[:, :, 1, 2], image[2, 1, y0 : y0 + cy, x0 : x0 + cx].T)
    full = reduce_image(image, "cine_sax", OutputMode.FULL)
    np.testing.assert_array_equal(full, image.transpose(3, 2, 1, 0))
