"""posthog-driver: an asyncio-native driver that lets AI agents discover and query PostHog.

```python
from posthog_driver import AsyncDriver

async with AsyncDriver.from_env() as driver:
    tables = await driver.list_objects()
    fields = await driver.get_fields("events")
    rows = await driver.query("SELECT event, count() AS n FROM events GROUP BY event LIMIT 10")
```

Importing this package reads no environment and configures no logging.
"""

from importlib.metadata import PackageNotFoundError, version

from posthog_driver._catalog import FieldInfo
from posthog_driver._driver import AsyncDriver
from posthog_driver._errors import (
    AuthenticationError,
    CircuitOpenError,
    ConfigError,
    DriverError,
    NotFoundError,
    PermissionDeniedError,
    QueryError,
    RateLimitError,
    RequestTimeoutError,
    SandboxUnavailableError,
    ServerError,
    SharedLimitsError,
    TransportError,
    ValidationError,
)
from posthog_driver._logging import configure_logging
from posthog_driver._results import QueryResult, Rows
from posthog_driver._settings import DriverSettings
from posthog_driver._status import BreakerStatus, DriverStatus, LimitStatus, WindowStatus
from posthog_driver._stream import RowStream
from posthog_driver._validation import QueryProblem, ValidationResult

try:
    __version__ = version("posthog-driver")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    from posthog_driver._version import __version__

__all__ = [
    "AsyncDriver",
    "AuthenticationError",
    "BreakerStatus",
    "CircuitOpenError",
    "ConfigError",
    "DriverError",
    "DriverSettings",
    "DriverStatus",
    "FieldInfo",
    "LimitStatus",
    "NotFoundError",
    "PermissionDeniedError",
    "QueryError",
    "QueryProblem",
    "QueryResult",
    "RateLimitError",
    "RequestTimeoutError",
    "RowStream",
    "Rows",
    "SandboxUnavailableError",
    "ServerError",
    "SharedLimitsError",
    "TransportError",
    "ValidationError",
    "ValidationResult",
    "WindowStatus",
    "__version__",
    "configure_logging",
]
