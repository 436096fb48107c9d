"""PNG charts of the closed loop's rounds (matplotlib, no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from adgen.loop import RoundReport


def plot_rounds(rounds: Sequence[RoundReport], path: Path, title: str) -> Path:
    """Save the per-round curves (true CTR of serving texts, served CTR, regret) to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r.round for r in rounds]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6.5), sharex=True)
    top.plot(
        x, [r.generated_true_ctr for r in rounds], "o-", label="true CTR of serving version's texts"
    )
    top.plot(x, [r.served_ctr for r in rounds], "s-", label="CTR the traffic achieved")
    cand = [(r.round, r.candidate_true_ctr) for r in rounds if r.candidate_true_ctr is not None]
    if cand:
        top.plot(*zip(*cand, strict=True), "^--", label="true CTR of the new candidate's texts")
    for r in rounds:
        for v in r.promoted:
            top.annotate(f"promote v{v}", (r.round, r.served_ctr), fontsize=7, color="green")
        for v in r.rolled_back:
            top.annotate(f"rollback v{v}", (r.round, r.served_ctr), fontsize=7, color="red")
    top.set_ylabel("click-through rate")
    top.legend(fontsize=8)
    top.set_title(title)
    bottom.bar(x, [r.regret for r in rounds], color="tab:gray")
    bottom.set_ylabel("regret (expected clicks)")
    bottom.set_xlabel("round")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
