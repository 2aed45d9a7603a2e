"""Nothing is downloaded at run time: model load, recognizers (tldextract included) and scrubbing
run with every network call refused."""

from __future__ import annotations

import socket

import pytest


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    attempts: list[str] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(repr(args[:2]))
        raise OSError("network disabled by test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


def test_scrubber_loads_and_runs_without_network(no_network: list[str]) -> None:
    from anonymization.scrubber import FrenchScrubber

    scrubber = FrenchScrubber(n_process=1)
    out = scrubber.scrub_batch(["Écrire à julie.martin@exemple.co.uk ou jean@orange.fr, Mme Julie MARTIN."])
    assert out == ["Écrire à <EMAIL> ou <EMAIL>, Mme <NOM>."]
    assert no_network == []
