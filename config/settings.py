"""Settings read once from the environment (and ``.env``) at an entry point.

Library code never reads the environment: entry points call :func:`load_settings` and
pass the result (or the parts of it a component needs) down. A wrong value fails here,
at start, as a :class:`ConfigError` naming the variable and the rule it broke; secrets
are ``SecretStr`` and no message built here ever contains one.
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from typing import Any, Literal, Self, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.phone import country_calling_code, normalize_e164
from config.redis_address import SENTINEL_SCHEME, SentinelGroup, parse_sentinel_url

DEFAULT_BASE_URL = "https://cname.betazen.vendor.waapi.easycrm4u.com/api/v1/external"
DEFAULT_SCOPES = ("messages.send", "messages.read", "contacts.write", "contacts.read")

Channel = Literal["cloud", "qr"]
AmbiguousPolicy = Literal["resend", "hold"]


class ConfigError(ValueError):
    """A setting is missing or wrong. ``str()`` lists ``VARIABLE: rule`` lines, no values."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ApiKeyConfig(_Frozen):
    """One WAAPI API key and what it is bound to (an entry of ``WAAPI_KEYS``)."""

    name: str = Field(default="default", min_length=1, max_length=64)
    key: str = Field(min_length=7, pattern=r"^waapi_\S+$")
    secret: SecretStr | None = None
    numbers: tuple[str, ...] = Field(min_length=1)
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    per_minute: int | None = Field(default=None, gt=0)
    per_hour: int | None = Field(default=None, gt=0)
    webhook_verify_token: SecretStr | None = None
    channels: tuple[Channel, ...] = Field(default=("cloud",), min_length=1)
    # Meta's phone_number_id of each number (what a webhook's metadata names it by); a
    # number without one is recognised by its display number.
    phone_number_ids: dict[str, str] = {}

    @field_validator("numbers", "channels", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part for part in (p.strip() for p in value.split(",")) if part)
        return value

    @field_validator("numbers")
    @classmethod
    def _e164_numbers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        normalized: list[str] = []
        for number in value:
            try:
                normalized.append(normalize_e164(number))
            except ValueError as exc:  # a configured number is not personal data: name it
                raise ValueError(f"{number!r} {exc}") from None
        if len(set(normalized)) != len(normalized):
            raise ValueError("a number is listed twice")
        return tuple(normalized)

    @model_validator(mode="after")
    def _ids_of_own_numbers(self) -> Self:
        ids: dict[str, str] = {}
        for number, number_id in self.phone_number_ids.items():
            try:
                e164 = normalize_e164(number)
            except ValueError as exc:
                raise ValueError(f"phone_number_ids: {number!r} {exc}") from None
            if e164 not in self.numbers:
                raise ValueError(f"phone_number_ids: {e164} is not one of this key's numbers")
            if not number_id.isdigit() or len(number_id) > 32:
                raise ValueError(f"phone_number_ids: {e164}: must be Meta's numeric id")
            ids[e164] = number_id
        object.__setattr__(self, "phone_number_ids", ids)
        return self

    @property
    def contacts_number(self) -> str:
        """The number whose queue carries this key's contact writes (its first): contact
        writes are jobs like sends, queued and limited per number, but they use no
        number of their own."""
        return self.numbers[0]

    @field_validator("secret")
    @classmethod
    def _secret_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("secr_"):
            raise ValueError("an API secret starts with 'secr_'")
        return value


TokenScope = Literal["send", "read", "campaigns", "metrics", "admin"]


class ProducerToken(_Frozen):
    """A bearer token of the HTTP ingress, held only as its SHA-256 (hex)."""

    name: str = Field(min_length=1, max_length=64)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    scopes: tuple[TokenScope, ...] = Field(min_length=1)
    numbers: tuple[str, ...] | None = None  # None: every number

    @model_validator(mode="before")
    @classmethod
    def _hash_plain_token(cls, data: Any) -> Any:
        if isinstance(data, dict) and "token" in data:
            data = dict(data)
            token = data.pop("token")
            if not isinstance(token, str) or len(token) < 16:
                raise ValueError("token must be a string of at least 16 characters")
            if "sha256" in data:
                raise ValueError("give token or sha256, not both")
            data["sha256"] = hashlib.sha256(token.encode()).hexdigest()
        return data

    @field_validator("numbers")
    @classmethod
    def _e164(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if value is None else tuple(normalize_e164(n) for n in value)


class Portfolio(_Frozen):
    """A Meta business portfolio: the numbers that share one messaging limit, and its
    tier (unique recipients of business-initiated messages in a moving 24 hours; Meta's
    tiers are 250, 2000, 10000, 100000 and unlimited)."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[^:\s]+$")
    tier: int | Literal["unlimited"]
    numbers: tuple[str, ...] = Field(min_length=1)

    @field_validator("tier")
    @classmethod
    def _positive(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError('tier must be a positive number of recipients or "unlimited"')
        return value

    @field_validator("numbers")
    @classmethod
    def _e164(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(normalize_e164(n) for n in value)


class Settings(BaseSettings):
    """Everything the dispatcher reads from its environment, parsed and checked once."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    waapi_base_url: str = Field(default=DEFAULT_BASE_URL, pattern=r"^https?://\S+$")

    # The simple case: one key, three variables.
    waapi_api_key: str | None = None
    waapi_api_secret: SecretStr | None = None
    waapi_from_numbers: str | None = None
    waapi_webhook_verify_token: SecretStr | None = None
    waapi_per_minute: int | None = Field(default=None, gt=0)
    waapi_per_hour: int | None = Field(default=None, gt=0)
    waapi_scopes: str | None = None
    waapi_channels: str | None = None
    # Several keys: a JSON list of ApiKeyConfig objects.
    waapi_keys: str | None = None

    # One server (redis://, rediss://, unix://) or a Sentinel group (sentinel://...,
    # config/redis_address.py); the Sentinels' own password apart, as a secret.
    redis_url: str = Field(
        default="redis://localhost:6379/0", pattern=r"^(redis|rediss|unix|sentinel)://"
    )
    redis_sentinel_password: SecretStr | None = None
    # A write the dispatcher stands on (an acknowledged enqueue, a claim about to be sent)
    # waits until replicas have it (Redis WAIT): a failover then cannot lose it. With
    # Sentinel, every replica the Sentinels see in sync, and never fewer than this; unset:
    # 1 with a Sentinel group, 0 with one server. A shortfall within the timeout is a
    # StoreUnavailable (HTTP 503), never an acknowledgement (dispatcher/ledger/replicas.py).
    redis_confirm_replicas: int | None = Field(default=None, ge=0, le=16)
    redis_confirm_timeout_ms: int = Field(default=1000, ge=10, le=60_000)

    waapi_connect_timeout_s: float = Field(default=3.05, gt=0, le=60)
    waapi_read_timeout_s: float = Field(default=20.0, gt=0, le=300)

    # Retries are budgeted in time (a job's expiresAt, or its lane's maximum age below);
    # the attempt cap only stops a job that fails for ever (at the backoff's cap of
    # RETRY_MAX_DELAY_S, 50 attempts take hours; a 10-minute outage uses a handful,
    # since the adaptive throttle holds jobs back without an attempt).
    retry_max_attempts: int = Field(default=50, ge=1, le=1000)
    # Backoff between one job's attempts (full jitter, doubling from the base to the cap).
    # A gateway in trouble is paced by the adaptive throttle (THROTTLE_*) for every job at
    # once, so one job's backoff only spreads retries: long caps would only leave a few
    # unlucky jobs waiting minutes after a flap. Retry-After wins when longer.
    retry_base_delay_s: float = Field(default=0.1, gt=0, le=3600)
    retry_max_delay_s: float = Field(default=2.0, gt=0, le=86400)
    # Meta's per-user marketing cap (131049) counts marketing from every business and asks
    # for increasing intervals: the n-th time a recipient is capped, its job waits the
    # n-th of these (the last repeats); the count is kept per recipient until it has been
    # quiet for twice the longest interval. JSON list of seconds.
    marketing_cap_backoff_s: tuple[float, ...] = Field(
        default=(3600.0, 4 * 3600.0, 24 * 3600.0), min_length=1
    )

    # What to do when a send may or may not have reached the gateway (read timeout,
    # reset after the request went out, a worker killed mid-call): send again (a
    # duplicate is possible) or hold the job as `unknown` for a person to decide.
    ambiguous_transactional: AmbiguousPolicy = "resend"
    ambiguous_bulk: AmbiguousPolicy = "hold"

    job_lease_s: float = Field(default=60.0, ge=1, le=3600)
    # A job without expiresAt expires this long after it was queued (0: never), per lane:
    # it becomes `expired` rather than being sent late.
    max_age_transactional_s: float = Field(default=86_400.0, ge=0)
    max_age_bulk_s: float = Field(default=0.0, ge=0)
    # An ambiguous bulk send held as `unknown` is resolved by the gateway's webhook (a
    # status for a wamid nobody owns, same number and recipient); when none came within
    # this long, it was not sent and goes again. 0: unknown jobs stay unknown.
    unknown_recheck_s: float = Field(default=300.0, ge=0, le=86_400)
    job_retention_s: int = Field(default=7 * 86400, ge=60)
    idempotency_window_s: int = Field(default=86400, ge=1)
    events_maxlen: int = Field(default=100_000, ge=100)

    # Celery threads per worker process. They only receive: every send is made on the
    # process's send loop. Each delivery Celery makes costs far more CPU than a drain's
    # take (a BRPOP over every queue, bookkeeping, a thread hand-off), and Celery stops
    # delivering while its threads are busy, so few threads leave a backlog to the
    # drains: at 1,500 msg/s, 8 threads used about half the worker CPU per message that
    # 32 did (docs/performance.md). Four are never held by a drain (engine/loop.py).
    worker_concurrency: int = Field(default=8, ge=1, le=512)
    # Workers heartbeat this often; one silent for WORKER_DEAD_AFTER_S is dead: the jobs
    # it was sending follow the lanes' ambiguity policy and the messages it held go back
    # to their queues at once (recovery by liveness, not by lease or visibility timeout).
    worker_heartbeat_s: float = Field(default=2.0, gt=0, le=60)
    worker_dead_after_s: float = Field(default=15.0, ge=3, le=600)
    # Beat on several hosts: one leads (sends the schedule), the others stand by; a
    # leader silent this long has died, and a standby takes over (tasks/beat.py).
    beat_leader_ttl_s: float = Field(default=5.0, ge=2, le=300)
    # After a transactional job, the send loop sends up to this many more (taken
    # and claimed atomically), from the same queue and then from the other transactional
    # queues its process serves, for at most WORKER_DRAIN_S seconds, sparing Celery's
    # per-message delivery. 0 turns it off.
    worker_drain_jobs: int = Field(default=100, ge=0, le=10_000)
    worker_drain_s: float = Field(default=2.0, gt=0, le=60)
    # Every send of a worker process is made on its event loop (dispatcher/engine/loop.py),
    # at most this many at once (campaign batches 3/4 of them at most). Sends in flight
    # are what a SIGKILLed worker leaves ambiguous; 256 lets a campaign reach the
    # machine's rate at 50 ms of gateway latency (docs/performance.md).
    worker_in_flight: int = Field(default=256, ge=1, le=4096)
    broker_visibility_timeout_s: int = Field(default=900, ge=10)

    # Global rate limits (held in Redis across every worker).
    # A key's per-minute/per-hour quotas come from its entry (or WAAPI_PER_MINUTE/HOUR).
    quota_headroom: float = Field(default=0.01, ge=0, lt=1)
    number_per_second: float = Field(default=80.0, gt=0, le=10_000)
    # Per-number throughput overrides, JSON: {"+15550000001": 200}.
    number_limits: str | None = None
    # What Meta charges per billable message, for cost estimates, JSON by pricing
    # category and the recipient's country calling code ("*" for any other):
    # {"marketing": {"+91": 0.0107, "*": 0.025}, "utility": {"*": 0.004}}. Unset: no
    # estimates, billable messages are still counted.
    prices: str | None = None
    # Meta's messaging limit: which numbers share a business portfolio and its tier, JSON:
    # [{"name": "acme", "tier": 2000, "numbers": ["+1555..."]}]; or MESSAGING_TIER for one
    # portfolio of every number. A number in no portfolio has no messaging limit here.
    portfolios: str | None = None
    messaging_tier: int | Literal["unlimited"] | None = None
    # Inbound traffic counts against Meta's per-number throughput: keep this share free.
    number_headroom: float = Field(default=0.1, ge=0, lt=1)
    # Pacing per (number, recipient): one message per interval after a small burst.
    pair_interval_s: float = Field(default=6.0, ge=0, le=86_400)  # 0 turns it off
    pair_burst: int = Field(default=3, ge=1, le=1000)
    # Share of every key and number limit that bulk jobs may not use.
    transactional_reserve: float = Field(default=0.1, ge=0, lt=1)
    # A wait up to this long is slept in the worker; a longer one parks the job.
    limiter_max_sleep_s: float = Field(default=2.0, ge=0, le=60)
    # Jobs of a paused number (Meta 131048) look again this often until resumed.
    pause_recheck_s: float = Field(default=60.0, ge=1, le=86_400)
    # The adaptive throttle (per API key and per sending number, across every worker):
    # over the last THROTTLE_WINDOW_S, calls beyond THROTTLE_ACCEPT_FACTOR times those the
    # gateway took (answered other than 5xx/429 or a lost connection) are held back, not
    # an attempt, once THROTTLE_MIN_CALLS were made; a gateway that takes nothing is
    # probed THROTTLE_PROBE_PER_S. A factor of 0 turns it off.
    throttle_accept_factor: float = Field(default=2.0, ge=0, le=100)
    throttle_window_s: float = Field(default=10.0, ge=2, le=600)
    throttle_min_calls: int = Field(default=20, ge=1, le=100_000)
    throttle_probe_per_s: float = Field(default=1.0, gt=0, le=1000)

    # Error reports (Sentry); no DSN: off. Phone numbers are masked in reports unless
    # SENTRY_KEEP_NUMBERS is set; secrets and message bodies are always scrubbed.
    sentry_dsn: SecretStr | None = None
    sentry_environment: str = Field(default="production", min_length=1, max_length=64)
    sentry_release: str | None = Field(default=None, max_length=200)
    sentry_keep_numbers: bool = False

    # Log lines: JSON unless stderr is a terminal (auto), or always json / text.
    log_format: Literal["auto", "json", "text"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # The HTTP ingress and the webhook receiver.
    # Producer tokens, JSON: [{"name", "token" | "sha256", "scopes", "numbers"?}].
    dispatch_tokens: str | None = None
    http_max_body_bytes: int = Field(default=1_048_576, ge=1024)
    bulk_max_jobs: int = Field(default=1000, ge=1, le=100_000)
    webhook_dedupe_s: int = Field(default=86_400, ge=60)
    worker_seen_s: float = Field(default=30.0, ge=1)

    # Built by the validator below from either the simple variables or WAAPI_KEYS; private
    # so that no environment variable named KEYS can set it.
    _keys: tuple[ApiKeyConfig, ...] = PrivateAttr(default=())
    _tokens: tuple[ProducerToken, ...] = PrivateAttr(default=())
    _prices: dict[str, dict[str, float]] = PrivateAttr(default_factory=dict)
    _portfolios: tuple[Portfolio, ...] = PrivateAttr(default=())
    _sentinel: SentinelGroup | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _build_keys(self) -> Self:
        if self.retry_max_delay_s < self.retry_base_delay_s:
            raise ValueError("RETRY_MAX_DELAY_S: must be at least RETRY_BASE_DELAY_S")
        if not all(0 < s <= 30 * 86_400 for s in self.marketing_cap_backoff_s):
            raise ValueError("MARKETING_CAP_BACKOFF_S: each interval must be 0-2592000 s")
        if 0 < self.throttle_accept_factor < 1:
            raise ValueError("THROTTLE_ACCEPT_FACTOR: must be 0 (off) or at least 1")
        keys = _keys_from_json(self.waapi_keys) if self.waapi_keys else ()
        simple = self.waapi_api_key or self.waapi_api_secret or self.waapi_from_numbers
        if keys and simple:
            raise ValueError(
                "WAAPI_KEYS: set either WAAPI_KEYS or WAAPI_API_KEY/WAAPI_API_SECRET/"
                "WAAPI_FROM_NUMBERS, not both"
            )
        if simple:
            keys = (self._single_key(),)
        _check_numbers_unique(keys)
        self._check_number_limits()
        self._sentinel = self._sentinel_group()
        self._prices = _prices_from_json(self.prices) if self.prices else {}
        self._keys = keys
        self._portfolios = self._build_portfolios()
        self._tokens = _tokens_from_json(self.dispatch_tokens) if self.dispatch_tokens else ()
        return self

    @property
    def keys(self) -> tuple[ApiKeyConfig, ...]:
        """Every configured gateway key; empty means no credentials (sandbox mode)."""
        return self._keys

    def price_of(self, category: str, recipient: str) -> float | None:
        """PRICES' estimate for one billable message of ``category`` to ``recipient``."""
        by_country = self._prices.get(category)
        if not by_country:
            return None
        code = country_calling_code(recipient)
        return by_country.get(f"+{code}", by_country.get("*"))

    @property
    def messaging_portfolios(self) -> tuple[Portfolio, ...]:
        """Business portfolios with a messaging limit (PORTFOLIOS or MESSAGING_TIER)."""
        return self._portfolios

    def portfolio_of(self, number: str) -> Portfolio | None:
        """The portfolio whose messaging limit ``number`` shares, if one is configured."""
        return self.portfolio_by_number().get(number)

    def portfolio_by_number(self) -> dict[str, Portfolio]:
        """number -> the portfolio whose messaging limit it shares (a number is in one
        at most). A hot path keeps the table: each read of the settings' portfolios
        goes through pydantic's private attributes, which raise and catch an
        AttributeError (about 2 us)."""
        return {number: p for p in self._portfolios for number in p.numbers}

    def _build_portfolios(self) -> tuple[Portfolio, ...]:
        if self.portfolios and self.messaging_tier is not None:
            raise ValueError("PORTFOLIOS: set either PORTFOLIOS or MESSAGING_TIER, not both")
        if self.messaging_tier is not None:
            if isinstance(self.messaging_tier, int) and self.messaging_tier < 1:
                raise ValueError('MESSAGING_TIER: must be a positive number or "unlimited"')
            if not self.from_numbers:
                return ()
            only = Portfolio(name="portfolio", tier=self.messaging_tier, numbers=self.from_numbers)
            return (only,)
        if not self.portfolios:
            return ()
        found = _named_list_from_json(self.portfolios, "PORTFOLIOS", Portfolio)
        owner: dict[str, str] = {}
        for portfolio in found:
            for number in portfolio.numbers:
                if number not in self.from_numbers:
                    raise ValueError(
                        f"PORTFOLIOS: {portfolio.name}: {number} is not a number of any "
                        "configured key"
                    )
                if number in owner:
                    raise ValueError(
                        f"PORTFOLIOS: {number} is in both {owner[number]!r} and "
                        f"{portfolio.name!r}; a number belongs to one business portfolio"
                    )
                owner[number] = portfolio.name
        return found

    def number_by_phone_number_id(self) -> dict[str, str]:
        """Meta's phone_number_id -> our number (E.164), for the webhooks."""
        return {i: number for key in self.keys for number, i in key.phone_number_ids.items()}

    def _check_number_limits(self) -> None:
        if not self.number_limits:
            return
        data = _json_object(self.number_limits, "NUMBER_LIMITS", '{"+1555...": per_second}')
        for number, rate in data.items():
            try:
                normalize_e164(number)
            except ValueError as exc:
                raise ValueError(f"NUMBER_LIMITS: {number!r} {exc}") from None
            if not _is_number(rate) or rate <= 0:
                raise ValueError(f"NUMBER_LIMITS: {number}: must be a positive number")

    def _single_key(self) -> ApiKeyConfig:
        if not self.waapi_api_key:
            raise ValueError(
                "WAAPI_API_KEY: required when WAAPI_API_SECRET or WAAPI_FROM_NUMBERS is set"
            )
        if not self.waapi_from_numbers:
            raise ValueError(
                "WAAPI_FROM_NUMBERS: required with WAAPI_API_KEY "
                "(comma-separated E.164 numbers the key is bound to)"
            )
        fields: dict[str, Any] = {
            "key": self.waapi_api_key,
            "secret": self.waapi_api_secret,
            "numbers": self.waapi_from_numbers,
            "per_minute": self.waapi_per_minute,
            "per_hour": self.waapi_per_hour,
            "webhook_verify_token": self.waapi_webhook_verify_token,
        }
        if self.waapi_scopes:
            fields["scopes"] = tuple(s.strip() for s in self.waapi_scopes.split(",") if s.strip())
        if self.waapi_channels:
            fields["channels"] = self.waapi_channels
        try:
            return ApiKeyConfig(**fields)
        except ValidationError as exc:
            raise ValueError("; ".join(_problems(exc, _SIMPLE_KEY_VARS))) from None

    def secret_values(self) -> tuple[str, ...]:
        """Every secret this process knows in plain text (API secrets, webhook verify
        tokens, producer tokens as configured, the Sentry DSN): what scrubbers remove."""
        found: list[str] = []
        for key in self.keys:
            for secret in (key.secret, key.webhook_verify_token):
                if secret is not None:
                    found.append(secret.get_secret_value())
        for secret in (self.waapi_api_secret, self.waapi_webhook_verify_token, self.sentry_dsn):
            if secret is not None:
                found.append(secret.get_secret_value())
        if self.dispatch_tokens:
            entries = json.loads(self.dispatch_tokens)  # checked at start: a list of objects
            found.extend(e["token"] for e in entries if isinstance(e.get("token"), str))
        return tuple(found)

    @property
    def tokens(self) -> tuple[ProducerToken, ...]:
        """Producer tokens of the HTTP ingress (hashes only)."""
        return self._tokens

    @property
    def has_credentials(self) -> bool:
        """True when at least one gateway key is configured (else: sandbox mode)."""
        return bool(self.keys)

    @property
    def from_numbers(self) -> tuple[str, ...]:
        """Every sending number of every key, in configuration order, once each."""
        return tuple(dict.fromkeys(number for key in self.keys for number in key.numbers))

    @property
    def sentinel(self) -> SentinelGroup | None:
        """The Sentinel group ``REDIS_URL`` names, or None for one Redis server."""
        return self._sentinel

    def _sentinel_group(self) -> SentinelGroup | None:
        """``REDIS_URL`` parsed once, when it names a Sentinel group."""
        if not self.redis_url.startswith(SENTINEL_SCHEME):
            return None
        password = self.redis_sentinel_password
        try:
            return parse_sentinel_url(
                self.redis_url, password.get_secret_value() if password is not None else None
            )
        except ValueError as exc:
            raise ValueError(f"REDIS_URL: {exc}") from None

    @property
    def replicas_to_confirm(self) -> int:
        """How many replicas must have a write before it counts (REDIS_CONFIRM_REPLICAS)."""
        if self.redis_confirm_replicas is not None:
            return self.redis_confirm_replicas
        return 1 if self.sentinel is not None else 0

    @cached_property
    def number_rates(self) -> dict[str, float]:
        """Messages per second allowed for each configured number (before headroom)."""
        rates = {number: self.number_per_second for number in self.from_numbers}
        rates.update(_number_limits(self.number_limits))
        return rates

    @property
    def bulk_share(self) -> float:
        """The share of every rate and quota the bulk lane may use (the rest is kept for
        transactional jobs)."""
        return 1.0 - self.transactional_reserve

    def number_rate_per_s(self, number: str) -> float:
        """The messages per second ``number`` is allowed (NUMBER_LIMITS, else
        NUMBER_PER_SECOND), before headroom."""
        return self.number_rates.get(number, self.number_per_second)

    def usable_number_rate_per_s(self, number: str) -> float:
        """Messages per second the dispatcher sends from ``number``: its rate less
        ``NUMBER_HEADROOM`` (before any lane's share)."""
        return self.number_rate_per_s(number) * (1.0 - self.number_headroom)

    def usable_quota(self, quota: int) -> float:
        """How much of a key's quota (per minute or hour) the dispatcher spends: the quota
        less ``QUOTA_HEADROOM`` (before any lane's share)."""
        return quota * (1.0 - self.quota_headroom)

    def ambiguous_policy(self, lane: str) -> AmbiguousPolicy:
        """The configured policy for an ambiguous send in ``lane``."""
        return self.ambiguous_transactional if lane == "transactional" else self.ambiguous_bulk

    def senders(self) -> dict[tuple[str, str], ApiKeyConfig]:
        """(number, channel) -> the key that sends it: the first in configuration order
        that binds the number with the channel; channel ``contacts`` at each key's
        ``contacts_number``. Workers and the producer route every job by this table."""
        routes: dict[tuple[str, str], ApiKeyConfig] = {}
        for key in self.keys:
            for number in key.numbers:
                for channel in key.channels:
                    routes.setdefault((number, channel), key)
            routes.setdefault((key.contacts_number, "contacts"), key)
        return routes

    def key_for_number(self, from_phone_no: str, channel: str | None = None) -> ApiKeyConfig:
        """The key that sends from ``from_phone_no`` (on ``channel``): the first in
        configuration order that binds it (with that channel). Several keys may bind one
        number; only that first one's quota is spent on the number's sends, they do not
        add up. ``KeyError`` when no key is bound to it."""
        number = normalize_e164(from_phone_no)
        for key in self.keys:
            if number in key.numbers and (channel is None or channel in key.channels):
                return key
        raise KeyError(number)

    def channels_of(self, number: str) -> tuple[str, ...]:
        """The channels some key can send from ``number`` on."""
        found = (c for key in self.keys if number in key.numbers for c in key.channels)
        return tuple(dict.fromkeys(found))


_SIMPLE_KEY_VARS = {
    "key": "WAAPI_API_KEY",
    "secret": "WAAPI_API_SECRET",
    "numbers": "WAAPI_FROM_NUMBERS",
    "per_minute": "WAAPI_PER_MINUTE",
    "per_hour": "WAAPI_PER_HOUR",
    "webhook_verify_token": "WAAPI_WEBHOOK_VERIFY_TOKEN",
    "scopes": "WAAPI_SCOPES",
    "channels": "WAAPI_CHANNELS",
}


M = TypeVar("M", bound=BaseModel)


def _named_list_from_json(raw: str, variable: str, model: type[M]) -> tuple[M, ...]:
    """A JSON list of ``model`` objects with unique ``name``s, read from ``variable``."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{variable}: not valid JSON ({exc.msg} at char {exc.pos})") from None
    if not isinstance(data, list) or not data:
        raise ValueError(f"{variable}: must be a non-empty JSON list of objects")
    items = []
    for index, entry in enumerate(data):
        try:
            items.append(model.model_validate(entry))
        except ValidationError as exc:
            raise ValueError("; ".join(_problems(exc, prefix=f"{variable}[{index}]"))) from None
    names = [getattr(item, "name", None) for item in items]
    if len(set(names)) != len(names):
        raise ValueError(f"{variable}: names must be unique")
    return tuple(items)


def _keys_from_json(raw: str) -> tuple[ApiKeyConfig, ...]:
    return _named_list_from_json(raw, "WAAPI_KEYS", ApiKeyConfig)


def _tokens_from_json(raw: str) -> tuple[ProducerToken, ...]:
    return _named_list_from_json(raw, "DISPATCH_TOKENS", ProducerToken)


def _number_limits(raw: str | None) -> dict[str, float]:
    if not raw:
        return {}
    data = json.loads(raw)
    return {normalize_e164(number): float(rate) for number, rate in data.items()}


def _json_object(raw: str, variable: str, example: str) -> dict[str, Any]:
    """``raw`` read as a JSON object, or ValueError naming ``variable`` and the shape."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{variable}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{variable}: must be a JSON object {example}")
    return data


def _is_number(value: Any) -> bool:
    """A JSON number (true and false are not)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _prices_from_json(text: str) -> dict[str, dict[str, float]]:
    data = _json_object(text, "PRICES", '{"marketing": {"+91": 0.0107}}')
    table: dict[str, dict[str, float]] = {}
    for category, by_country in data.items():
        if not isinstance(by_country, dict):
            raise ValueError(f"PRICES: {category}: must be an object of prices by country")
        for where, price in by_country.items():
            if where != "*" and not (where.startswith("+") and where[1:].isdigit()):
                raise ValueError(f"PRICES: {category}: {where!r} must be '+<country code>' or '*'")
            if not _is_number(price) or price < 0:
                raise ValueError(f"PRICES: {category}.{where}: must be a price, 0 or more")
        table[category] = {where: float(price) for where, price in by_country.items()}
    return table


def _check_numbers_unique(keys: tuple[ApiKeyConfig, ...]) -> None:
    """Several keys may bind one number (the first that has the job's channel sends);
    Meta's phone_number_id still names exactly one number."""
    named: dict[str, str] = {}
    for key in keys:
        for number, number_id in key.phone_number_ids.items():
            if named.get(number_id, number) != number:
                raise ValueError(
                    f"WAAPI_KEYS: phone_number_id {number_id} is given for both "
                    f"{named[number_id]} and {number}"
                )
            named[number_id] = number


def _problems(
    exc: ValidationError, names: dict[str, str] | None = None, prefix: str = ""
) -> list[str]:
    """``VARIABLE: rule`` lines from a pydantic error, never including the input value."""
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = [str(part) for part in error["loc"]]
        message = str(error["msg"]).removeprefix("Value error, ")
        if not loc:
            lines.append(f"{prefix}: {message}" if prefix else message)
            continue
        head = loc[0]
        if names is not None:
            head = names.get(head, head.upper())
        elif prefix:
            head = f"{prefix}.{head}"
        else:
            head = head.upper()
        rest = "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in loc[1:])
        lines.append(f"{head}{rest}: {message}")
    return lines


def load_settings(**overrides: Any) -> Settings:
    """Read the environment (and ``.env``); raise :class:`ConfigError` on a wrong value."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = _problems(exc)
    # Raised outside the except block: pydantic's error holds the input values (secrets
    # among them) and must not ride along as __context__ into tracebacks or Sentry.
    raise ConfigError(problems)
