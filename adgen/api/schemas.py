"""Request and response bodies of the API, split by role (Create / Public / Request)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from adgen.brief import Brief
from adgen.db.models import ArmStats, Campaign, Variant
from adgen.stats import credible_interval, posterior_mean, successes_within

#: Largest id PostgreSQL's INTEGER holds; larger ids would fail in the database, not here.
MAX_ID = 2_147_483_647
Id = Annotated[int, Field(ge=1, le=MAX_ID, strict=True)]


def _storable(value: Any, where: str) -> None:
    """Refuse NUL characters, which PostgreSQL text cannot store (pydantic already refuses
    lone surrogates)."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError(f"{where} contains a NUL character")
    if isinstance(value, list):
        for item in value:
            _storable(item, where)


class CampaignCreate(Brief):
    """A brief, as ``POST /v1/campaigns`` takes it."""

    @model_validator(mode="after")
    def _storable_text(self) -> CampaignCreate:
        for name in type(self).model_fields:
            _storable(getattr(self, name), name)
        return self


class CampaignPublic(BaseModel):
    """A stored campaign: its brief, id, status and creation time."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    product: str
    benefits: list[str]
    brand: str
    brand_voice: str | None
    audience: str
    locale: str
    channel: str
    max_length: int
    length_unit: str
    require_brand: bool
    forbidden_words: list[str]
    reward: str
    status: str
    created_at: datetime | None


class VariantPublic(BaseModel):
    """A variant with its counts and the posterior of the campaign's reward."""

    id: int
    campaign_id: int
    text: str
    status: str
    source: str
    model_version_id: int | None
    impressions: int
    clicks: int
    conversions: int
    ctr: float | None = Field(description="clicks / impressions; null before any impression")
    conversion_rate: float | None = Field(description="conversions / impressions")
    reward: str = Field(description="what counts as a success: click or conversion")
    posterior_mean: float
    ci95_low: float = Field(description="exact 2.5% quantile of Beta(1 + s, 1 + n - s)")
    ci95_high: float = Field(description="exact 97.5% quantile of Beta(1 + s, 1 + n - s)")
    guardrail_report: dict[str, Any]

    @classmethod
    def of(cls, variant: Variant, stats: ArmStats | None, reward: str) -> VariantPublic:
        """Summarise a stored variant and its ``arm_stats`` row."""
        n = int(stats.impressions) if stats else 0
        clicks = int(stats.clicks) if stats else 0
        conversions = int(stats.conversions) if stats else 0
        s = successes_within(clicks if reward == "click" else conversions, n)
        lo, hi = credible_interval(s, n)
        return cls(
            id=variant.id,
            campaign_id=variant.campaign_id,
            text=variant.text,
            status=variant.status,
            source=variant.source,
            model_version_id=variant.model_version_id,
            impressions=n,
            clicks=clicks,
            conversions=conversions,
            ctr=clicks / n if n else None,
            conversion_rate=conversions / n if n else None,
            reward=reward,
            posterior_mean=float(posterior_mean(s, n)),
            ci95_low=float(lo),
            ci95_high=float(hi),
            guardrail_report=variant.guardrail_report or {},
        )


class CampaignDetail(CampaignPublic):
    """A campaign with its variants and their statistics."""

    variants: list[VariantPublic]

    @classmethod
    def of(
        cls, campaign: Campaign, rows: list[tuple[Variant, ArmStats | None]]
    ) -> CampaignDetail:
        """The campaign and its variants."""
        base = CampaignPublic.model_validate(campaign).model_dump()
        return cls(**base, variants=[VariantPublic.of(v, s, campaign.reward) for v, s in rows])


VariantText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)
]


class VariantsCreate(BaseModel):
    """Hand-written variants for a campaign; each is checked by the guardrails."""

    model_config = ConfigDict(extra="forbid")

    texts: list[VariantText] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _storable_text(self) -> VariantsCreate:
        _storable(self.texts, "texts")
        return self


ContextValue = str | int | float | bool | None


class AllocateRequest(BaseModel):
    """Which variant should this impression of ``campaign_id`` get?"""

    model_config = ConfigDict(extra="forbid")

    campaign_id: Id
    context: dict[Annotated[str, StringConstraints(max_length=64)], ContextValue] | None = Field(
        None,
        max_length=32,
        description="Request context (accepted for the ad server's convenience; the "
        "non-contextual policy does not use it yet).",
    )


class AllocateResponse(BaseModel):
    """The chosen variant, its propensity and the token that later events must carry."""

    impression_id: str
    campaign_id: int
    variant_id: int
    text: str
    propensity: float
    token: str
    expires_at: int = Field(description="unix seconds after which the token is refused")


class EventRequest(BaseModel):
    """A click or a conversion of an impression, proven by its token."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["click", "conversion"]
    token: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    event_id: Annotated[
        str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    ] | None = Field(
        None,
        description="Client idempotency key; without one, a click or conversion counts "
        "once per impression.",
    )
    value: float | None = Field(None, ge=0, allow_inf_nan=False, description="conversions only")

    @model_validator(mode="after")
    def _value_only_for_conversions(self) -> EventRequest:
        if self.value is not None and self.type != "conversion":
            raise ValueError("only conversions carry a value")
        return self


class EventAccepted(BaseModel):
    """An event queued for ingestion."""

    event_id: str
    type: str
    impression_id: str
    status: Literal["accepted"] = "accepted"
