"""A real broker on loopback in a background thread, for simulations and tests.

Flower's simulation runs ClientApps in separate Ray processes, so nodes must reach the broker
over real HTTP: ``EmbeddedBroker`` binds 127.0.0.1 on a free port and serves with uvicorn.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from types import TracebackType

import uvicorn

from trust_broker.service.app import create_app
from trust_broker.service.context import BrokerContext, BrokerSettings

START_TIMEOUT_SECONDS = 20.0


class EmbeddedBroker:
    """``with EmbeddedBroker(db_url, provision_dir) as broker: BrokerClient(broker.url, ...)``."""

    def __init__(
        self,
        db_url: str,
        provision_dir: Path | str,
        policies_dir: Path | str | None = None,
        *,
        settings: BrokerSettings | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.db_url = db_url
        self.provision_dir = Path(provision_dir)
        self.policies_dir = Path(policies_dir) if policies_dir else None
        self.settings = settings
        self.host = host
        self.port: int | None = None
        self.context: BrokerContext | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the embedded broker is not running")
        return f"http://{self.host}:{self.port}"

    def start(self) -> EmbeddedBroker:
        self.context = BrokerContext.from_config(
            self.db_url, self.provision_dir, self.policies_dir, settings=self.settings
        )
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self._socket = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(self.context),
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="r2dde-embedded-broker", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"embedded broker did not start on {self.host}:{self.port}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        if self.context is not None:
            self.context.close()
        self._server = self._thread = self._socket = None
        self.port = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
