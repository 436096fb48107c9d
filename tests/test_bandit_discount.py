"""Discounting old evidence with a half-life (pure)."""

from __future__ import annotations

import numpy as np
import pytest

from adgen.bandit import DiscountedEvidence


def test_first_totals_count_in_full_then_decay_by_half_per_half_life() -> None:
    d = DiscountedEvidence(half_life_s=10.0)
    s, n = d.update(["a", "b"], [10, 4], [100, 40], now_s=0.0)
    np.testing.assert_allclose(s, [10, 4])
    np.testing.assert_allclose(n, [100, 40])
    s, n = d.update(["a", "b"], [10, 14], [100, 60], now_s=10.0)
    np.testing.assert_allclose(s, [5, 2 + 10])
    np.testing.assert_allclose(n, [50, 20 + 20])


def test_a_drifting_arm_overtakes_once_old_evidence_fades() -> None:
    d = DiscountedEvidence(half_life_s=60.0)
    d.update([1, 2], [900, 100], [1000, 1000], now_s=0.0)
    # an hour later arm 2 has been doing better recently
    s, n = d.update([1, 2], [910, 190], [1100, 1100], now_s=3600.0)
    assert s[1] / n[1] > s[0] / n[0]


def test_forgotten_keys_restart_and_resets_restart() -> None:
    d = DiscountedEvidence(half_life_s=5.0)
    d.update(["a"], [5], [10], now_s=0.0)
    d.update(["b"], [1], [2], now_s=5.0)  # "a" is forgotten
    s, n = d.update(["a"], [6], [12], now_s=10.0)
    np.testing.assert_allclose([s[0], n[0]], [6, 12])
    s, n = d.update(["a"], [1], [3], now_s=15.0)  # totals went down: a reset
    np.testing.assert_allclose([s[0], n[0]], [1, 3])


def test_time_must_not_go_backwards() -> None:
    d = DiscountedEvidence(half_life_s=5.0)
    d.update(["a"], [1], [2], now_s=10.0)
    with pytest.raises(ValueError, match="backwards"):
        d.update(["a"], [1], [2], now_s=9.0)
