"""The acceleration curriculum (genre.data.curriculum)."""

import pytest

from genre.data.curriculum import DEFAULT_CURRICULUM, check_curriculum, curriculum_accelerations


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
