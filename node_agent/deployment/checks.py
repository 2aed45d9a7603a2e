"""What `r2dde node start` checks before the node joins a federation — the real checks, not file names.

Each check says what is wrong and how to fix it. Local checks (the data file against the schema, its
encoding, the keys' permissions, the site's own policy) must pass for the node to start at all; the
network checks (the broker answers with the pinned key, the SuperLink's certificate comes from the
pinned CA) must pass for `--dry-run` and are warnings at a real start (Flower keeps dialling a SuperLink
that is not up yet).
"""

from __future__ import annotations

import socket
import ssl
import stat
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from node_agent.deployment.supernode import SuperNodeSettings

#: Files of the node's folder only its owner may read.
PRIVATE_FILES = ("supernode.key", "node.key", "linkage.key")
NETWORK_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Finding:
    """One check's verdict: ``ok`` and, when not, what to fix."""

    check: str
    ok: bool
    detail: str


class NodeCheck(ABC):
    """One thing the partner's IT team must get right before the node joins."""

    name: str
    network: bool = False

    @abstractmethod
    def problems(self, settings: SuperNodeSettings) -> list[str]:
        """What is wrong, each with the fix; empty when all is well."""

    def run(self, settings: SuperNodeSettings) -> Finding:
        problems = self.problems(settings)
        return Finding(self.name, not problems, "\n".join(problems) if problems else "ok")


class DataFileCheck(NodeCheck):
    """The site's tables read and validated exactly as the ClientApp will: encoding, columns, every cell
    — from the data folder, or from the database the node is started with (``--source``)."""

    name = "data file"

    def problems(self, settings: SuperNodeSettings) -> list[str]:
        from node_agent.settings import NodeSettings, NodeSettingsError
        from node_agent.sources import site_source
        from tasks.formations import FORMATIONS_TASK
        from tasks.registry import TASKS

        config = {"site": settings.site, "data-dir": str(settings.data_dir), **settings.extra_node_config}
        try:
            node = NodeSettings.from_mapping(config, "node start")
        except NodeSettingsError as exc:
            return [str(exc)]
        specs = {spec.dataset: spec for spec in (*TASKS.values(), FORMATIONS_TASK)}
        if node.source is not None:  # a database: the dataset it was given for, asked when read
            specs = {name: spec for name, spec in specs.items() if name == node.source_dataset}
        try:
            tables = [(site_source(node, spec.dataset, spec.file_name), spec) for spec in specs.values()]
        except ValueError as exc:  # a database URL that does not parse (its password hidden)
            return [str(exc)]
        present = [(table, spec) for table, spec in tables if table.exists()]
        if not present:
            return [f"{settings.data_path}: the site's data file is missing"]
        found = []
        for table, spec in present:
            try:
                table.load(spec.validate)
            except (ValueError, KeyError, OSError) as exc:  # schema errors name table, line, field, rule
                found.append(str(exc))
        return found


class KeyPermissionsCheck(NodeCheck):
    """Private keys readable by anyone but their owner are refused (the node's identity, the linkage key)."""

    name = "key permissions"

    def problems(self, settings: SuperNodeSettings) -> list[str]:
        found = []
        for name in PRIVATE_FILES:
            path = settings.keys_dir / name
            if not path.is_file():
                found.append(f"{path}: missing from the node's keys folder")
                continue
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                found.append(f"{path}: readable by others (mode {mode:o}); run `chmod 600 {path}`")
        return found


class SitePolicyCheck(NodeCheck):
    """The site's own policy, from the node's own folder: the local veto reads nothing else."""

    name = "site policy"

    def problems(self, settings: SuperNodeSettings) -> list[str]:
        from policies.loader import PolicyLoadError, load_document
        from policies.models import SitePolicy

        path = settings.policy_path
        if not path.is_file():
            return [
                f"{path}: the site's own policy is missing; write it (or copy the shipped "
                f"policies/documents/sites/{settings.site}.yaml there and review it)"
            ]
        try:
            policy = load_document(path, SitePolicy)
        except PolicyLoadError as exc:
            return [str(exc)]
        if policy.site != settings.site:
            return [f"{path}: policy of site {policy.site!r}, not of {settings.site!r}"]
        return []


class BrokerCheck(NodeCheck):
    """The broker answers at its URL and signs with the key this node pins."""

    name = "trust broker"
    network = True

    def problems(self, settings: SuperNodeSettings) -> list[str]:
        if settings.broker_url is None:
            return []
        import httpx

        from trust_broker.provision.keys import encode_public_key, load_public_key

        pinned_path = settings.keys_dir / "broker.pub"
        try:
            pinned = encode_public_key(load_public_key(pinned_path))
        except ValueError as exc:
            return [str(exc)]
        url = settings.broker_url.rstrip("/") + "/v1/health"
        try:
            response = httpx.get(url, timeout=NETWORK_TIMEOUT_S)
            response.raise_for_status()
            served = str(response.json().get("broker_public_key", ""))
        except (httpx.HTTPError, ValueError) as exc:
            return [f"no trust broker answers at {settings.broker_url} ({exc}); check --broker-url"]
        if served != pinned:
            return [
                f"the broker at {settings.broker_url} signs with another key than {pinned_path}: "
                "wrong URL, or a broker.pub from another federation"
            ]
        return []


class SuperLinkCheck(NodeCheck):
    """A TLS handshake with the SuperLink, verified against the pinned CA and the host name."""

    name = "SuperLink certificate"
    network = True

    def problems(self, settings: SuperNodeSettings) -> list[str]:
        host, _, port = settings.superlink.rpartition(":")
        host = host.strip("[]")
        ca = settings.ca_certificate
        try:
            context = ssl.create_default_context(cafile=str(ca))
        except (OSError, ssl.SSLError) as exc:
            return [f"{ca}: not a readable CA certificate ({exc})"]
        try:
            with (
                socket.create_connection((host, int(port)), timeout=NETWORK_TIMEOUT_S) as raw,
                context.wrap_socket(raw, server_hostname=host),
            ):
                return []
        except ssl.SSLCertVerificationError as exc:
            return [f"the SuperLink at {settings.superlink} is not certified by {ca}: {exc.verify_message}"]
        except (OSError, ssl.SSLError) as exc:
            return [f"no SuperLink answers TLS at {settings.superlink} ({exc}); check --superlink"]


CHECKS: tuple[NodeCheck, ...] = (
    DataFileCheck(),
    KeyPermissionsCheck(),
    SitePolicyCheck(),
    BrokerCheck(),
    SuperLinkCheck(),
)


def run_checks(settings: SuperNodeSettings, *, network: bool = True) -> list[Finding]:
    return [check.run(settings) for check in CHECKS if network or not check.network]
