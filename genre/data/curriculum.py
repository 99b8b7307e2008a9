"""The acceleration curriculum of training: which accelerations each epoch may draw (METHOD.md, "Training")."""

from __future__ import annotations

from collections.abc import Sequence

#: The paper's curriculum (acceleration 8, then 16 added, then 24), as (fraction of the epochs, allowed R).
DEFAULT_CURRICULUM: tuple[tuple[float, tuple[int, ...]], ...] = ((0.0, (8,)), (1 / 3, (8, 16)), (2 / 3, (8, 16, 24)))


def check_curriculum(stages: Sequence[tuple[float, Sequence[int]]]) -> None:
    """Raise ``ValueError`` unless ``stages`` starts at fraction 0, rises, and names positive accelerations."""
    fractions = [float(f) for f, _ in stages]
    if not stages or fractions[0] != 0.0 or fractions != sorted(fractions) or fractions[-1] >= 1:
        raise ValueError(f"curriculum fractions must start at 0, rise and stay below 1, got {fractions}")
    if any(not accs or min(accs) < 1 for _, accs in stages):
        raise ValueError(f"every curriculum stage needs positive accelerations, got {[list(a) for _, a in stages]}")


def curriculum_accelerations(stages: Sequence[tuple[float, Sequence[int]]], epoch: int, epochs: int) -> tuple[int, ...]:
    """The accelerations allowed in ``epoch`` (from 0) of ``epochs``: the last stage whose start ``fraction * epochs`` has passed."""
    allowed = stages[0][1]
    for fraction, accelerations in stages:
        # The tolerance keeps 1/3 * 3 = 0.999... from delaying a stage by an epoch.
        if epoch >= fraction * epochs - 1e-9:
            allowed = accelerations
    return tuple(int(a) for a in allowed)
