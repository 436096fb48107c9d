"""The promotion gate: does a candidate version write better texts than the incumbent?

With P = P(the candidate's average variant rate > the incumbent's) on the campaigns where
the candidate has variants (``model.comparison``: each variant weighs the same, however
the bandit split the traffic, and the incumbent's side is the texts it wrote in the same
cycle as the candidate's rollout when there are any): promote when P ≥ ``promote_prob``,
roll back when P ≤ ``rollback_prob``. A near tie keeps P near one half however long it is
served, so the gate also settles once a choice's expected loss (``Comparison.expected_loss``,
relative to the incumbent's rate) is at most ``gate_loss_tolerance``: rolling back first, then
promoting. A candidate still undecided at ``gate_max_impressions`` is settled by
``gate_budget_rule``: by default it is rolled back, the incumbent staying (the posterior means
the gate once decided by there promoted texts 10% worse in the closed loop, and a rollback costs
only a cycle: the next trains from the incumbent); a budget squeezed into a short experiment,
such as the demo's one round, takes the choice with the smaller expected loss instead.
Otherwise continue.
Every decision is recorded in ``gate_decisions`` with its figures, and so is every
"continue" of the training job's evaluation (the scheduler's passes between jobs record
only decisions, or the table would fill with "continue" rows every few minutes).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session

from adgen.db.models import GateDecision
from adgen.errors import ConflictError
from adgen.model.comparison import Comparison, compare
from adgen.model.versions import active_of, get_version, promote, record_decision, rollback
from adgen.settings import Settings
from adgen.vocabulary import BudgetRule, Decider, Decision, VersionStatus

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    """What the gate decides, and why in words."""

    decision: Decision
    reason: str


def decide(
    prob: float,
    expected_loss: tuple[float, float],
    candidate_impressions: int,
    settings: Settings,
) -> Verdict:
    """The gate's rule (pure): ``expected_loss`` is (of promoting, of rolling back)."""
    loss_promote, loss_rollback = expected_loss
    tolerance = settings.gate_loss_tolerance
    if prob >= settings.promote_prob:
        return Verdict(Decision.PROMOTE, f"P(better) {prob:.4f} >= {settings.promote_prob}")
    if prob <= settings.rollback_prob:
        return Verdict(Decision.ROLLBACK, f"P(better) {prob:.4f} <= {settings.rollback_prob}")
    if loss_rollback <= tolerance:
        return Verdict(
            Decision.ROLLBACK,
            f"expected loss of rolling back {loss_rollback:.2%} <= {tolerance:.2%} "
            f"(P(better) {prob:.4f})",
        )
    if loss_promote <= tolerance:
        return Verdict(
            Decision.PROMOTE,
            f"expected loss of promoting {loss_promote:.2%} <= {tolerance:.2%} "
            f"(P(better) {prob:.4f})",
        )
    if candidate_impressions >= settings.gate_max_impressions:
        return _at_budget(prob, loss_promote, loss_rollback, settings)
    return Verdict(Decision.CONTINUE, f"P(better) {prob:.4f}: not yet decided")


def _at_budget(
    prob: float, loss_promote: float, loss_rollback: float, settings: Settings
) -> Verdict:
    """The verdict on a candidate still undecided at ``gate_max_impressions``."""
    budget = settings.gate_max_impressions
    if settings.gate_budget_rule == BudgetRule.KEEP_INCUMBENT:
        return Verdict(
            Decision.ROLLBACK,
            f"not shown better within {budget} impressions (P(better) {prob:.4f}): "
            "the incumbent stays",
        )
    decision = Decision.PROMOTE if loss_promote < loss_rollback else Decision.ROLLBACK
    return Verdict(
        decision,
        f"undecided at {budget} impressions, {decision} risks less: expected loss of "
        f"promoting {loss_promote:.2%}, of rolling back {loss_rollback:.2%} "
        f"(P(better) {prob:.4f})",
    )


def evaluate(
    session: Session, candidate_id: int, settings: Settings, *, record_continue: bool = True
) -> GateDecision | None:
    """Evaluate candidate ``candidate_id`` once, apply the verdict, and record it (a
    "continue" only with ``record_continue``; None when it was not recorded)."""
    candidate = get_version(session, candidate_id, lock=True)
    if candidate.status != VersionStatus.CANDIDATE:
        raise ConflictError(
            f"model version {candidate_id} is {candidate.status}, not a candidate: "
            "the gate only evaluates candidates"
        )
    incumbent = active_of(session, candidate.base_model)
    comparison: Comparison = compare(session, candidate, incumbent)
    verdict = decide(
        comparison.prob_better, comparison.expected_loss, comparison.candidate.trials, settings
    )
    logger.info("gate on v%d: %s (%s)", candidate.id, verdict.decision, verdict.reason)
    if verdict.decision == Decision.PROMOTE:
        return promote(session, candidate.id, by=Decider.GATE, reason=verdict.reason)
    if verdict.decision == Decision.ROLLBACK:
        return rollback(session, candidate.id, by=Decider.GATE, reason=verdict.reason)
    if not record_continue:
        return None
    return record_decision(
        session, candidate, incumbent, Decision.CONTINUE, Decider.GATE, comparison,
        reason=verdict.reason,
    )
