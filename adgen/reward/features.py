"""Features of ad texts that generalise across campaigns (pure: numpy, scipy, scikit-learn).

Three blocks, stacked side by side by :class:`TextFeaturizer`:

- TF-IDF of word 1–2-grams and character 2–5-grams (sublinear, unit-normalised rows);
- hand-made features (:func:`handcrafted`): length, digits, question and exclamation marks,
  quotes, capitals, second person, call-to-action phrases per locale, brand and product
  mentions, emoji, CJK share, length relative to the brief's limit — standardised;
- optionally a sentence embedding per text (computed by an injected function, so this
  module loads no model), and the brief (TF-IDF of its product, audience and benefits, plus
  its locale and channel), which lets campaigns differ in their base rate.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import StandardScaler

from adgen.brief import Brief
from adgen.guardrails.text import cjk_share, topic_keys

Embed = Callable[[list[str]], NDArray[np.float32]]

#: Call-to-action phrases per locale (English on word boundaries, Chinese as substrings).
CTA_PHRASES: dict[str, tuple[str, ...]] = {
    "en": (
        "buy", "shop", "order", "try", "get", "grab", "claim", "save", "sign up", "join",
        "subscribe", "discover", "learn more", "find out", "see how", "book", "download",
        "start", "click", "watch", "don't miss", "limited time",
    ),
    "zh": (
        "立即", "马上", "立刻", "赶快", "快来", "抢购", "点击", "下单", "购买", "领取", "注册",
        "加入", "预约", "下载", "试试", "了解更多", "限时",
    ),
}
_EN_CTA = re.compile(
    r"\b(?:" + "|".join(re.escape(p) for p in CTA_PHRASES["en"]) + r")\b", re.IGNORECASE
)
_EMOJI = re.compile(
    "[\U0001f300-\U0001faff\U00002600-\U000027bf\U0001f1e6-\U0001f1ff\U00002b50\U00002705]"
)
_DIGIT = re.compile(r"[0-9０-９]")
_NUMBER = re.compile(r"[0-9０-９]+")
_YOU = re.compile(r"\b(?:you|your|you're|yourself)\b|你|您", re.IGNORECASE)
_FIRST = re.compile(r"\b(?:i|we|my|our|me|us)\b", re.IGNORECASE)
_QUOTES = re.compile("[\"“”'‘’「」『』]")

HANDCRAFTED_NAMES = (
    "log_chars", "log_words", "mean_word_len", "has_digit", "numbers", "starts_with_digit",
    "question", "exclamation", "periods", "colon", "quotes", "ellipsis", "dash",
    "caps_words", "second_person", "first_person", "call_to_action", "mentions_brand",
    "product_overlap", "emoji", "cjk_share", "length_ratio",
)


def _cta(text: str, locale: str) -> bool:
    if locale == "zh":
        return any(p in text for p in CTA_PHRASES["zh"])
    return bool(_EN_CTA.search(text))


def _row(text: str, brief: Brief | None) -> list[float]:
    words = text.split()
    n_chars = len(text)
    cjk = cjk_share(text)
    locale = brief.locale if brief is not None else ("zh" if cjk > 0.5 else "en")
    brand = brief.brand.casefold() if brief is not None else ""
    overlap = 0.0
    ratio = 0.0
    if brief is not None:
        wanted = topic_keys(" ".join([brief.product, *brief.benefits]))
        if wanted:
            overlap = len(wanted & topic_keys(text)) / len(wanted)
        limit = brief.max_length or n_chars or 1
        length = len(words) if brief.length_unit == "words" else n_chars
        ratio = length / limit
    return [
        float(np.log1p(n_chars)),
        float(np.log1p(len(words))),
        (sum(len(w) for w in words) / len(words)) if words else 0.0,
        float(bool(_DIGIT.search(text))),
        float(len(_NUMBER.findall(text))),
        float(bool(text[:1]) and bool(_DIGIT.match(text[:1]))),
        float(text.count("?") + text.count("？")),
        float(text.count("!") + text.count("！")),
        float(text.count(".") + text.count("。")),
        float(":" in text or "：" in text),
        float(len(_QUOTES.findall(text))),
        float("..." in text or "…" in text),
        float("—" in text or " - " in text or "–" in text),
        (sum(1 for w in words if len(w) > 1 and w.isupper()) / len(words)) if words else 0.0,
        float(bool(_YOU.search(text))),
        float(bool(_FIRST.search(text))),
        float(_cta(text, locale)),
        float(bool(brand) and brand in text.casefold()),
        overlap,
        float(len(_EMOJI.findall(text))),
        cjk,
        ratio,
    ]


def handcrafted(texts: Sequence[str], briefs: Sequence[Brief | None]) -> NDArray[np.float64]:
    """The hand-made features of each text (columns named by ``HANDCRAFTED_NAMES``)."""
    if not texts:
        return np.zeros((0, len(HANDCRAFTED_NAMES)))
    return np.array([_row(t, b) for t, b in zip(texts, briefs, strict=True)], dtype=np.float64)


def brief_text(brief: Brief | None) -> str:
    """What of a brief describes the campaign's context, as one string ('' for none)."""
    if brief is None:
        return ""
    return " ".join(
        [brief.product, brief.audience, *brief.benefits, f"locale_{brief.locale}",
         f"channel_{brief.channel}"]
    )


@dataclass(frozen=True)
class FeatureSpec:
    """Which feature blocks to use (see the module docstring)."""

    word_ngrams: tuple[int, int] | None = (1, 2)
    char_ngrams: tuple[int, int] | None = (2, 5)
    handcrafted: bool = True
    brief: bool = True
    min_df: int = 2
    max_char_features: int = 200_000

    def __post_init__(self) -> None:
        for name in ("word_ngrams", "char_ngrams"):
            value = getattr(self, name)
            if value is not None and not (1 <= value[0] <= value[1]):
                raise ValueError(f"{name} must be (low, high) with 1 <= low <= high, got {value!r}")
        if self.min_df < 1:
            raise ValueError(f"min_df must be >= 1, got {self.min_df!r}")


def _fit_tfidf(texts: Sequence[str], **options: Any) -> TfidfVectorizer | None:
    """A TF-IDF vectorizer fitted on ``texts``; None when they yield no terms at all."""
    try:
        return TfidfVectorizer(**options).fit(texts)
    except ValueError as exc:  # sklearn: "empty vocabulary; perhaps the documents only ..."
        if "empty vocabulary" not in str(exc):
            raise
        return None


class TextFeaturizer:
    """Fit on training texts, then turn any texts (with their briefs) into one sparse matrix."""

    def __init__(self, spec: FeatureSpec, embed: Embed | None = None) -> None:
        self.spec = spec
        self.embed = embed
        self._word: TfidfVectorizer | None = None
        self._char: TfidfVectorizer | None = None
        self._brief: TfidfVectorizer | None = None
        self._scaler: StandardScaler | None = None

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state["embed"] = None  # the embedding function is re-attached on load
        return state

    def fit(self, texts: Sequence[str], briefs: Sequence[Brief | None]) -> TextFeaturizer:
        """Learn vocabularies and scalings from the training texts."""
        n = len(texts)
        min_df = self.spec.min_df if n >= 10 * self.spec.min_df else 1
        if self.spec.word_ngrams:
            self._word = _fit_tfidf(
                texts, ngram_range=self.spec.word_ngrams, min_df=min_df, sublinear_tf=True
            )
        if self.spec.char_ngrams:
            self._char = _fit_tfidf(
                texts,
                analyzer="char_wb",
                ngram_range=self.spec.char_ngrams,
                min_df=min_df,
                sublinear_tf=True,
                lowercase=False,
                max_features=self.spec.max_char_features,
            )
        if self.spec.handcrafted:
            self._scaler = StandardScaler().fit(handcrafted(texts, briefs))
        contexts = [brief_text(b) for b in briefs]
        if self.spec.brief and any(contexts):
            self._brief = _fit_tfidf(contexts, min_df=1, sublinear_tf=True)
        return self

    def transform(self, texts: Sequence[str], briefs: Sequence[Brief | None]) -> sp.csr_matrix:
        """The feature matrix of ``texts`` (rows in order)."""
        texts = list(texts)
        blocks: list[sp.spmatrix] = []
        if self._word is not None:
            blocks.append(self._word.transform(texts))
        if self._char is not None:
            blocks.append(self._char.transform(texts))
        if self._scaler is not None:
            blocks.append(sp.csr_matrix(self._scaler.transform(handcrafted(texts, briefs))))
        if self._brief is not None:
            blocks.append(self._brief.transform([brief_text(b) for b in briefs]))
        if self.embed is not None:
            blocks.append(sp.csr_matrix(self.embed(texts).astype(np.float64)))
        if not blocks:
            return sp.csr_matrix((len(texts), 0))
        return sp.hstack(blocks, format="csr")
