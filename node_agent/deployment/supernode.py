"""A partner's SuperNode: the exact ``flower-supernode`` command for one site, checked before it starts.

The SuperNode dials out to the Region's SuperLink over TLS (CA pinned from the node's keys
folder) and authenticates with the site's registered P-384 key. It listens only on
loopback, for its own ClientApp process. The ClientApp reads the site, data folder, keys
folder and broker URL from the node config passed here (keys ``site``, ``data-dir``,
``keys-dir``, ``broker-url``, see docs/CONTRACTS.md).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

DEFAULT_RUNTIME_PORT = 9094
SUPERNODE_KEY_FILE = "supernode.key"
SUPERLINK_CA_FILE = "superlink-ca.pem"
DATA_FILE = "parcours.csv"
#: The data files a node may serve: use case 1's paths, use case 3's trainings (statistics queries).
DATA_FILES = (DATA_FILE, "formations.csv")
# Written by `provision` into nodes/<site>/ (see trust_broker/provision/keys.py and docs/CONTRACTS.md).
PROVISIONED_NODE_FILES = ("node.key", "linkage.key", "broker.pub")
SITE_POLICY_FILE = "site-policy.yaml"  # the site's own policy, in the node's own folder (settings.py)


def _config_literal(name: str, value: str) -> str:
    """A TOML literal string for ``--node-config`` (no escapes inside, so paths pass unchanged)."""
    if "'" in value or "\n" in value or "=" in name or " " in name:
        raise ValueError(f"node config {name}: value {value!r} cannot contain a single quote or a newline")
    return f"{name}='{value}'"


def _check_superlink_address(address: str) -> str:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or "/" in address:
        raise ValueError(f"--superlink {address!r}: expected host:port (e.g. superlink.region.example:9093)")
    return address


def _check_broker_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in {"http", "https"} or not parsed.netloc:
        raise ValueError(f"--broker-url {url!r}: expected an http(s) URL such as https://broker.example:8443")
    return url


@dataclass(frozen=True)
class SuperNodeSettings:
    """Everything a partner's IT team decides to run its node."""

    site: str
    data_dir: Path
    keys_dir: Path
    broker_url: str | None  # None only for studies on public data (the node then refuses personal data)
    superlink: str
    runtime_port: int = DEFAULT_RUNTIME_PORT
    max_wait_time_s: float | None = None  # None: keep trying to reach the SuperLink forever
    site_policy: Path | None = None  # the site's own policy document; None: <keys_dir>/site-policy.yaml
    extra_node_config: dict[str, str] = field(default_factory=dict)

    @property
    def private_key(self) -> Path:
        return self.keys_dir / SUPERNODE_KEY_FILE

    @property
    def ca_certificate(self) -> Path:
        return self.keys_dir / SUPERLINK_CA_FILE

    @property
    def data_path(self) -> Path:
        return self.data_dir / DATA_FILE

    @property
    def policy_path(self) -> Path:
        """The site's own policy: named by the partner, else in the node's own folder — never the
        copy inside the app bundle the Region submits."""
        return self.site_policy if self.site_policy is not None else self.keys_dir / SITE_POLICY_FILE

    def check(self) -> None:
        """Refuse to start with a clear message naming the missing file or bad value."""
        if not self.site or not self.site.replace("_", "").isalnum() or self.site != self.site.lower():
            raise ValueError(f"--site {self.site!r}: site ids are lowercase letters, digits and underscores")
        _check_superlink_address(self.superlink)
        if self.broker_url is not None:
            _check_broker_url(self.broker_url)
        if not self.data_dir.is_dir():
            raise FileNotFoundError(f"{self.data_dir}: the site's data folder is missing")
        provisioned = (self.keys_dir / name for name in PROVISIONED_NODE_FILES)
        for path in (self.private_key, self.ca_certificate, *provisioned):
            if not path.is_file():
                raise FileNotFoundError(f"{path}: missing from the node's keys folder (`r2dde provision`)")

    def node_config(self) -> str:
        """The ``--node-config`` string: what the ClientApp learns about its site."""
        items = {
            "site": self.site,
            "data-dir": str(self.data_dir.resolve()),
            "keys-dir": str(self.keys_dir.resolve()),
            **({"broker-url": self.broker_url} if self.broker_url else {}),
            "site-policy": str(self.policy_path.resolve()),
            **self.extra_node_config,
        }
        return " ".join(_config_literal(k, v) for k, v in items.items())

    def argv(self) -> list[str]:
        """The command that becomes the SuperNode: Flower's, with plain logs off a terminal and its
        waits shortened (:mod:`node_agent.deployment.prompt_pull`)."""
        return [sys.executable, "-m", "node_agent.deployment.prompt_pull", *self.flower_argv()]

    def flower_argv(self) -> list[str]:
        """The ``flower-supernode`` command line (no runtime dependency installation: the default)."""
        argv = [
            str(Path(sys.executable).parent / "flower-supernode"),
            "--superlink",
            self.superlink,
            "--root-certificates",
            str(self.ca_certificate.resolve()),
            "--auth-supernode-private-key",
            str(self.private_key.resolve()),
            "--node-config",
            self.node_config(),
            "--isolation",
            "subprocess",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.runtime_port),
        ]
        if self.max_wait_time_s is not None:
            argv += ["--max-wait-time", str(self.max_wait_time_s)]
        return argv

    def describe(self) -> list[str]:
        """What the partner's IT team must know: listens, connects to, trusts, refuses."""
        return [
            f"site         {self.site} (data {self.data_dir / DATA_FILE}, keys {self.keys_dir})",
            f"listens on   127.0.0.1:{self.runtime_port} only (its own ClientApp process; nothing inbound "
            "from the network)",
            f"connects to  the SuperLink at https://{self.superlink} and the broker at "
            f"{self.broker_url or '(none: public-data studies only)'} (outbound only)",
            f"trusts       a SuperLink certificate issued by {self.ca_certificate}; grants signed by the "
            "pinned broker key",
            f"local veto   the site's own policy {self.policy_path} (never the app bundle's copy)",
            f"runs         only app bundles whose code digest is in {self.keys_dir / 'approved-apps.txt'}",
            "starts       each message's ClientApp process by forking a warm server that has torch and "
            "Opacus imported (a Unix socket only this user can open; --no-warm-start: a cold process)",
            f"proves       its identity with {self.private_key} (registered by the Region)",
            "sends        model updates and metrics only (DP-SGD), never rows or pseudonyms",
            "refuses      plain-text SuperLinks, unsigned or expired grants, purposes its site policy "
            "refuses, rounds past its privacy budget, runtime dependency installation",
        ]
