"""Request and response bodies of the API, split by role (Create / Public / Request)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from adgen.brief import Brief
from adgen.cells import MAX_ATTRIBUTES, MAX_CELLS_CAP, check_attributes
from adgen.db.models import ArmStats, Campaign, Variant
from adgen.operations import TrafficControls
from adgen.stats import (
    conversion_rate,
    credible_interval,
    ctr,
    posterior_mean,
    prob_best,
    successes_within,
)
from adgen.vocabulary import VariantStatus

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


class ErrorBody(BaseModel):
    """Every error answer: what went wrong, in words."""

    detail: str


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


#: Error answers any route may give (declared in the OpenAPI document).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _error("The request body could not be parsed."),
    401: _error("Missing or wrong admin token, or a bad, expired or tampered event token."),
    404: _error("No such campaign, variant or model version."),
    409: _error("The request conflicts with the current state."),
    413: _error("Request body over ADGEN_API_MAX_BODY_BYTES."),
    422: _error("Invalid request (the detail names the field), or a NUL character."),
    503: _error("The database, the broker or the posteriors are not available."),
}


def _checked_attributes(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    try:
        return check_attributes(value) or None
    except ValueError as exc:
        raise ValueError(str(exc)) from None


ContextAttributes = Annotated[
    list[str] | None,
    Field(
        max_length=MAX_ATTRIBUTES,
        description="Request-context attributes to allocate on (categorical, e.g. "
        "placement, device); one cell per combination of their values. Null or empty: "
        "not contextual.",
    ),
]
MaxCells = Annotated[
    int | None,
    Field(ge=1, le=MAX_CELLS_CAP, description="Most cells kept; null: the setting"),
]


class CampaignCreate(Brief):
    """A brief, as ``POST /v1/campaigns`` takes it, with the context attributes the
    campaign allocates on (optional)."""

    context_attributes: ContextAttributes = None
    max_cells: MaxCells = None

    @field_validator("context_attributes")
    @classmethod
    def _attributes(cls, v: list[str] | None) -> list[str] | None:
        return _checked_attributes(v)

    @model_validator(mode="after")
    def _storable_text(self) -> CampaignCreate:
        for name in type(self).model_fields:
            _storable(getattr(self, name), name)
        return self


class CellsUpdate(BaseModel):
    """New context attributes and cap on cells; a field left out keeps its value."""

    model_config = ConfigDict(extra="forbid")

    context_attributes: ContextAttributes = None
    max_cells: MaxCells = None
    reset: bool = Field(False, description="clear both first (not contextual, the setting's cap)")

    @field_validator("context_attributes")
    @classmethod
    def _attributes(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else (_checked_attributes(v) or [])


class CellArmPublic(BaseModel):
    """One variant's results in one cell."""

    variant_id: int
    impressions: int
    clicks: int
    conversions: int
    ctr: float | None
    conversion_rate: float | None
    ci95_low: float = Field(description="exact 2.5% quantile of Beta(1 + clicks, 1 + misses)")
    ci95_high: float
    probability: float | None = Field(
        None, description="share of this cell's traffic the allocator serves it now"
    )


class CellPublic(BaseModel):
    """One cell: totals, variants, and its sample-ratio-mismatch test."""

    cell: str
    impressions: int
    clicks: int
    conversions: int
    ctr: float | None
    srm_p_value: float | None = Field(None, description="null before the test is ready")
    srm_flagged: bool = False
    variants: list[CellArmPublic]


class CellsPublic(BaseModel):
    """A campaign's cells and how they are pooled."""

    campaign_id: int
    context_attributes: list[str] | None
    max_cells: int = Field(description="the cap in force (the campaign's, else the setting)")
    prior_strength: float | None = Field(
        None, description="pseudo-impressions of campaign-level evidence each cell is "
        "pooled with (empirical Bayes; null until cells are built)",
    )
    cells: list[CellPublic]


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
    traffic_floor: float | None = Field(
        None, description="this campaign's candidate traffic floor; null: the setting"
    )
    traffic_cap: float | None = Field(
        None, description="this campaign's candidate traffic cap; null: the setting"
    )
    min_exploration: float | None = Field(
        None, description="this campaign's exploration share; null: the setting"
    )
    context_attributes: list[str] | None = Field(
        None, description="request-context attributes it allocates on; null: not contextual"
    )
    max_cells: int | None = Field(None, description="its cap on cells; null: the setting")


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
    prob_best: float | None = Field(
        None,
        description="P(this variant's rate is the highest) among the campaign's active "
        "variants (Monte Carlo, fixed seed); null for variants not served",
    )
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
            ctr=ctr(clicks, n),
            conversion_rate=conversion_rate(conversions, n),
            reward=reward,
            posterior_mean=float(posterior_mean(s, n)),
            ci95_low=float(lo),
            ci95_high=float(hi),
            guardrail_report=variant.guardrail_report or {},
        )


class ControlsPublic(BaseModel):
    """The traffic controls a campaign is served with (its own, else the settings')."""

    floor: float = Field(description="least share a candidate version's variants get together")
    cap: float = Field(description="most share a candidate version's variants get together")
    min_exploration: float = Field(description="share spread evenly over live variants")


class ControlsUpdate(BaseModel):
    """New traffic controls for a campaign; a field left out keeps its value."""

    model_config = ConfigDict(extra="forbid")

    floor: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)
    cap: float | None = Field(None, gt=0, le=1, allow_inf_nan=False)
    min_exploration: float | None = Field(None, ge=0, lt=1, allow_inf_nan=False)
    reset: bool = Field(False, description="clear all three first (the settings apply)")


class CampaignDetail(CampaignPublic):
    """A campaign with its served traffic controls, variants and their statistics."""

    controls: ControlsPublic
    variants: list[VariantPublic]

    @classmethod
    def of(
        cls,
        campaign: Campaign,
        rows: list[tuple[Variant, ArmStats | None]],
        controls: TrafficControls,
    ) -> CampaignDetail:
        """The campaign and its variants, with each active variant's probability of being
        best among the active ones."""
        base = CampaignPublic.model_validate(campaign).model_dump()
        variants = [VariantPublic.of(v, s, campaign.reward) for v, s in rows]
        active = [v for v in variants if v.status == VariantStatus.ACTIVE]
        if active:
            success = "clicks" if campaign.reward == "click" else "conversions"
            p = prob_best(
                [min(getattr(v, success), v.impressions) for v in active],
                [v.impressions for v in active],
            )
            for v, pb in zip(active, p, strict=True):
                v.prob_best = float(pb)
        return cls(
            **base, controls=ControlsPublic(**controls.as_dict()), variants=variants
        )


class SrmArmPublic(BaseModel):
    """One arm of the sample-ratio-mismatch test."""

    variant_id: int
    observed: int
    expected: float


class SrmPublic(BaseModel):
    """The sample-ratio-mismatch test of a campaign's impressions."""

    campaign_id: int
    chi2: float
    df: int
    p_value: float
    ready: bool = Field(description="every arm expects at least 5 impressions")
    flagged: bool = Field(description="p < 0.001 once ready: the split is broken")
    arms: list[SrmArmPublic]


class AuditPublic(BaseModel):
    """One audit-log row."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


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


#: A context value; strings are bounded so that a context stays small (at most 32 of them).
ContextValue = Annotated[str, StringConstraints(max_length=256)] | int | float | bool | None


class AllocateRequest(BaseModel):
    """Which variant should this impression of ``campaign_id`` get?"""

    model_config = ConfigDict(extra="forbid")

    campaign_id: Id
    context: dict[Annotated[str, StringConstraints(max_length=64)], ContextValue] | None = Field(
        None,
        max_length=32,
        description="Request context: a contextual campaign allocates per cell of the "
        "values of its context attributes; other keys are ignored.",
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
    cell: str | None = Field(
        None, description="the context cell it was allocated in; null: the campaign level"
    )


class EventRequest(BaseModel):
    """A click or a conversion of an impression, proven by its token.

    One impression counts at most one click and one conversion: later ones (other
    ``event_id`` on the same token) are stored with ``count_status = 'repeat'`` and not
    counted.
    """

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
    value: float | None = Field(
        None,
        ge=0,
        allow_inf_nan=False,
        description="conversions only: finite, >= 0 and at most ADGEN_MAX_CONVERSION_VALUE "
        "(default 1e9; 422 above it)",
    )

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


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI declarations of some of the error statuses (``ERROR_RESPONSES``)."""
    return {c: ERROR_RESPONSES[c] for c in codes}
