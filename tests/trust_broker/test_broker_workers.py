"""``serve --workers N``: one process per SO_REUSEPORT socket, and no silent partial service."""

from __future__ import annotations

import socket

import pytest

from trust_broker.service import app as app_module
from trust_broker.service.workers import serve_workers


def _taken_port() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock


def test_a_port_already_served_is_refused_before_any_worker_starts() -> None:
    with _taken_port() as taken, pytest.raises(OSError):
        # without the up-front check, workers would start, fail to bind and make this return 1
        serve_workers(2, "127.0.0.1", taken.getsockname()[1], "warning")


def test_a_worker_that_cannot_start_stops_the_broker_with_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (app_module.ENV_DB, app_module.ENV_KEYS, app_module.ENV_POLICIES):
        monkeypatch.delenv(name, raising=False)  # the worker finds no configuration and exits
    with _taken_port() as probe:
        port = probe.getsockname()[1]
    assert serve_workers(1, "127.0.0.1", port, "critical") == 1
