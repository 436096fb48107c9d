"""Preference data from evidence (pure: no I/O).

Three kinds of training examples, all sharing the generator's chat prompt for the brief:

* **Live pairs** (DPO): within one campaign, variant A is preferred over B when the
  posterior probability that A's success rate (clicks or conversions per impression, per
  the campaign's reward) exceeds B's is at least ``threshold`` (Beta(1, 1) priors).
* **Reward-model pairs** (DPO): among N fresh samples from the current version for one
  prompt, each of the k best-scored samples that passed the guardrails is preferred over
  each of the k worst-scored passing ones and the k worst failing ones (compliance too).
* **Binary examples** (KTO): a variant is *desirable* when P(its rate > the pooled rate of
  the campaign's other variants) ≥ ``threshold``, *undesirable* when that probability is
  ≤ 1 − ``threshold``; variants in between give no example. Reward-model pairs give one
  desirable (chosen) and one undesirable (rejected) example each.

Held-out evaluation splits *variants*, not pairs: within each campaign the variants are
ranked by posterior mean and every k-th one (k ≈ 1 / share, random offset) is held out,
so that held-out pairs compare texts the trainer never saw and include winners and losers.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from adgen.stats import posterior_mean, prob_better

Messages = list[dict[str, str]]
PairSource = Literal["live", "reward_model"]


@dataclass(frozen=True)
class ArmOutcome:
    """One variant's text and its evidence: successes out of trials (impressions)."""

    variant_id: int
    text: str
    successes: int
    trials: int

    def __post_init__(self) -> None:
        if self.trials < 0 or not 0 <= self.successes <= self.trials:
            raise ValueError(
                f"variant {self.variant_id}: need 0 <= successes <= trials, got "
                f"successes={self.successes}, trials={self.trials}"
            )

    @property
    def posterior_mean(self) -> float:
        """Mean of the Beta(1 + s, 1 + n − s) posterior of the success rate."""
        return float(posterior_mean(self.successes, self.trials))


@dataclass(frozen=True)
class CampaignEvidence:
    """A campaign's chat prompt (from the generator's prompt builder) and its variants."""

    campaign_id: int
    prompt: Messages
    arms: tuple[ArmOutcome, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class PreferencePair:
    """``chosen`` is preferred over ``rejected`` for ``prompt``; ``strength`` is the
    posterior probability (live) or the reward-score gap (reward model)."""

    campaign_id: int
    prompt: Messages
    chosen: str
    rejected: str
    source: PairSource
    strength: float


@dataclass(frozen=True)
class BinaryExample:
    """A completion labelled desirable or not, for KTO."""

    campaign_id: int
    prompt: Messages
    completion: str
    desirable: bool
    source: PairSource
    strength: float


def live_pairs(evidence: Iterable[CampaignEvidence], threshold: float) -> list[PreferencePair]:
    """Every ordered pair (A, B) within a campaign with P(rate_A > rate_B) ≥ ``threshold``."""
    _check_threshold(threshold)
    pairs: list[PreferencePair] = []
    for campaign in evidence:
        arms = [a for a in campaign.arms if a.trials > 0]
        for a in arms:
            for b in arms:
                if a.variant_id == b.variant_id or a.text == b.text:
                    continue
                p = prob_better(a.successes, a.trials, b.successes, b.trials)
                if p >= threshold:
                    pairs.append(
                        PreferencePair(
                            campaign.campaign_id, campaign.prompt, a.text, b.text, "live", p
                        )
                    )
    return pairs


def ranked_pairs(
    campaign_id: int,
    prompt: Messages,
    texts: Sequence[str],
    scores: Sequence[float],
    passed: Sequence[bool],
    k: int,
) -> list[PreferencePair]:
    """Each of the ``k`` best-scored samples that passed the guardrails over each of the
    ``k`` worst-scored ones that passed and the ``k`` worst that failed.

    Two contrasts: among compliant texts the reward model's preference (what the audience
    likes), and compliance itself (a failed text never wins). Duplicate texts count once;
    a pair of equal passing scores teaches nothing and is left out. Empty when no sample
    passed.
    """
    if not len(texts) == len(scores) == len(passed):
        raise ValueError(
            f"texts, scores and passed must have the same length, got "
            f"{len(texts)}, {len(scores)}, {len(passed)}"
        )
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    first = {t: i for i, t in reversed(list(enumerate(texts)))}
    unique = sorted(first.values(), key=lambda i: scores[i])
    ok = [i for i in unique if passed[i]]
    failed = [i for i in unique if not passed[i]]
    chosen = ok[::-1][:k]
    rejected = [i for i in ok[:k] if i not in chosen] + failed[:k]
    pairs: list[PreferencePair] = []
    for c in chosen:
        for r in rejected:
            gap = float(scores[c] - scores[r])
            if passed[r] and gap <= 0:
                continue
            pairs.append(
                PreferencePair(campaign_id, prompt, texts[c], texts[r], "reward_model", gap)
            )
    return pairs


def binary_examples(evidence: Iterable[CampaignEvidence], threshold: float) -> list[BinaryExample]:
    """KTO examples from per-variant outcomes against the campaign's other variants pooled."""
    _check_threshold(threshold)
    examples: list[BinaryExample] = []
    for campaign in evidence:
        arms = [a for a in campaign.arms if a.trials > 0]
        total_s = sum(a.successes for a in arms)
        total_n = sum(a.trials for a in arms)
        for arm in arms:
            rest_s, rest_n = total_s - arm.successes, total_n - arm.trials
            if rest_n == 0:
                continue
            p = prob_better(arm.successes, arm.trials, rest_s, rest_n)
            if p >= threshold or p <= 1 - threshold:
                examples.append(
                    BinaryExample(
                        campaign.campaign_id, campaign.prompt, arm.text, p >= threshold, "live", p
                    )
                )
    return examples


def examples_from_pairs(pairs: Iterable[PreferencePair]) -> list[BinaryExample]:
    """The pairs' texts as KTO examples, once each: chosen desirable, rejected undesirable
    (a text in several pairs keeps its strongest pair's strength)."""
    best: dict[tuple[int, str, bool], BinaryExample] = {}
    for p in pairs:
        for text, desirable in ((p.chosen, True), (p.rejected, False)):
            key = (p.campaign_id, text, desirable)
            if key not in best or p.strength > best[key].strength:
                best[key] = BinaryExample(
                    p.campaign_id, p.prompt, text, desirable, p.source, p.strength
                )
    return list(best.values())


def split_heldout(
    evidence: Sequence[CampaignEvidence], share: float, seed: int
) -> tuple[list[CampaignEvidence], list[CampaignEvidence]]:
    """Split each campaign's variants into (train, held-out), stratified by posterior mean.

    A campaign with fewer than 4 variants with evidence stays entirely in training.
    """
    if not 0 <= share < 1:
        raise ValueError(f"held-out share must be in [0, 1), got {share}")
    rng = random.Random(seed)
    train: list[CampaignEvidence] = []
    heldout: list[CampaignEvidence] = []
    for campaign in evidence:
        arms = sorted(
            (a for a in campaign.arms if a.trials > 0),
            key=lambda a: (a.posterior_mean, a.variant_id),
        )
        if share == 0 or len(arms) < 4:
            train.append(CampaignEvidence(campaign.campaign_id, campaign.prompt, tuple(arms)))
            continue
        step = max(2, round(1 / share))
        offset = rng.randrange(step)
        held = [a for i, a in enumerate(arms) if i % step == offset]
        kept = [a for i, a in enumerate(arms) if i % step != offset]
        train.append(CampaignEvidence(campaign.campaign_id, campaign.prompt, tuple(kept)))
        heldout.append(CampaignEvidence(campaign.campaign_id, campaign.prompt, tuple(held)))
    return train, heldout


def dpo_rows(pairs: Iterable[PreferencePair]) -> list[dict[str, Messages]]:
    """Conversational rows for TRL's DPOTrainer: prompt, chosen, rejected."""
    return [
        {
            "prompt": p.prompt,
            "chosen": [{"role": "assistant", "content": p.chosen}],
            "rejected": [{"role": "assistant", "content": p.rejected}],
        }
        for p in pairs
    ]


def kto_rows(examples: Iterable[BinaryExample], seed: int) -> list[dict[str, object]]:
    """Conversational rows for TRL's KTOTrainer, shuffled (its sampler is sequential)."""
    rows: list[dict[str, object]] = [
        {
            "prompt": e.prompt,
            "completion": [{"role": "assistant", "content": e.completion}],
            "label": e.desirable,
        }
        for e in examples
    ]
    random.Random(seed).shuffle(rows)
    return rows


def _check_threshold(threshold: float) -> None:
    if not 0.5 <= threshold < 1:
        raise ValueError(f"threshold must be in [0.5, 1), got {threshold}")
