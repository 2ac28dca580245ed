"""The run's temporary Prefect API server is started only when no API is configured."""
from __future__ import annotations

from contextlib import ExitStack

from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.api_server import start_api_server

CONFIGURED = "http://127.0.0.1:9/api"


def test_an_api_named_in_the_environment_starts_no_temporary_server(monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", CONFIGURED)
    with ExitStack() as stack:
        assert start_api_server(stack) is None


def test_an_api_set_in_prefects_settings_starts_no_temporary_server(monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with temporary_settings(updates={PREFECT_API_URL: CONFIGURED}), ExitStack() as stack:
        assert start_api_server(stack) is None


def test_without_a_configured_api_the_server_started_is_stopped_with_the_run(monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with temporary_settings(updates={PREFECT_API_URL: None}), ExitStack() as stack:
        server = start_api_server(stack)
        assert server is not None and server.process.poll() is None
    assert server.process.poll() is not None
