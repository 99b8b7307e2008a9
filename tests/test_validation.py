"""Validation during training (genre.train.validation); that it scores what predict writes is in tests/test_train.py."""

from genre.train.validation import evenly_spaced


def test_evenly_spaced_keeps_the_ends_and_caps_the_count():
    assert evenly_spaced(5, None) == [0, 1, 2, 3, 4]
    assert evenly_spaced(3, 8) == [0, 1, 2]
    assert evenly_spaced(10, 4) == [0, 3, 6, 9]
    assert evenly_spaced(10, 1) == [0]
