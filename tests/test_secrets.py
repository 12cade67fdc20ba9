"""The API key never appears in logs, error texts, reprs or tracebacks, whatever happens."""

from __future__ import annotations

import io
import json
import logging
import traceback
from contextlib import redirect_stderr

import httpx
import pytest
import structlog
from structlog.testing import capture_logs

from posthog_driver import AsyncDriver, DriverError, configure_logging
from posthog_driver._logging import get_logger, redact
from tests import respx2
from tests.conftest import FAKE_KEY
from tests.posthog_bodies import EVENT_DEFS_URL, PROJECT_URL, QUERY_URL, error_body


@pytest.fixture(autouse=True)
def _reset_structlog():
    yield
    structlog.reset_defaults()


def _scenario_answers(request: httpx.Request) -> httpx.Response:
    body = request.content.decode() if request.content else ""
    if "boom" in body:
        raise httpx.ConnectError(f"failed while sending {request.headers['Authorization']}")
    if "bad" in body:
        return httpx.Response(400, json=error_body("validation_error", "x", "bad query"))
    return httpx.Response(503, text="upstream down")


async def _run_failures(make_settings) -> list[str]:
    texts: list[str] = []
    with respx2.mock(assert_all_called=False) as mock:
        mock.post(QUERY_URL).mock(side_effect=_scenario_answers)
        mock.get(PROJECT_URL).respond(401, json=error_body("authentication_error", "x", "no"))
        mock.get(EVENT_DEFS_URL).respond(403, json=error_body("authentication_error", "y", "no"))
        settings = make_settings(max_retries=1, breaker_threshold=2)
        async with AsyncDriver(settings) as driver:
            texts.append(repr(driver))
            for hogql in ("SELECT boom", "SELECT bad", "SELECT 1", "SELECT 1", "SELECT 1"):
                try:
                    await driver.query(hogql)
                except DriverError as exc:
                    texts.extend([str(exc), repr(exc)])
                    texts.append("".join(traceback.format_exception(exc)))
            await driver.health_check()
    return texts


async def test_the_key_is_absent_from_every_log_event_and_error_of_a_failing_run(make_settings):
    with capture_logs() as events:
        texts = await _run_failures(make_settings)
    assert events, "the run should have logged its retries and breaker changes"
    assert {"retrying", "breaker_opened"} <= {e["event"] for e in events}
    everything = json.dumps(events, default=str) + "\n".join(texts)
    assert FAKE_KEY not in everything
    assert FAKE_KEY[4:20] not in everything


async def test_the_key_is_absent_from_configured_console_and_json_output(make_settings):
    for fmt in ("console", "json"):
        stream = io.StringIO()
        with redirect_stderr(stream):
            configure_logging(level="DEBUG", fmt=fmt)
            await _run_failures(make_settings)
            get_logger().warning("someone_elses_event", api_key=FAKE_KEY, note=f"Bearer {FAKE_KEY}")
        output = stream.getvalue()
        assert "retrying" in output
        assert "someone_elses_event" in output
        assert FAKE_KEY not in output


def test_redact_replaces_keys_and_bearer_tokens():
    assert redact(f"key {FAKE_KEY} end") == "key phx_*** end"
    assert redact("Authorization: Bearer abc.def") == "Authorization: Bearer ***"
    assert redact("pha_0123456789abcdef and phs_0123456789abcdef") == "pha_*** and phs_***"
    assert redact("phx_ is a prefix") == "phx_ is a prefix"


def test_configure_logging_refuses_unknown_formats_and_levels():
    with pytest.raises(ValueError, match="fmt"):
        configure_logging(fmt="xml")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="level"):
        configure_logging(level="LOUD")


def test_without_configuration_events_go_to_the_stdlib_logger(caplog):
    structlog.reset_defaults()
    with caplog.at_level(logging.INFO, logger="posthog_driver"):
        get_logger().info("query_sent", rows=3, api_key=FAKE_KEY)
    assert caplog.records[0].getMessage() == "event='query_sent' rows=3 api_key='***'"


def test_importing_the_package_configures_nothing():
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    code = (
        "import logging, structlog, posthog_driver;"
        "assert not structlog.is_configured();"
        "assert not logging.getLogger().handlers;"
        "assert not logging.getLogger('posthog_driver').handlers;"
        "print('clean')"
    )
    out = subprocess.run(  # noqa: S603 - our own interpreter and a fixed script
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "clean"


async def test_unconfigured_breaker_and_bucket_events_never_reach_stdout(make_settings, capsys):
    structlog.reset_defaults()
    with respx2.mock() as mock:
        mock.post(QUERY_URL).respond(503, headers={"Retry-After": "0"})
        async with AsyncDriver(make_settings(max_retries=0, breaker_threshold=1)) as driver:
            with pytest.raises(DriverError):
                await driver.query("SELECT 1")
            assert driver.status().breakers["query"].failures == 1
    assert capsys.readouterr().out == ""
