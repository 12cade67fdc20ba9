"""`DriverSettings`: every knob of the driver, read from arguments, `POSTHOG_*` variables or `.env`.

Precedence (pydantic-settings): keyword arguments, then environment variables, then the `.env`
file in the working directory, then the defaults below. An invalid value raises `ConfigError`
naming the variable; the API key is a `SecretStr`, so it never shows in `repr`, `str` or errors.
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlsplit

import pydantic
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from posthog_driver.errors import ConfigError

__all__ = ["DriverSettings"]

ENV_PREFIX = "POSTHOG_"


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
    )

    api_key: SecretStr = Field(
        description="Personal API key (phx_...) with the query:read scope; "
        "event_definition:read and property_definition:read for schema discovery."
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
        description="Seconds to wait for one HTTP answer. PostHog may queue a query up to 30 s "
        "and run it up to 10 s, so keep this above 40.",
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
        return host

    @property
    def base_url(self) -> str:
        """The project's API root, e.g. `https://us.posthog.com/api/projects/12345`."""
        return f"{self.host}/api/projects/{self.project_id}"


def _config_error(exc: pydantic.ValidationError) -> ConfigError:
    # Only pydantic's `msg` goes into the text: its `input` could be the API key.
    problems = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "settings"
        msg = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "missing":
            msg = "is missing; set it in the environment, in .env, or pass it to DriverSettings"
        problems.append(f"{env_name(field)} {msg}")
    return ConfigError("Invalid posthog-driver settings: " + "; ".join(problems) + ".")
