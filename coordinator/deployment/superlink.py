"""The Region's SuperLink: the exact ``flower-superlink`` command, and what it exposes and trusts.

Flower 1.42 serves the Fleet API (SuperNodes), the Control API (``flwr run``, registration)
and the Runtime API (the ServerApp) on one HTTPS port. We always start it with TLS,
SuperNode authentication (only registered public keys may connect) and runtime dependency
installation disabled (the ServerApp runs the code installed in this venv, nothing is
downloaded per run).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from coordinator.deployment.processes import executable

DEFAULT_SUPERLINK_PORT = 9093


@dataclass(frozen=True)
class SuperLinkTls:
    """The SuperLink's certificate, its key, and the CA every party trusts (PEM files)."""

    certificate: Path
    key: Path
    ca_certificate: Path

    @classmethod
    def from_provision(cls, root: Path) -> SuperLinkTls:
        """Read the layout written by ``r2dde provision`` (``<root>/superlink/``, see CONTRACTS.md)."""
        folder = Path(root) / "superlink"
        tls = cls(
            certificate=folder / "superlink.pem",
            key=folder / "superlink.key",
            ca_certificate=folder / "ca.pem",
        )
        tls.check()
        return tls

    def check(self) -> None:
        for path in (self.certificate, self.key, self.ca_certificate):
            if not path.is_file():
                raise FileNotFoundError(f"{path}: SuperLink TLS file missing (run `r2dde provision`)")


@dataclass(frozen=True)
class SuperLinkSettings:
    """How the Region runs its SuperLink."""

    tls: SuperLinkTls
    host: str = "127.0.0.1"
    port: int = DEFAULT_SUPERLINK_PORT
    database: Path | None = None  # None: in-memory state, lost on restart (registrations included)
    log_file: Path | None = None

    @property
    def local_host(self) -> str:
        """The host to dial from this machine (a wildcard bind is reached on loopback)."""
        return "127.0.0.1" if self.host in {"0.0.0.0", "::"} else self.host

    @property
    def address(self) -> str:
        """``host:port`` as the Control API client on this machine dials it."""
        host = self.local_host
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    def argv(self) -> list[str]:
        """The command that runs the SuperLink: Flower's, with plain logs off a terminal."""
        from tasks.flower_logs import wrapped

        return wrapped(self.flower_argv())

    def flower_argv(self) -> list[str]:
        """The ``flower-superlink`` command line."""
        argv = [
            executable("flower-superlink"),
            "--ssl-certfile",
            str(self.tls.certificate),
            "--ssl-keyfile",
            str(self.tls.key),
            "--ssl-ca-certfile",
            str(self.tls.ca_certificate),
            "--enable-supernode-auth",
            "--disable-runtime-dependency-installation",
            "--isolation",
            "subprocess",
            "--host",
            self.host,
            "--port",
            str(self.port),
        ]
        if self.database is not None:
            argv += ["--database", str(self.database)]
        if self.log_file is not None:
            argv += ["--log-file", str(self.log_file)]
        return argv

    def describe(self) -> list[str]:
        """What an operator must know before opening a firewall: listens, trusts, refuses."""
        state = str(self.database) if self.database else "in memory (registrations are lost on restart)"
        return [
            f"listens on   https://{self.host}:{self.port} (Fleet API for SuperNodes, Control API for "
            "`r2dde coordinator run-study`, Runtime API for the ServerApp; one TLS port)",
            f"certificate  {self.tls.certificate} (issued by {self.tls.ca_certificate})",
            "trusts       only SuperNodes whose public key was registered "
            "(`r2dde coordinator register`), nothing downloaded per run",
            "refuses      plain-text connections, unregistered SuperNode keys, runtime dependency "
            "installation",
            f"state        {state}",
            "exposes      the Control API on the same port: open it to the partners' nodes and the "
            "Region's operators only (Flower's open-source Control API has no account login)",
        ]
