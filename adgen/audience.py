"""A simulated audience: a seeded click model whose preferences are hidden from the learner.

True click probability of a text::

    sigmoid(logit(base_ctr) + Σ weight × feature(text) + per-variant noise)

described by a JSON file (every key optional but ``base_ctr``)::

    {"base_ctr": 0.03, "noise_std": 0.1, "seed": 7,
     "length": {"target": 60, "weight": 0.8},
     "has_number": 0.3, "has_question": 0.0, "has_exclamation": -0.2,
     "call_to_action": 0.5, "mentions_brand": 0.2, "emoji": 0.0,
     "contains": {"free shipping": 0.4, "包邮": 0.4},
     "conversion_rate": 0.1}

``length`` subtracts ``weight × |characters − target| / target``; ``call_to_action`` fires on
a built-in per-locale phrase list; ``contains`` keys are case-insensitive substrings;
``conversion_rate`` is the probability of a conversion given a click (default 0.1);
``source`` (text) says where a derived audience's weights come from (its attribution). The
per-variant noise is a deterministic function of the seed and the text, so a text keeps its
true rate. Pure: no I/O except :func:`load_audience`.

An audience may be split into segments whose preferences differ (for contextual
allocation)::

    {"base_ctr": 0.03, ...,
     "segments": {"mobile":  {"share": 0.6, "length": {"target": 30, "weight": 1.5}},
                  "desktop": {"share": 0.4, "has_number": 0.9}}}

A segment is the base object with its own keys laid over it (any key but ``segments``),
and ``share`` (> 0; shares are normalised) is its part of the traffic. A file without
``segments`` is one audience, as before.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adgen.errors import ValidationError

AUDIENCES_DIR = Path(__file__).parent / "data" / "audiences"
DEFAULT_AUDIENCE = AUDIENCES_DIR / "default.json"

#: Built-in call-to-action phrases per locale (matched case-insensitively as substrings;
#: English ones on word boundaries).
CTA_PHRASES: dict[str, tuple[str, ...]] = {
    "en": (
        "buy now",
        "shop",
        "try",
        "order",
        "get yours",
        "get it",
        "sign up",
        "join",
        "discover",
        "learn more",
        "grab",
        "book now",
        "start",
        "download",
        "claim",
        "don't miss",
        "save now",
    ),
    "zh": (
        "立即",
        "马上",
        "抢购",
        "快来",
        "点击",
        "下单",
        "立刻",
        "赶快",
        "速来",
        "来试试",
        "购买",
    ),
}

_FEATURE_KEYS = (
    "has_number",
    "has_question",
    "has_exclamation",
    "call_to_action",
    "mentions_brand",
    "emoji",
)
_KNOWN_KEYS = {
    "segments",
    "base_ctr",
    "noise_std",
    "seed",
    "length",
    "contains",
    "conversion_rate",
    "source",
    *_FEATURE_KEYS,
}
_EMOJI = re.compile(
    "[\U0001f300-\U0001faff\U00002600-\U000027bf\U0001f1e6-\U0001f1ff\U00002b50\U00002705]"
)
_DIGIT = re.compile(r"[0-9０-９]")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_EN_CTA = re.compile(
    r"\b(?:" + "|".join(re.escape(p) for p in CTA_PHRASES["en"]) + r")\b", re.IGNORECASE
)


class AudienceError(ValidationError):
    """An audience file or mapping that is not valid; the message names the key."""


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise AudienceError(f"audience key {key!r} must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Audience:
    """A validated click model; build it with :meth:`from_dict` or :func:`load_audience`."""

    base_ctr: float
    noise_std: float = 0.0
    seed: int = 0
    length_target: float | None = None
    length_weight: float = 0.0
    weights: dict[str, float] = field(default_factory=dict)
    contains: dict[str, float] = field(default_factory=dict)
    conversion_rate: float = 0.1
    name: str = "audience"
    #: (name, share of traffic, the segment's own audience); shares sum to one
    segments: tuple[tuple[str, float, Audience], ...] = ()

    @classmethod
    def from_dict(cls, spec: dict[str, Any], name: str = "audience") -> Audience:
        """Validate ``spec``; unknown keys and bad values raise AudienceError naming the key."""
        if not isinstance(spec, dict):
            raise AudienceError(f"an audience must be a JSON object, got {type(spec).__name__}")
        unknown = sorted(set(spec) - _KNOWN_KEYS)
        if unknown:
            raise AudienceError(
                f"unknown audience key {unknown[0]!r}; "
                f"allowed keys: {', '.join(sorted(_KNOWN_KEYS))}"
            )
        if "base_ctr" not in spec:
            raise AudienceError("audience key 'base_ctr' is required (e.g. 0.03)")
        base_ctr = _number("base_ctr", spec["base_ctr"])
        if not 0 < base_ctr < 1:
            raise AudienceError(f"audience key 'base_ctr' must be in (0, 1), got {base_ctr}")
        noise_std = _number("noise_std", spec.get("noise_std", 0.0))
        if noise_std < 0:
            raise AudienceError(f"audience key 'noise_std' must be ≥ 0, got {noise_std}")
        seed = spec.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise AudienceError(f"audience key 'seed' must be an integer, got {seed!r}")
        conversion_rate = _number("conversion_rate", spec.get("conversion_rate", 0.1))
        if not 0 <= conversion_rate <= 1:
            raise AudienceError(
                f"audience key 'conversion_rate' must be in [0, 1], got {conversion_rate}"
            )
        if not isinstance(spec.get("source", ""), str):
            raise AudienceError("audience key 'source' must be text (where the weights come from)")
        segments = cls._segments(spec, name)
        target, weight = cls._length(spec.get("length"))
        weights = {k: _number(k, spec[k]) for k in _FEATURE_KEYS if k in spec}
        contains = spec.get("contains", {})
        if not isinstance(contains, dict):
            raise AudienceError("audience key 'contains' must be an object {substring: weight}")
        for phrase in contains:
            if not isinstance(phrase, str) or not phrase.strip():
                raise AudienceError(
                    f"audience key 'contains' has an empty or non-text key {phrase!r}"
                )
        return cls(
            base_ctr=base_ctr,
            noise_std=noise_std,
            seed=seed,
            length_target=target,
            length_weight=weight,
            weights=weights,
            contains={k.lower(): _number(f"contains.{k}", v) for k, v in contains.items()},
            conversion_rate=conversion_rate,
            name=name,
            segments=segments,
        )

    @classmethod
    def _segments(
        cls, spec: dict[str, Any], name: str
    ) -> tuple[tuple[str, float, Audience], ...]:
        segments = spec.get("segments")
        if segments is None:
            return ()
        if not isinstance(segments, dict) or not segments:
            raise AudienceError("audience key 'segments' must be a non-empty object {name: {...}}")
        base = {k: v for k, v in spec.items() if k != "segments"}
        out = []
        for seg_name, seg in segments.items():
            if not isinstance(seg, dict):
                raise AudienceError(f"segment {seg_name!r} must be an object")
            if "segments" in seg:
                raise AudienceError(f"segment {seg_name!r} must not have segments of its own")
            share = _number(f"segments.{seg_name}.share", seg.get("share", 1.0))
            if share <= 0:
                raise AudienceError(f"segment {seg_name!r}: share must be > 0, got {share}")
            merged = base | {k: v for k, v in seg.items() if k != "share"}
            try:
                audience = cls.from_dict(merged, name=f"{name}/{seg_name}")
            except AudienceError as exc:
                raise AudienceError(f"segment {seg_name!r}: {exc}") from exc
            out.append((str(seg_name), share, audience))
        total = sum(share for _, share, _ in out)
        return tuple((n, share / total, a) for n, share, a in out)

    def segment(self, name: str) -> Audience:
        """The audience of segment ``name`` (AudienceError naming the known ones)."""
        for seg_name, _, audience in self.segments:
            if seg_name == name:
                return audience
        known = ", ".join(n for n, _, _ in self.segments) or "none"
        raise AudienceError(f"audience {self.name!r} has no segment {name!r} (segments: {known})")

    @staticmethod
    def _length(spec: Any) -> tuple[float | None, float]:
        if spec is None:
            return None, 0.0
        if not isinstance(spec, dict):
            raise AudienceError("audience key 'length' must be an object {target, weight}")
        extra = sorted(set(spec) - {"target", "weight"})
        if extra:
            raise AudienceError(f"unknown key 'length.{extra[0]}'; allowed: target, weight")
        if "target" not in spec:
            raise AudienceError("audience key 'length.target' is required when 'length' is given")
        target = _number("length.target", spec["target"])
        if target <= 0:
            raise AudienceError(f"audience key 'length.target' must be > 0, got {target}")
        return target, _number("length.weight", spec.get("weight", 1.0))

    def features(
        self, text: str, brand: str | None = None, locale: str | None = None
    ) -> dict[str, float]:
        """The named features of ``text`` (1.0 / 0.0, length as its penalty term)."""
        locale = locale or ("zh" if _CJK.search(text) else "en")
        lowered = text.lower()
        cta = (
            bool(_EN_CTA.search(text))
            if locale == "en"
            else any(p in text for p in CTA_PHRASES.get(locale, ()))
        )
        feats = {
            "has_number": float(bool(_DIGIT.search(text))),
            "has_question": float("?" in text or "？" in text),
            "has_exclamation": float("!" in text or "！" in text),
            "call_to_action": float(cta),
            "mentions_brand": float(bool(brand and brand.lower() in lowered)),
            "emoji": float(bool(_EMOJI.search(text))),
        }
        if self.length_target is not None:
            feats["length"] = -abs(len(text) - self.length_target) / self.length_target
        return feats

    def logit(self, text: str, brand: str | None = None, locale: str | None = None) -> float:
        """The true click logit of ``text`` (noise included)."""
        feats = self.features(text, brand, locale)
        z = math.log(self.base_ctr / (1 - self.base_ctr))
        z += sum(w * feats[k] for k, w in self.weights.items())
        if self.length_target is not None:
            z += self.length_weight * feats["length"]
        lowered = text.lower()
        z += sum(w for phrase, w in self.contains.items() if phrase in lowered)
        return z + self.noise(text)

    def noise(self, text: str) -> float:
        """Deterministic per-variant noise: N(0, noise_std) seeded by (seed, text)."""
        if self.noise_std == 0:
            return 0.0
        digest = hashlib.sha256(f"{self.seed}\x00{text}".encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        return float(rng.normal(0.0, self.noise_std))

    def true_ctr(self, text: str, brand: str | None = None, locale: str | None = None) -> float:
        """The probability that an impression of ``text`` is clicked."""
        return 1.0 / (1.0 + math.exp(-self.logit(text, brand, locale)))

    def simulate(
        self, ctr: float, rng: np.random.Generator, size: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """Clicks and conversions (given a click) for ``size`` impressions at rate ``ctr``."""
        clicks = rng.random(size) < ctr
        conversions = clicks & (rng.random(size) < self.conversion_rate)
        return clicks, conversions


def load_audience(path: str | Path | None = None) -> Audience:
    """Read and validate an audience JSON file (None = the shipped default)."""
    path = Path(path) if path is not None else DEFAULT_AUDIENCE
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise AudienceError(f"audience file {path} does not exist") from exc
    except json.JSONDecodeError as exc:
        raise AudienceError(f"audience file {path} is not valid JSON: {exc}") from exc
    try:
        return Audience.from_dict(spec, name=path.stem)
    except AudienceError as exc:
        raise AudienceError(f"{path}: {exc}") from exc
