"""The reward model: predicts an ad text's click rate from features that generalise.

``RewardModel`` (fit / score / rank / save / load) lives in :mod:`adgen.reward.model`;
training on stored evidence, evaluation and the ``reward_models`` table in
:mod:`adgen.reward.training`.
"""

from __future__ import annotations

from adgen.reward.features import FeatureSpec
from adgen.reward.model import RewardConfig, RewardModel

__all__ = ["FeatureSpec", "RewardConfig", "RewardModel"]
