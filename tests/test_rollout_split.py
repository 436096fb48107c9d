"""How a cycle that makes a candidate splits its new texts between the candidate and the
serving version (pure)."""

from __future__ import annotations

import pytest

from adgen.settings import Settings
from adgen.training.rollout import Share, split_rollout


@pytest.mark.parametrize(
    ("variants", "best_of", "share", "candidate", "serving"),
    [
        (4, 8, 0.5, Share(2, 4), Share(2, 4)),  # the defaults: two of four each
        (2, 4, 0.5, Share(1, 2), Share(1, 2)),
        (4, 8, 0.25, Share(1, 2), Share(3, 6)),
        (4, 8, 1.0, Share(4, 8), Share(0, 0)),  # the candidate writes every new text
        (1, 2, 0.5, Share(1, 1), Share(0, 0)),  # one text: the candidate's, never none
        (3, 3, 0.5, Share(2, 2), Share(1, 1)),
        (4, 1, 0.5, Share(2, 2), Share(2, 2)),  # written at least what is kept
    ],
)
def test_a_cycle_adds_as_many_new_texts_with_a_candidate_as_without(
    variants: int, best_of: int, share: float, candidate: Share, serving: Share
) -> None:
    got = split_rollout(variants, best_of, share)
    assert got == (candidate, serving)
    assert got[0].keep + got[1].keep == variants
    assert all(s.best_of >= s.keep for s in got)


def test_the_default_split_is_even() -> None:
    settings = Settings()
    mine, theirs = split_rollout(
        settings.rollout_variants, settings.rollout_best_of, settings.candidate_rollout_share
    )
    assert mine == theirs
    assert mine.best_of + theirs.best_of == settings.rollout_best_of
