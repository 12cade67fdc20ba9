"""The demo data: deterministic for a seed, sized exactly, shaped like a SaaS product."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from posthog_local import ServerOptions, build_app
from posthog_local.data import VOCAB, generate

NOW = dt.datetime(2025, 6, 2, 12, tzinfo=dt.UTC)


def test_same_seed_same_data() -> None:
    first, second = generate(5_000, 3, NOW), generate(5_000, 3, NOW)
    assert first.events.equals(second.events)
    assert first.persons.equals(second.persons)
    assert not generate(5_000, 4, NOW).events.equals(first.events)


def test_a_million_events_generate_exactly() -> None:
    data = generate(1_000_000, 42, NOW)
    assert len(data.events) == 1_000_000
    times = data.events["timestamp"].to_numpy()
    assert times.min() >= (NOW.timestamp() - 31 * 86_400) * 1e6
    assert times.max() < NOW.timestamp() * 1e6


def test_the_same_seed_gives_the_same_rows_whenever_it_starts() -> None:
    later = NOW + dt.timedelta(days=3, hours=5, minutes=7)
    first, second = generate(20_000, 42, NOW), generate(20_000, 42, later)
    shift = int((later - NOW).total_seconds() * 1_000_000)
    assert (second.events["timestamp"] - first.events["timestamp"] == shift).all()
    assert first.events.drop(columns="timestamp").equals(second.events.drop(columns="timestamp"))
    assert (second.persons["created_at"] - first.persons["created_at"] == shift).all()
    assert first.sessions.equals(second.sessions)
    assert second.events["timestamp"].max() < later.timestamp() * 1e6


def test_two_days_in_every_seven_are_quieter() -> None:
    data = generate(50_000, 1, NOW)
    days_back = (NOW.timestamp() * 1e6 - data.events["timestamp"].to_numpy()) // 86_400_000_000
    per_residue = sorted(np.sum(days_back % 7 == d) for d in range(7))
    assert np.mean(per_residue[:2]) < 0.7 * np.mean(per_residue[2:])


def test_every_event_name_occurs() -> None:
    data = generate(20_000, 2, NOW)
    assert set(np.unique(data.events["event"])) == set(range(len(VOCAB["event"])))


def test_options_reject_impossible_values() -> None:
    with pytest.raises(ValueError, match="fault_5xx_rate"):
        ServerOptions(fault_5xx_rate=2)
    with pytest.raises(ValueError, match="latency_ms"):
        ServerOptions(latency_ms=(5, 1))


def test_build_app_is_lazy() -> None:
    app = build_app(ServerOptions(events=100))
    state = app.state.posthog
    assert state.definitions is None  # nothing loads until the first request
    assert state.api_key.startswith("phx_")
