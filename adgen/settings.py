"""The one settings object: every ``ADGEN_*`` environment variable, validated at start-up.

Unset means the embedded default (SQLite under ``./var/``, the bundled broker and model).
Nothing else under ``adgen/`` reads ``os.environ``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adgen.errors import ConfigError
from adgen.events import MAX_CONVERSION_VALUE
from adgen.vocabulary import BudgetRule, Trainer

EMBEDDED_ADMIN_TOKEN = "adgen-embedded-admin"
EMBEDDED_TOKEN_SECRET = "adgen-embedded-secret"
#: Shortest admin token / token secret accepted outside the embedded mode.
MIN_SECRET_LENGTH = 32


class Settings(BaseSettings):
    """adgen's configuration; field ``x`` is read from ``ADGEN_X``."""

    model_config = SettingsConfigDict(env_prefix="ADGEN_", extra="ignore")

    # --- storage -----------------------------------------------------------------------
    var_dir: Path = Field(
        Path("var"), description="Where embedded state lives (SQLite, adapters, charts)."
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; unset means SQLite at VAR_DIR/adgen.db."
    )
    cache_dir: Path = Field(
        Path.home() / ".cache" / "adgen",
        description="Converted model weights (safetensors) are cached here once.",
    )
    artifact_store: Literal["database", "s3"] = Field(
        "database",
        description="Where adapters and reward models are stored (content-addressed, cached "
        "under VAR_DIR/artifacts): 'database' (the artifacts table) or 's3' (an S3-compatible "
        "bucket; needs ADGEN_S3_BUCKET and pip install 'adgen[s3]').",
    )
    s3_bucket: str | None = Field(
        None, min_length=1, description="The bucket of ADGEN_ARTIFACT_STORE=s3."
    )
    s3_prefix: str = Field(
        "adgen/artifacts/", description="Key prefix of artifacts in the bucket: <prefix><sha256>."
    )
    s3_endpoint_url: str | None = Field(
        None,
        min_length=1,
        description="S3 API endpoint of MinIO, Ceph, R2, ...; unset means AWS. Credentials "
        "and region come from the standard AWS chain (AWS_* variables, ~/.aws, instance role).",
    )

    # --- event bus ---------------------------------------------------------------------
    kafka_bootstrap: str | None = Field(
        None, description="host:port list of the Kafka cluster; unset means the embedded broker."
    )
    events_topic: str = "adgen.events"
    topic_partitions: int = Field(4, ge=1)
    consumer_group: str = "adgen-ingest"
    ingest_batch_size: int = Field(5000, ge=1)
    ingest_poll_timeout_ms: int = Field(500, ge=1)
    ingest_max_poll_interval_ms: int = Field(
        300_000, ge=1000, description="Also sets the rebalance timeout of the group join."
    )
    ingest_session_timeout_ms: int = Field(
        10_000,
        ge=1000,
        description="Group session timeout; the embedded broker holds a join for about half of it.",
    )
    ingest_retry_initial_s: float = Field(0.2, gt=0, description="First wait after a DB error.")
    ingest_retry_max_s: float = Field(10.0, gt=0, description="Longest wait between DB retries.")

    # --- API and tokens ----------------------------------------------------------------
    admin_token: SecretStr | None = None
    token_secret: SecretStr | None = None
    token_ttl_s: int = Field(86_400, ge=1, description="Lifetime of an impression's click token.")
    api_host: str = "127.0.0.1"
    api_port: int = 8000

    # --- allocation --------------------------------------------------------------------
    refresh_interval_s: float = Field(1.0, gt=0, description="How often posteriors reload.")
    min_exploration: float = Field(
        0.0, ge=0, lt=1, description="Traffic share floor, spread over arms."
    )
    candidate_traffic_cap: float = Field(
        0.2, gt=0, le=1, description="Most traffic a candidate version's variants get together."
    )
    candidate_traffic_floor: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Least traffic a candidate version's variants get together until the gate "
        "decides (at most the cap), and the incumbent's texts of the same cycle (what the gate "
        "compares them with) too, spread evenly over each side's texts: the bandit alone would "
        "starve both beside the proven texts, and the gate would see too little of them.",
    )
    discount_half_life_s: float | None = Field(
        None, gt=0, description="Half-life for discounting old evidence; unset keeps all."
    )
    propensity_samples: int = Field(2000, ge=100)
    posterior_max_age_s: float = Field(
        30.0, gt=0, description="/readyz reports degraded when posteriors are older than this."
    )

    # --- generator ---------------------------------------------------------------------
    base_model: str | None = Field(
        None, description="Local causal-LM folder or cached HF model; unset = bundled SmolLM2."
    )
    base_model_zh: str | None = Field(
        None, description="Base model for Chinese; unset = Qwen2.5-Coder-0.5B when installed."
    )
    device: str = Field("auto", description="'auto', 'cpu' or a torch device such as 'cuda:0'.")
    gen_temperature: float = Field(0.9, gt=0)
    gen_top_p: float = Field(0.95, gt=0, le=1)
    gen_max_new_tokens: int = Field(40, ge=4)
    gen_max_attempts: int = Field(4, ge=1)
    gen_oversample: float = Field(
        2.0, ge=1, description="Candidates sampled per attempt for each variant still missing."
    )
    gen_max_batch: int = Field(32, ge=1, description="Most candidates sampled in one batch.")
    torch_threads: int | None = Field(
        None,
        ge=1,
        description="CPU threads torch uses in the closed loop (adgen demo, "
        "bench/closed_loop.py); unset = torch's default, one per core. On cores other work "
        "shares, 1 avoids threads waiting on each other: 16 samples took 44 s on 1 thread "
        "against 358 s on 2 on a loaded 2-core machine.",
    )
    gen_seed: int = 0
    diversity_threshold: float = Field(0.8, gt=0, le=1, description="Max similarity allowed.")
    compliance_terms_file: Path | None = Field(
        None, description="Extra forbidden terms (JSON {locale: [terms]}) added to the built-ins."
    )

    guard_invented_names: bool = Field(
        True,
        description="Refuse English copy that names a product or brand the brief does not.",
    )

    # --- training ----------------------------------------------------------------------
    trainer: Trainer = Field(
        Trainer.DPO, description="Training loss: dpo (default), kto, grpo or rloo."
    )
    train_locales: list[Literal["en", "zh"]] = Field(
        default_factory=lambda: list[Literal["en", "zh"]](["en", "zh"]),
        description="Locales whose lineages the scheduled job trains (JSON list in the env).",
    )
    train_policy: bool = Field(
        True,
        description="false = no weight updates: each cycle still fits the reward model and "
        "lets the serving version write best-of-N variants ranked by it, but trains no "
        "adapter and makes no new version (the no-retraining arm of bench/closed_loop.py).",
    )
    train_steps: int = Field(40, ge=1, description="Optimizer steps of a run (max_steps).")
    train_batch_size: int = Field(
        4, ge=2, description="Examples per step; for grpo/rloo, completions per step."
    )
    learning_rate: float = Field(
        1e-3,
        gt=0,
        lt=1,
        description="AdamW learning rate; one that moves a LoRA adapter in tens of CPU steps "
        "(TRL's default 1e-6 does nothing in that budget).",
    )
    dpo_beta: float = Field(0.1, gt=0, description="DPO/KTO β (strength of the reference).")
    dpo_sft_weight: float = Field(
        1.0,
        ge=0,
        description="Weight of an NLL loss on the chosen texts added to DPO's (RPO). Without "
        "it, 40 DPO steps left 23% of the policy's samples passing the guardrails (base 49%); "
        "with 1.0, 94% at the same lift in true CTR.",
    )
    lora_r: int = Field(8, ge=1, description="LoRA rank of a new adapter.")
    lora_alpha: int = Field(16, ge=1, description="LoRA alpha of a new adapter.")
    lora_targets: list[str] = Field(
        default_factory=lambda: [
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "gate_proj",
            "up_proj",
            "down_proj",
        ],
        description="LoRA on every linear layer: on q/v alone 20 DPO steps barely moved the "
        "true CTR of what the model writes (bench/closed_loop.py).",
    )
    max_length: int = Field(
        384, ge=16, description="Prompt + completion tokens in training; longer ones are dropped."
    )
    pair_threshold: float = Field(0.9, ge=0.5, lt=1)
    min_pairs: int = Field(8, ge=1)
    reward_source: Literal["live", "historical", "both"] = "live"
    reward_min_arms: int = Field(
        20, ge=4, description="Arms with impressions needed before a reward model is trained."
    )
    reward_holdout: float = Field(
        0.25, gt=0, lt=1, description="Share of arms (or campaigns/tests) held out to evaluate it."
    )
    reward_embeddings: Literal["auto", "minilm", "none"] = Field(
        "auto", description="Sentence embeddings as reward-model features; auto = when installed."
    )
    reward_alpha: float = Field(30.0, gt=0, description="Ridge penalty of the reward model.")
    train_interval_s: float | None = Field(3600.0, gt=0)
    train_cron: str | None = Field(None, description="Crontab expression; overrides the interval.")
    train_misfire_grace_s: int = Field(
        600, ge=1, description="A scheduled training run late by more than this is skipped."
    )
    train_seed: int = Field(0, description="Seeds LoRA init, data order and sampling.")
    heldout_share: float = Field(
        0.25, ge=0, lt=1, description="Share of each campaign's variants held out for evaluation."
    )
    rm_samples: int = Field(
        32, ge=0, description="Fresh samples per campaign ranked by the reward model; 0 = none."
    )
    rm_pairs_k: int = Field(
        6,
        ge=1,
        description="Reward-model pairs: the k best passing samples over the k worst passing "
        "and the k worst failing ones (up to 2k² pairs per campaign).",
    )
    rollout_variants: int = Field(
        4, ge=1, description="Variants of a new candidate version served per active campaign."
    )
    rollout_best_of: int = Field(
        8, ge=1, description="Variants it writes per campaign; the reward model keeps the best."
    )
    rl_num_generations: int = Field(4, ge=2, description="GRPO/RLOO completions per prompt.")
    rl_max_completion_length: int = Field(32, ge=4, description="GRPO/RLOO new tokens.")

    # --- rollout gate ------------------------------------------------------------------
    promote_prob: float = Field(0.95, gt=0.5, lt=1)
    rollback_prob: float = Field(0.05, gt=0, lt=0.5)
    gate_loss_tolerance: float = Field(
        0.01,
        ge=0,
        lt=1,
        description="The gate also decides once a choice's expected loss, relative to the "
        "incumbent's rate, is at most this: a near tie is settled when settling it either way "
        "costs little (keeping the incumbent first); 0 = decide by P(better) alone.",
    )
    gate_max_impressions: int = Field(
        20_000,
        ge=1,
        description="A candidate still undecided at this many impressions is settled by "
        "gate_budget_rule.",
    )
    gate_budget_rule: BudgetRule = Field(
        BudgetRule.KEEP_INCUMBENT,
        description="What the gate does at gate_max_impressions: keep_incumbent rolls the "
        "candidate back (it was not shown better; the next cycle trains from the incumbent); "
        "lower_loss takes the choice with the smaller expected loss, which is what the posterior "
        "means favour (for short experiments such as the demo's one-round budget).",
    )
    gate_interval_s: float = Field(
        300.0,
        ge=0,
        description="How often the gate evaluates open candidates between training jobs, so "
        "that a losing candidate stops taking traffic within minutes; 0 = only at the start "
        "of each training job.",
    )

    # --- what counts (ingest and API) ---------------------------------------------------
    max_conversion_value: float = Field(
        MAX_CONVERSION_VALUE,
        gt=0,
        allow_inf_nan=False,
        description="Largest conversion value accepted (API answers 422, ingest dead-letters).",
    )
    ingest_hold_grace_s: float = Field(
        900.0,
        gt=0,
        description="How long a click or conversion whose impression ingest has not seen is "
        "held (stored, not counted) before it is dead-lettered as an orphan.",
    )

    # --- API input limits ----------------------------------------------------------------
    api_max_body_bytes: int = Field(
        65_536, ge=1024, description="Largest request body the API reads (413 above it)."
    )

    # --- contextual allocation (cells) ---------------------------------------------------
    max_cells: int = Field(
        20, ge=1, le=1000,
        description="Most cells a contextual campaign keeps when it sets no cap of its own; "
        "requests beyond them are served at the campaign level.",
    )
    cell_prior_min: float = Field(
        5.0, gt=0,
        description="Least strength (pseudo-impressions) of the campaign-level prior a "
        "cell's posterior is pooled towards.",
    )
    cell_prior_max: float = Field(
        1000.0, gt=0,
        description="Greatest strength (pseudo-impressions) of the campaign-level prior; "
        "cells that agree with the campaign are pooled this strongly.",
    )

    # --- event delivery: the API's spool -----------------------------------------------
    spool_dir: Path | None = Field(
        None, description="Write-ahead spool of unacknowledged events; unset = VAR_DIR/spool."
    )
    spool_max_bytes: int = Field(
        256 * 1024 * 1024,
        ge=64 * 1024,
        description="Bound of the spool on disk; once reached, /v1/events and /v1/allocate "
        "answer 503 until the broker takes events again.",
    )
    spool_fsync_batch: int = Field(
        256, ge=1, description="Spooled events written between two fsyncs (and at each drain)."
    )
    delivery_timeout_s: float = Field(
        10.0,
        gt=0,
        description="An event the broker has not acknowledged after this long is spooled and "
        "the producer rebuilt.",
    )
    unacked_degraded_s: float = Field(
        3.0, gt=0, description="/readyz says degraded while an event waits longer than this."
    )

    # --- ingest health -----------------------------------------------------------------
    ingest_stall_s: float = Field(
        60.0,
        gt=0,
        description="Ingest holding lag but storing nothing for this long reports itself "
        "unhealthy (heartbeat stops) and rejoins the group.",
    )
    ingest_metrics_port: int | None = Field(
        None, ge=0, le=65535, description="Port of ingest's own /metrics; unset = none."
    )

    # --- reward-model ablation ---------------------------------------------------------
    reward_handcrafted: bool = Field(
        True,
        description="Use the reward model's hand-made features (length, digits, "
        "call-to-action phrases, ...); false keeps TF-IDF, brief and embeddings only, to "
        "measure how much of a lift those named features carry.",
    )

    @field_validator("database_url")
    @classmethod
    def _url_not_blank(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError(
                "ADGEN_DATABASE_URL is empty; unset it for the embedded SQLite default"
            )
        return v

    @model_validator(mode="after")
    def _s3_has_bucket(self) -> Settings:
        if self.artifact_store == "s3" and self.s3_bucket is None:
            raise ValueError(
                "ADGEN_ARTIFACT_STORE=s3 needs ADGEN_S3_BUCKET (the bucket artifacts are "
                "stored in); or set ADGEN_ARTIFACT_STORE=database"
            )
        return self

    @model_validator(mode="after")
    def _candidate_traffic_ordered(self) -> Settings:
        if self.candidate_traffic_floor > self.candidate_traffic_cap:
            raise ValueError(
                f"ADGEN_CANDIDATE_TRAFFIC_FLOOR ({self.candidate_traffic_floor}) must not exceed "
                f"ADGEN_CANDIDATE_TRAFFIC_CAP ({self.candidate_traffic_cap})"
            )
        return self

    @model_validator(mode="after")
    def _cell_prior_ordered(self) -> Settings:
        if self.cell_prior_min > self.cell_prior_max:
            raise ValueError(
                f"ADGEN_CELL_PRIOR_MIN ({self.cell_prior_min}) must not exceed "
                f"ADGEN_CELL_PRIOR_MAX ({self.cell_prior_max})"
            )
        return self

    @model_validator(mode="after")
    def _probabilities_ordered(self) -> Settings:
        if self.rollback_prob >= self.promote_prob:
            raise ValueError(
                f"ADGEN_ROLLBACK_PROB ({self.rollback_prob}) must be below "
                f"ADGEN_PROMOTE_PROB ({self.promote_prob})"
            )
        return self

    # --- derived -----------------------------------------------------------------------
    @property
    def db_url(self) -> str:
        """The database URL in force (the SQLite default when unset)."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.var_dir / 'adgen.db').as_posix()}"

    @property
    def embedded(self) -> bool:
        """True only on the one-machine defaults: SQLite AND the bundled broker."""
        return self.db_url.startswith("sqlite") and self.kafka_bootstrap is None

    @property
    def spool_path(self) -> Path:
        """The API's write-ahead spool folder in force."""
        return self.spool_dir if self.spool_dir is not None else self.var_dir / "spool"

    @property
    def models_dir(self) -> Path:
        """Where training writes an adapter before storing it as an artifact (and where
        version records made before artifacts keep their adapter folders)."""
        return self.var_dir / "models"

    def admin_token_value(self) -> str:
        """The admin bearer token; the embedded default only when running embedded."""
        return self._secret(self.admin_token, EMBEDDED_ADMIN_TOKEN, "ADGEN_ADMIN_TOKEN")

    def token_secret_value(self) -> bytes:
        """The HMAC key for impression tokens; the embedded default only when embedded."""
        return self._secret(self.token_secret, EMBEDDED_TOKEN_SECRET, "ADGEN_TOKEN_SECRET").encode()

    def _secret(self, value: SecretStr | None, default: str, name: str) -> str:
        secret = value.get_secret_value() if value is not None else ""
        if self.embedded:
            return secret or default
        if not secret:
            raise ConfigError(
                f"{name} is not set: outside the embedded demo (SQLite and the bundled broker) "
                f"adgen refuses to run with a default secret; set {name} to a long random value "
                f"(at least {MIN_SECRET_LENGTH} characters)"
            )
        if len(secret) < MIN_SECRET_LENGTH:
            raise ConfigError(
                f"{name} is {len(secret)} characters long: outside the embedded demo (SQLite and "
                f"the bundled broker) it must be at least {MIN_SECRET_LENGTH} characters of "
                f"random text"
            )
        return secret


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read once from the environment (tests build their own ``Settings``)."""
    return Settings()
