"""The campaign brief: what marketers write, validated (pure, no I/O)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Locale = Literal["en", "zh"]
Channel = Literal["headline", "description", "social"]

#: Default length limit per channel: (limit, unit). Chinese counts characters.
CHANNEL_LIMITS: dict[str, tuple[int, Literal["chars", "words"]]] = {
    "headline": (60, "chars"),
    "description": (120, "chars"),
    "social": (200, "chars"),
}
ZH_CHANNEL_LIMITS: dict[str, int] = {"headline": 30, "description": 60, "social": 120}


class Brief(BaseModel):
    """A campaign brief; ``max_length`` defaults from the channel and locale."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    product: str = Field(min_length=1, max_length=2000)
    benefits: list[str] = Field(default_factory=list, max_length=20)
    brand: str = Field(min_length=1, max_length=200)
    brand_voice: str | None = Field(None, max_length=500)
    audience: str = Field(min_length=1, max_length=1000)
    locale: Locale = "en"
    channel: Channel = "headline"
    max_length: int | None = Field(None, gt=0, le=2000)
    length_unit: Literal["chars", "words"] | None = None
    require_brand: bool = False
    forbidden_words: list[str] = Field(default_factory=list, max_length=200)
    reward: Literal["click", "conversion"] = "click"

    @field_validator("forbidden_words")
    @classmethod
    def _no_blank_word(cls, words: list[str]) -> list[str]:
        if any(not w.strip() for w in words):
            raise ValueError("forbidden_words must not contain an empty or blank word")
        return words

    @model_validator(mode="after")
    def _fill_limits(self) -> Brief:
        limit, unit = CHANNEL_LIMITS[self.channel]
        if self.locale == "zh":
            limit, unit = ZH_CHANNEL_LIMITS[self.channel], "chars"
            if self.length_unit == "words":
                raise ValueError("length_unit 'words' is not meaningful for zh; use 'chars'")
        if self.max_length is None:
            self.max_length = limit
        if self.length_unit is None:
            self.length_unit = unit
        return self
