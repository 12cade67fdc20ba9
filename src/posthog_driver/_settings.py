"""`DriverSettings`: every knob of the driver, from arguments, or from `POSTHOG_*` and `.env`.

`DriverSettings(...)` takes its arguments and the defaults below, and nothing else: a
multi-tenant app that builds settings for a tenant must never pick up a host from the process
environment. Only `DriverSettings.from_env()` (and `AsyncDriver.from_env()`) read the
environment and the `.env` file in the working directory, with this precedence: keyword
arguments, environment variables, `.env`, defaults. The key is read from
`POSTHOG_PERSONAL_API_KEY`, or `POSTHOG_API_KEY` (the first wins when both are set: apps often
hold their capture SDK's project key in `POSTHOG_API_KEY`).

An invalid value raises `ConfigError` naming the variable; the API key is a `SecretStr`, so it
never shows in `repr`, `str` or errors.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from typing import Any, Literal
from urllib.parse import urlsplit

import pydantic
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from posthog_driver._errors import ConfigError

__all__ = ["DriverSettings"]

ENV_PREFIX = "POSTHOG_"

# Set only while `from_env()` builds settings: the one path that reads the environment.
_reading_environment: ContextVar[bool] = ContextVar("_reading_environment", default=False)


def env_name(field: str) -> str:
    """The environment variable that sets `field` (`api_key` -> `POSTHOG_API_KEY`)."""
    return ENV_PREFIX + field.upper()


class DriverSettings(BaseSettings):
    """Configuration of an `AsyncDriver`.

    >>> DriverSettings(api_key="phx_example", project_id="12345").host
    'https://us.posthog.com'
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        validate_default=True,
        hide_input_in_errors=True,  # pydantic's errors would otherwise quote the key
        validate_by_name=True,
        allow_inf_nan=False,  # POSTHOG_TIMEOUT=inf or nan: refused, not a wait for ever
    )

    api_key: SecretStr = Field(
        description="Personal API key (phx_...) with the query:read scope; "
        "event_definition:read and property_definition:read for schema discovery. "
        "Environment: POSTHOG_PERSONAL_API_KEY or POSTHOG_API_KEY.",
        validation_alias=AliasChoices("posthog_personal_api_key", "posthog_api_key"),
    )
    project_id: str = Field(
        description="Numeric PostHog project id (Project settings > Project ID)."
    )
    host: str = Field(
        default="https://us.posthog.com",
        description="PostHog's app host: https://us.posthog.com, https://eu.posthog.com "
        "or your own.",
    )
    timeout: float = Field(
        default=60.0,
        gt=0,
        description="Seconds one HTTP attempt may take, from sending to the answer's last byte. "
        "PostHog may queue a query up to 30 s and run it up to 10 s, so keep this above 40.",
    )
    connect_timeout: float = Field(
        default=5.0,
        gt=0,
        description="Seconds to wait for a connection to PostHog: short, so an unreachable host "
        "fails fast (capped by `timeout`).",
    )
    call_timeout: float = Field(
        default=180.0,
        gt=0,
        description="Default deadline (s) of one public call, retries and waits included; "
        "every method's `timeout=` overrides it.",
    )
    query_mode: Literal["blocking", "async"] = Field(
        default="blocking",
        description="How queries run: 'blocking' waits in one request; 'async' starts the query "
        "and polls PostHog for its status (for long queries; no slot or query token per poll).",
    )
    max_retries: int = Field(
        default=3,
        ge=0,
        le=20,
        description="Retries after the first attempt for 408/429/5xx/network.",
    )
    max_retry_after: float = Field(
        default=60.0,
        ge=0,
        description="Longest Retry-After (s) we wait out; a longer one raises RateLimitError.",
    )
    retry_base_delay: float = Field(
        default=0.5, ge=0, description="First backoff delay (s); doubles each retry, full jitter."
    )
    retry_max_delay: float = Field(default=8.0, ge=0, description="Cap of one backoff delay (s).")
    query_rate_per_minute: int = Field(
        default=240, ge=1, description="Query endpoint: requests/min."
    )
    query_rate_per_hour: int = Field(
        default=2400, ge=1, description="Query endpoint: requests/hour."
    )
    api_rate_per_minute: int = Field(
        default=240, ge=1, description="Other endpoints: requests/min."
    )
    api_rate_per_hour: int = Field(
        default=1200, ge=1, description="Other endpoints: requests/hour."
    )
    max_concurrent_queries: int = Field(
        default=3, ge=1, description="Queries in flight at once (PostHog runs 3 per organisation)."
    )
    max_connections: int = Field(default=20, ge=1, description="Size of the HTTP connection pool.")
    describe_concurrency: int = Field(
        default=8, ge=1, description="Objects `describe()` fetches fields for at the same time."
    )
    breaker_threshold: int = Field(
        default=5, ge=1, description="Consecutive failures (5xx, network, timeout) that open it."
    )
    breaker_reset_seconds: float = Field(
        default=30.0, gt=0, description="Seconds the breaker stays open before one probe."
    )
    schema_cache_ttl: float = Field(
        default=300.0, ge=0, description="Seconds schema answers are cached; 0 turns caching off."
    )
    max_query_chars: int = Field(
        default=1_000_000, ge=1, description="Longest HogQL text accepted before sending."
    )
    redis_url: SecretStr | None = Field(
        default=None,
        description="Redis URL (redis://, rediss:// or unix://) shared by every worker of an app: "
        "rate windows, Retry-After pauses, query slots, breakers and the schema cache then hold "
        "for all of them together. Needs the `redis` extra. Unset: limits per process.",
    )
    redis_failure_policy: Literal["local", "closed"] = Field(
        default="local",
        description="When Redis does not answer: 'local' falls back to per-process limits, "
        "'closed' refuses calls (SharedLimitsError) until it answers again.",
    )
    redis_timeout: float = Field(
        default=2.0,
        gt=0,
        description="Seconds one Redis command may take before the failure policy applies "
        "(Redis answers in well under a millisecond; a busy event loop can delay reading it).",
    )
    redis_lease_seconds: float = Field(
        default=15.0,
        gt=0,
        description="Lease of a shared query slot, renewed every third of it while the query "
        "runs: a crashed worker's slot is free again within this time.",
    )
    redis_schema_cache: bool = Field(
        default=True,
        description="With redis_url: keep schema answers in Redis, so workers discover once.",
    )
    organization_id: str | None = Field(
        default=None,
        description="PostHog organisation id: with redis_url, query slots are shared by every "
        "project of the organisation (PostHog runs 3 queries per organisation). Unset: per "
        "project.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="WARNING", description="Level for `configure_logging()` (the CLI uses it)."
    )
    log_format: Literal["console", "json"] = Field(
        default="console", description="Log renderer for `configure_logging()`."
    )

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except pydantic.ValidationError as exc:
            raise _config_error(exc) from None

    @classmethod
    def from_env(cls, **overrides: Any) -> DriverSettings:
        """Settings from `POSTHOG_*` variables and `.env`, with `overrides` on top.

        >>> DriverSettings.from_env(api_key="phx_example", project_id="1").project_id
        '1'
        """
        token = _reading_environment.set(True)
        try:
            return cls(**overrides)
        finally:
            _reading_environment.reset(token)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        if _reading_environment.get():
            return init_settings, env_settings, dotenv_settings
        return (init_settings,)

    @field_validator("api_key")
    @classmethod
    def _check_api_key(cls, value: SecretStr) -> SecretStr:
        key = value.get_secret_value()
        if not key.strip():
            raise ValueError("is empty; set it to a personal API key (phx_...)")
        if key != key.strip() or any(ch.isspace() for ch in key):
            raise ValueError("contains whitespace; copy the key again without spaces or newlines")
        if not (key.isascii() and key.isprintable()):
            raise ValueError(
                "contains characters a PostHog key never has; copy the key again from PostHog"
            )
        if key.startswith("phc_"):
            raise ValueError(
                "is a project API key (phc_...), which only sends events; "
                "create a personal API key (phx_...) with the query:read scope"
            )
        return value

    @field_validator("project_id", mode="before")
    @classmethod
    def _check_project_id(cls, value: object) -> str:
        text = str(value).strip() if isinstance(value, int | str) else ""
        if not re.fullmatch(r"[0-9]+", text):
            raise ValueError(
                "must be the numeric project id shown in PostHog under Project settings"
            )
        return text

    @field_validator("host")
    @classmethod
    def _check_host(cls, value: str) -> str:
        host = value.strip().rstrip("/")
        parts = urlsplit(host)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                "must be a URL with http:// or https://, e.g. https://us.posthog.com "
                "or https://eu.posthog.com"
            )
        if parts.query or parts.fragment:
            raise ValueError("must not contain a query string or fragment")
        name = (parts.hostname or "").lower()
        if name.endswith(".i.posthog.com"):
            app = "https://eu.posthog.com" if name.startswith("eu.") else "https://us.posthog.com"
            raise ValueError(
                f"is PostHog's ingestion host (for sending events), which has no query API; "
                f"use the app host, {app}"
            )
        return host

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        url = value.get_secret_value().strip()
        if not url:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError(
                "must be a Redis URL: redis://host:6379/0, rediss://... (TLS) or "
                "unix:///path/to/redis.sock"
            )
        # Checked here, where the message can leave the URL out: redis-py's own parsing error
        # quotes the part it could not read, which is the password when it holds # / ? or @.
        try:
            parts.port  # noqa: B018 - reading it is the check
        except ValueError:
            raise ValueError(
                "has a port that is not a number 0-65535; if the password holds '#', '/', '?' "
                "or '@', percent-encode them (%23, %2F, %3F, %40)"
            ) from None
        db = parts.path.strip("/")
        if parts.scheme != "unix" and db and not db.isdigit():
            raise ValueError(
                "must name the database by its number after the host (redis://host:6379/0); "
                "percent-encode '/' in a password as %2F"
            )
        return SecretStr(url)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case_level(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value  # debug = DEBUG

    @field_validator("query_mode", "log_format", "redis_failure_policy", mode="before")
    @classmethod
    def _lower_case_choice(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value  # ASYNC = async

    @field_validator("organization_id")
    @classmethod
    def _check_organization_id(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not re.fullmatch(r"[A-Za-z0-9-]+", value.strip()):
            raise ValueError("must be the organisation id PostHog shows (letters, digits, dashes)")
        return value.strip()

    @property
    def base_url(self) -> str:
        """The project's API root, e.g. `https://us.posthog.com/api/projects/12345`."""
        return f"{self.host}/api/projects/{self.project_id}"


def _config_error(exc: pydantic.ValidationError) -> ConfigError:
    # Only pydantic's `msg` goes into the text: its `input` could be the API key.
    from_env = _reading_environment.get()
    problems = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "settings"
        if field.lower().startswith(ENV_PREFIX.lower()):  # an alias: the key's variables
            field = "api_key"
        msg = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "missing" and from_env:
            msg = "is missing; set it in the environment or in .env"
        elif error["type"] == "missing":
            msg = (
                "is missing; pass it to DriverSettings (DriverSettings.from_env() reads "
                "POSTHOG_* variables and .env)"
            )
        elif msg[:1].isupper():  # pydantic's own sentences ("Input should be ...")
            msg = "is invalid: " + msg[0].lower() + msg[1:]
        problems.append(f"{_setting_name(field, from_env)} {msg}")
    return ConfigError("Invalid posthog-driver settings: " + "; ".join(problems) + ".")


def _setting_name(field: str, from_env: bool) -> str:
    variable = (
        "POSTHOG_PERSONAL_API_KEY (or POSTHOG_API_KEY)" if field == "api_key" else env_name(field)
    )
    return variable if from_env else f"{field} ({variable})"
