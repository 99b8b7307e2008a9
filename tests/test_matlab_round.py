"""MATLAB's rounding (genre.matlab_round)."""

from genre.matlab_round import mround


def test_mround_is_matlab_round():
    assert [mround(x) for x in (0.5, 1.5, 2.5, 100.5, 67.0, 149.33)] == [1, 2, 3, 101, 67, 149]
