"""BART's file format: .cfl/.hdr round trips and axis placement (no bart needed)."""

import numpy as np
import pytest

from genre.data.bartio import from_bart, read_cfl, to_bart, write_cfl


def test_cfl_round_trip_pads_to_16_dims_in_fortran_order(tmp_path):
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((3, 4, 5)) + 1j * rng.standard_normal((3, 4, 5))).astype(np.complex128)
    write_cfl(tmp_path / "a", a)
    assert (tmp_path / "a.hdr").read_text() == "# Dimensions\n3 4 5" + " 1" * 13 + "\n"
    np.testing.assert_array_equal(np.fromfile(tmp_path / "a.cfl", np.complex64), a.astype(np.complex64).ravel(order="F"))
    back = read_cfl(tmp_path / "a")
    assert back.dtype == np.complex64 and back.shape == (3, 4, 5) + (1,) * 13
    np.testing.assert_array_equal(back.reshape(3, 4, 5), a.astype(np.complex64))
    write_cfl(tmp_path / "real", np.arange(6, dtype=np.float32).reshape(2, 3))
    np.testing.assert_array_equal(read_cfl(tmp_path / "real").reshape(2, 3), np.arange(6).reshape(2, 3))
    with pytest.raises(ValueError, match="at most 16"):
        write_cfl(tmp_path / "b", np.zeros((1,) * 17))


def test_axes_go_to_bart_dimensions_and_back():
    k = np.arange(2 * 3 * 5 * 7).reshape(2, 3, 5, 7)  # (frames, coils, ky, kx)
    b = to_bart(k, (10, 3, 0, 1))
    assert b.shape == (5, 7, 1, 3, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1, 1)
    assert b[4, 6, 0, 2, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0] == k[1, 2, 4, 6]
    np.testing.assert_array_equal(from_bart(b, (10, 3, 0, 1)), k)
