"""DriverSettings: sources, validation, and the key kept secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from posthog_driver import ConfigError, DriverSettings
from tests.conftest import FAKE_KEY


def test_defaults_match_posthogs_documented_limits():
    settings = DriverSettings(api_key=FAKE_KEY, project_id="1")
    assert settings.host == "https://us.posthog.com"
    assert (settings.query_rate_per_minute, settings.query_rate_per_hour) == (240, 2400)
    assert (settings.api_rate_per_minute, settings.api_rate_per_hour) == (240, 1200)
    assert settings.max_concurrent_queries == 3
    assert (settings.breaker_threshold, settings.breaker_reset_seconds) == (5, 30.0)
    assert settings.max_retries == 3
    assert settings.max_retry_after == 60.0
    assert settings.max_query_chars == 1_000_000
    assert settings.base_url == "https://us.posthog.com/api/projects/1"


def test_every_field_has_a_description():
    assert all(field.description for field in DriverSettings.model_fields.values())


def test_from_env_reads_variables_with_the_posthog_prefix(monkeypatch):
    monkeypatch.setenv("POSTHOG_API_KEY", FAKE_KEY)
    monkeypatch.setenv("POSTHOG_PROJECT_ID", "123")
    monkeypatch.setenv("POSTHOG_MAX_RETRIES", "7")
    monkeypatch.setenv("POSTHOG_LOG_FORMAT", "json")
    settings = DriverSettings.from_env()
    assert settings.api_key.get_secret_value() == FAKE_KEY
    assert settings.max_retries == 7
    assert settings.log_format == "json"


def test_from_env_reads_a_dotenv_file_in_the_working_directory(tmp_path: Path):
    (tmp_path / ".env").write_text(f"POSTHOG_API_KEY={FAKE_KEY}\nPOSTHOG_PROJECT_ID=55\n")
    assert DriverSettings.from_env().project_id == "55"


def test_explicit_settings_read_neither_the_environment_nor_dotenv(monkeypatch, tmp_path: Path):
    # a tenant's key must never go to a host the process environment names
    monkeypatch.setenv("POSTHOG_HOST", "https://attacker.example")
    monkeypatch.setenv("POSTHOG_TIMEOUT", "1")
    (tmp_path / ".env").write_text("POSTHOG_HOST=https://other.example\nPOSTHOG_MAX_RETRIES=9\n")
    settings = DriverSettings(api_key=FAKE_KEY, project_id="2")
    assert settings.host == "https://us.posthog.com"
    assert (settings.timeout, settings.max_retries) == (60.0, 3)
    with pytest.raises(ConfigError, match=r"project_id \(POSTHOG_PROJECT_ID\) is missing"):
        DriverSettings(api_key=FAKE_KEY)


def test_from_env_takes_overrides_over_the_environment(monkeypatch):
    monkeypatch.setenv("POSTHOG_API_KEY", FAKE_KEY)
    monkeypatch.setenv("POSTHOG_PROJECT_ID", "1")
    assert DriverSettings.from_env(project_id="2").project_id == "2"


def test_the_personal_key_variable_wins_over_the_capture_sdks_variable(monkeypatch):
    monkeypatch.setenv("POSTHOG_API_KEY", "phc_the_capture_sdks_project_key")
    monkeypatch.setenv("POSTHOG_PERSONAL_API_KEY", FAKE_KEY)
    monkeypatch.setenv("POSTHOG_PROJECT_ID", "1")
    assert DriverSettings.from_env().api_key.get_secret_value() == FAKE_KEY
    monkeypatch.delenv("POSTHOG_PERSONAL_API_KEY")
    with pytest.raises(ConfigError) as caught:
        DriverSettings.from_env()
    assert "POSTHOG_PERSONAL_API_KEY (or POSTHOG_API_KEY) is a project API key" in str(caught.value)
    monkeypatch.delenv("POSTHOG_API_KEY")
    with pytest.raises(ConfigError, match=r"is missing; set it in the environment or in \.env"):
        DriverSettings.from_env()


@pytest.mark.parametrize(
    ("host", "app"),
    [
        ("https://us.i.posthog.com", "https://us.posthog.com"),
        ("https://eu.i.posthog.com/", "https://eu.posthog.com"),
    ],
)
def test_the_ingestion_host_is_refused_with_the_app_host_named(host, app):
    with pytest.raises(ConfigError) as caught:
        DriverSettings(api_key=FAKE_KEY, project_id="1", host=host)
    assert "ingestion host" in str(caught.value)
    assert app in str(caught.value)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("https://eu.posthog.com/", "https://eu.posthog.com"),
        ("  https://posthog.example.org//  ", "https://posthog.example.org"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("https://example.org/posthog/", "https://example.org/posthog"),
    ],
)
def test_hosts_are_normalised(host, expected):
    assert DriverSettings(api_key=FAKE_KEY, project_id="1", host=host).host == expected


@pytest.mark.parametrize(
    "host", ["us.posthog.com", "ftp://x.org", "https://", "https://x.org/?a=1"]
)
def test_a_host_without_a_usable_url_is_refused_with_an_example(host):
    with pytest.raises(ConfigError, match="POSTHOG_HOST"):
        DriverSettings(api_key=FAKE_KEY, project_id="1", host=host)


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({}, "api_key (POSTHOG_PERSONAL_API_KEY (or POSTHOG_API_KEY)) is missing"),
        ({"api_key": FAKE_KEY}, "POSTHOG_PROJECT_ID) is missing"),
        ({"api_key": FAKE_KEY, "project_id": "abc"}, "POSTHOG_PROJECT_ID) must be the numeric"),
        ({"api_key": FAKE_KEY, "project_id": 1.5}, "POSTHOG_PROJECT_ID"),
        ({"api_key": "", "project_id": "1"}, "POSTHOG_API_KEY)) is empty"),
        ({"api_key": "phx_a b", "project_id": "1"}, "whitespace"),
        ({"api_key": "phc_public", "project_id": "1"}, "project API key"),
        ({"api_key": "phx_s\u00e9cret", "project_id": "1"}, "never has"),
        ({"api_key": "phx_a\x00b", "project_id": "1"}, "never has"),
        ({"api_key": FAKE_KEY, "project_id": "1", "timeout": 0}, "POSTHOG_TIMEOUT"),
        ({"api_key": FAKE_KEY, "project_id": "1", "max_retries": -1}, "POSTHOG_MAX_RETRIES"),
        ({"api_key": FAKE_KEY, "project_id": "1", "log_format": "xml"}, "POSTHOG_LOG_FORMAT"),
        ({"api_key": FAKE_KEY, "project_id": "1", "timeout": "soon"}, "POSTHOG_TIMEOUT"),
    ],
)
def test_invalid_settings_raise_config_error_naming_the_variable(values, fragment):
    with pytest.raises(ConfigError) as caught:
        DriverSettings(**values)
    assert fragment in str(caught.value)


def test_an_integer_project_id_is_accepted():
    assert DriverSettings(api_key=FAKE_KEY, project_id=99).project_id == "99"


def test_the_key_is_in_no_repr_str_or_config_error():
    settings = DriverSettings(api_key=FAKE_KEY, project_id="1")
    assert FAKE_KEY not in repr(settings)
    assert FAKE_KEY not in str(settings)
    assert FAKE_KEY not in str(settings.model_dump())
    with pytest.raises(ConfigError) as caught:
        DriverSettings(api_key=FAKE_KEY + " x", project_id="bad")
    assert FAKE_KEY not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    assert FAKE_KEY not in repr(caught.value.__context__)
    assert FAKE_KEY not in str(caught.value.__context__)


def test_settings_are_immutable():
    settings = DriverSettings(api_key=FAKE_KEY, project_id="1")
    with pytest.raises(Exception, match="frozen"):
        settings.timeout = 5  # type: ignore[misc]


def test_choices_are_not_case_sensitive_and_endless_numbers_are_refused(monkeypatch):
    monkeypatch.setenv("POSTHOG_QUERY_MODE", "ASYNC")
    monkeypatch.setenv("POSTHOG_LOG_FORMAT", "Json")
    settings = DriverSettings.from_env(api_key=FAKE_KEY, project_id="1")
    assert (settings.query_mode, settings.log_format) == ("async", "json")
    for name, value in (("POSTHOG_TIMEOUT", "inf"), ("POSTHOG_CALL_TIMEOUT", "nan")):
        monkeypatch.setenv(name, value)
        with pytest.raises(ConfigError, match=f"{name} is invalid: input should be a finite"):
            DriverSettings.from_env(api_key=FAKE_KEY, project_id="1")
        monkeypatch.delenv(name)
