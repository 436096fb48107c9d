"""Partial pooling of per-cell evidence (adgen.bandit.pooling), worked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from adgen.bandit.pooling import pooled_evidence, prior_strength


def test_prior_strength_from_between_cell_dispersion() -> None:
    # one arm, two cells: 10/100 and 30/100. p = 0.2, p(1-p) = 0.16,
    # Q = (100 * 0.1^2 + 100 * 0.1^2) / 0.16 = 12.5, excess = 12.5 - 1 = 11.5,
    # denominator = 200 - (100^2 + 100^2) / 200 = 100 -> 1/(tau+1) = 0.115
    tau = prior_strength(
        np.array([[10.0], [30.0]]), np.array([[100.0], [100.0]]),
        min_strength=1.0, max_strength=1000.0,
    )
    assert tau == pytest.approx(1 / 0.115 - 1)


def test_agreeing_cells_get_the_strongest_prior_and_disagreeing_the_weakest() -> None:
    same = prior_strength(
        np.array([[20.0, 40.0], [20.0, 40.0]]), np.array([[1000.0, 1000.0]] * 2),
        min_strength=5.0, max_strength=500.0,
    )
    assert same == 500.0
    opposite = prior_strength(
        np.array([[10.0, 300.0], [300.0, 10.0]]), np.array([[1000.0, 1000.0]] * 2),
        min_strength=5.0, max_strength=500.0,
    )
    assert opposite == 5.0
    empty = prior_strength(np.zeros((3, 2)), np.zeros((3, 2)), min_strength=1, max_strength=9)
    assert empty == 9.0


def test_pooled_evidence_adds_the_rest_of_the_campaign_as_prior() -> None:
    s, n = pooled_evidence(
        np.array([[10.0]]), np.array([[100.0]]), np.array([40.0]), np.array([200.0]), 8.0
    )
    # rest: 30 / 100 -> mean 31 / 102; prior of 8 pseudo-impressions
    assert s[0, 0] == pytest.approx(10 + 8 * 31 / 102)
    assert n[0, 0] == pytest.approx(108.0)


def test_a_new_cell_starts_from_the_campaign_and_weight_is_capped_by_its_evidence() -> None:
    s, n = pooled_evidence(
        np.zeros((1, 2)), np.zeros((1, 2)), np.array([5.0, 0.0]), np.array([10.0, 0.0]), 50.0
    )
    assert n[0] == pytest.approx([10.0, 0.0])  # never more prior than the campaign has
    assert s[0, 0] == pytest.approx(10 * 6 / 12)
    assert s[0, 1] == 0.0


def test_bad_shapes_and_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="cells, arms"):
        prior_strength(np.zeros(3), np.zeros(3), min_strength=1, max_strength=2)
    with pytest.raises(ValueError, match="min_strength"):
        prior_strength(np.zeros((1, 1)), np.zeros((1, 1)), min_strength=3, max_strength=2)
