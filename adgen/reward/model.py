"""The reward model: predicts an ad text's click (or conversion) rate from its features.

Fitting: each arm's empirical-Bayes logit rate, ``log((s + a0) / (n - s + b0))`` with a
Beta(a0, b0) prior centred on the pooled rate, is regressed on the text's features by ridge
regression. Each arm weighs ``1 / (v + tau2)``: ``v`` is the sampling variance of its logit
(small when it has much evidence) and ``tau2`` the spread of true rates between texts
(method of moments), so evidence counts but a few huge arms cannot drown the rest. On the
Upworthy headline tests this beat a binomial logistic regression weighted by raw counts and
a within-test (fixed-effects) fit; see ``bench/reward_upworthy.py``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import joblib
import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.linear_model import Ridge

from adgen.brief import Brief
from adgen.errors import ModelError
from adgen.reward.embeddings import MINILM, get_embedder, minilm_available
from adgen.reward.features import FeatureSpec, TextFeaturizer
from adgen.stats import successes_within

logger = logging.getLogger(__name__)

ARTEFACT = "reward_model.joblib"
META = "meta.json"
FORMAT = 1

Embeddings = Literal["auto", "minilm", "none"]


@dataclass(frozen=True)
class RewardConfig:
    """Hyper-parameters of the reward model."""

    features: FeatureSpec = field(default_factory=FeatureSpec)
    embeddings: Embeddings = "auto"  # auto: MiniLM when its wheel is installed
    alpha: float = 30.0  # ridge penalty
    prior_strength: float = 200.0  # pseudo-impressions of the Beta prior on each arm's rate
    tau2: float | None = None  # between-text variance of logit rates; None: estimated

    def __post_init__(self) -> None:
        if self.embeddings not in ("auto", "minilm", "none"):
            raise ValueError(f"embeddings must be auto, minilm or none, got {self.embeddings!r}")
        if not self.alpha > 0:
            raise ValueError(f"alpha (ridge penalty) must be > 0, got {self.alpha!r}")
        if not self.prior_strength > 0:
            raise ValueError(f"prior_strength must be > 0, got {self.prior_strength!r}")
        if self.tau2 is not None and not self.tau2 > 0:
            raise ValueError(f"tau2 must be > 0 or None (estimate it), got {self.tau2!r}")


def _briefs(briefs: Sequence[Brief | None] | None, n: int) -> list[Brief | None]:
    if briefs is None:
        return [None] * n
    out = list(briefs)
    if len(out) != n:
        raise ValueError(f"got {n} texts but {len(out)} briefs")
    return out


def _sigmoid(z: NDArray[np.float64]) -> NDArray[np.float64]:
    return 1.0 / (1.0 + np.exp(-z))


class RewardModel:
    """Scores ad texts for a brief; higher is a higher predicted rate."""

    def __init__(self, config: RewardConfig | None = None) -> None:
        self.config = config or RewardConfig()
        self.embedding_model: str | None = None
        self._featurizer: TextFeaturizer | None = None
        self._ridge: Ridge | None = None
        self._intercept = 0.0
        self.prior_rate: float | None = None
        self.tau2: float | None = None
        self.n_train = 0

    # --- fitting -------------------------------------------------------------------------
    def fit(
        self,
        texts: Sequence[str],
        briefs: Sequence[Brief | None] | None,
        successes: ArrayLike,
        trials: ArrayLike,
    ) -> RewardModel:
        """Fit on arms: their texts, briefs (None where there is none) and outcomes."""
        texts = list(texts)
        s = np.asarray(successes, dtype=np.float64)
        n = np.asarray(trials, dtype=np.float64)
        if not (len(texts) == len(s) == len(n)):
            raise ValueError(f"got {len(texts)} texts, {len(s)} successes and {len(n)} trials")
        if len(texts) < 2:
            raise ValueError(f"need at least 2 arms to fit, got {len(texts)}")
        if (n <= 0).any() or (s < 0).any():
            raise ValueError("every arm needs trials > 0 and successes >= 0")
        s = successes_within(s, n)
        briefs_ = _briefs(briefs, len(texts))
        rate = float(np.clip(s.sum() / n.sum(), 1e-6, 1 - 1e-6))
        a0 = rate * self.config.prior_strength
        b0 = (1 - rate) * self.config.prior_strength
        y = np.log((s + a0) / (n - s + b0))
        sampling_var = 1 / (s + a0) + 1 / (n - s + b0)
        tau2 = self.config.tau2
        if tau2 is None:
            tau2 = max(float(np.var(y) - sampling_var.mean()), 1e-3)
        weights = 1.0 / (sampling_var + tau2)
        weights /= weights.mean()

        self.embedding_model = self._pick_embeddings()
        embed = get_embedder(self.embedding_model) if self.embedding_model else None
        self._featurizer = TextFeaturizer(self.config.features, embed).fit(texts, briefs_)
        x = self._featurizer.transform(texts, briefs_)
        self._intercept = float(np.average(y, weights=weights))
        self._ridge = None
        if x.shape[1] > 0:
            self._ridge = Ridge(alpha=self.config.alpha).fit(x, y, sample_weight=weights)
        self.prior_rate, self.tau2, self.n_train = rate, tau2, len(texts)
        logger.info(
            "reward model fitted on %d arms (%d features, embeddings=%s, tau2=%.3f)",
            len(texts), x.shape[1], self.embedding_model or "none", tau2,
        )
        return self

    def _pick_embeddings(self) -> str | None:
        if self.config.embeddings == "none":
            return None
        if self.config.embeddings == "auto" and not minilm_available():
            logger.info("MiniLM weights not installed: fitting without sentence embeddings")
            return None
        return MINILM

    # --- scoring -------------------------------------------------------------------------
    def score_logit(
        self, texts: Sequence[str], briefs: Sequence[Brief | None] | None = None
    ) -> NDArray[np.float64]:
        """Predicted logit rate of each text (the ranking score)."""
        if self._featurizer is None:
            raise ModelError("the reward model is not fitted; call fit() or RewardModel.load()")
        texts = list(texts)
        if not texts:
            return np.zeros(0)
        if self._ridge is None:
            return np.full(len(texts), self._intercept)
        x = self._featurizer.transform(texts, _briefs(briefs, len(texts)))
        return np.asarray(self._ridge.predict(x), dtype=np.float64)

    def score(
        self, texts: Sequence[str], briefs: Sequence[Brief | None] | None = None
    ) -> NDArray[np.float64]:
        """Predicted rate (click or conversion per impression) of each text, in (0, 1)."""
        return _sigmoid(self.score_logit(texts, briefs))

    def rank(self, texts: Sequence[str], brief: Brief | None = None) -> NDArray[np.int64]:
        """Indices of ``texts`` from the best predicted to the worst (ties keep input order)."""
        logits = self.score_logit(texts, [brief] * len(texts))
        return np.argsort(-logits, kind="stable").astype(np.int64)

    # --- storage -------------------------------------------------------------------------
    def save(self, folder: Path) -> Path:
        """Write the fitted model into ``folder`` (created); returns the folder."""
        if self._featurizer is None:
            raise ModelError("cannot save a reward model that is not fitted")
        folder.mkdir(parents=True, exist_ok=True)
        state = {
            "format": FORMAT,
            "config": self.config,
            "featurizer": self._featurizer,
            "ridge": self._ridge,
            "intercept": self._intercept,
            "embedding_model": self.embedding_model,
            "prior_rate": self.prior_rate,
            "tau2": self.tau2,
            "n_train": self.n_train,
        }
        joblib.dump(state, folder / ARTEFACT)
        meta = {k: v for k, v in state.items() if k not in ("featurizer", "ridge", "config")}
        meta["config"] = asdict(self.config)
        (folder / META).write_text(json.dumps(meta, indent=2, default=str))
        return folder

    @classmethod
    def load(cls, folder: Path) -> RewardModel:
        """A model saved by :meth:`save`; ModelError when it is missing or unreadable."""
        path = Path(folder) / ARTEFACT
        if not path.is_file():
            raise ModelError(f"no reward model at {path}")
        try:
            state: dict[str, Any] = joblib.load(path)
        except (OSError, EOFError, ValueError, ImportError, AttributeError) as exc:
            raise ModelError(f"reward model {path} could not be read: {exc}") from exc
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise ModelError(f"reward model {path} has an unknown format")
        model = cls(state["config"])
        model._featurizer = state["featurizer"]
        model._ridge = state["ridge"]
        model._intercept = state["intercept"]
        model.embedding_model = state["embedding_model"]
        model.prior_rate = state["prior_rate"]
        model.tau2 = state["tau2"]
        model.n_train = state["n_train"]
        if model.embedding_model:
            model._featurizer.embed = get_embedder(model.embedding_model)
        return model
