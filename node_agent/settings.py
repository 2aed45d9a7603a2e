"""Where a node finds its site, data, keys and broker.

Deployment: from the SuperNode's node config (`--node-config "site='apec' data-dir='…'"`).
The site's records come from its data folder, or from a database when ``source`` holds its URL
(with ``source-table`` or a read-only ``source-query``; see ``node_agent.sources``).
Simulation: the Flower simulation engine only gives each virtual node a partition id, so
`r2dde simulate` writes a manifest (partition id → site settings) and names it in
`R2DDE_SIMULATION_MANIFEST`; the settings never come from the coordinator's messages, so a
coordinator cannot make a node read another site's data.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

MANIFEST_ENV = "R2DDE_SIMULATION_MANIFEST"
#: The site's own policy document, in the node's own folder (`r2dde provision` / `r2dde node keygen`
#: put a starting copy there for the partner to review). The node reads no other by default.
SITE_POLICY_FILE = "site-policy.yaml"


class NodeSettingsError(ValueError):
    """The node's own configuration is incomplete or inconsistent."""


@dataclass(frozen=True)
class NodeSettings:
    site: str
    data_dir: Path
    keys_dir: Path | None = None
    broker_url: str | None = None
    site_policy: Path | None = None  # the site's own policy document (deployment: `--site-policy`)
    receipts_dir: Path | None = None  # where the broker's receipts are kept (default: the keys folder)
    #: Where the node keeps its own records (rounds trained, evaluations released); see `state_folder`.
    state_dir: Path | None = None
    #: Tests and debugging only: seeds the node's DP randomness so runs repeat. A run with it is NOT
    #: private — whoever learns the seed can subtract the noise — and the node reports ε = ∞ for it.
    reproducible_seed: int | None = None
    #: A database URL (SQLAlchemy) the site's records are read from instead of the data folder. Kept
    #: out of ``repr``: a URL may hold a password, and settings end up in logs.
    source: str | None = field(default=None, repr=False)
    #: The table (``schema.table`` allowed) or the single SELECT that holds ``source_dataset``.
    source_table: str | None = None
    source_query: str | None = field(default=None, repr=False)
    #: The dataset that table or query holds; other datasets come from the table named after them.
    source_dataset: str = "parcours"

    def __post_init__(self) -> None:
        if self.source_table and self.source_query:
            raise NodeSettingsError("give source-table or source-query, not both")
        if (self.source_table or self.source_query) and not self.source:
            raise NodeSettingsError("source-table and source-query need a database URL in 'source'")
        if self.source and re.search(r"://[^/@]*:[^/@]*@", self.source):
            # Settings travel in node configs, manifests and process arguments: a password there is
            # readable by anyone who lists them. The driver reads it from ~/.pgpass instead.
            raise NodeSettingsError("the 'source' URL holds a password: put it in the driver's ~/.pgpass")

    @classmethod
    def from_mapping(cls, config: Mapping[str, object], origin: str) -> NodeSettings:
        missing = [k for k in ("site", "data-dir") if not config.get(k)]
        if missing:
            raise NodeSettingsError(f"{origin}: missing {', '.join(missing)} in the node configuration")
        keys = config.get("keys-dir")
        broker = config.get("broker-url")
        policy = config.get("site-policy")
        receipts = config.get("receipts-dir")
        state = config.get("state-dir")
        seed = config.get("reproducible-seed")
        sql = {k: str(config[k]) for k in ("source", "source-table", "source-query") if config.get(k)}
        if seed not in (None, "") and not str(seed).lstrip("-").isdigit():
            raise NodeSettingsError(f"{origin}: reproducible-seed must be an integer, got {seed!r}")
        try:
            return cls(
                site=str(config["site"]),
                data_dir=Path(str(config["data-dir"])),
                keys_dir=Path(str(keys)) if keys else None,
                broker_url=str(broker) if broker else None,
                site_policy=Path(str(policy)) if policy else None,
                receipts_dir=Path(str(receipts)) if receipts else None,
                state_dir=Path(str(state)) if state else None,
                reproducible_seed=int(str(seed)) if seed not in (None, "") else None,
                source=sql.get("source"),
                source_table=sql.get("source-table"),
                source_query=sql.get("source-query"),
                source_dataset=str(config.get("source-dataset") or "parcours"),
            )
        except NodeSettingsError as exc:
            raise NodeSettingsError(f"{origin}: {exc}") from None

    def policy_path(self) -> Path | None:
        """The site policy the local veto reads: the one named, else the one in the node's folder.

        Never the copy shipped in the app bundle: in deployment the bundle is the coordinator's, so a
        coordinator could otherwise edit the veto meant to stop it.
        """
        if self.site_policy is not None:
            return self.site_policy
        return self.keys_dir / SITE_POLICY_FILE if self.keys_dir is not None else None

    @property
    def state_folder(self) -> Path:
        """The node's own writable folder for what it trained and released per study: ``state-dir``,
        else beside its data, or — where the data folder is mounted read-only (containers) — under
        its Flower home (``r2dde node start`` sets FLWR_HOME)."""
        if self.state_dir is not None:
            return self.state_dir
        if os.access(self.data_dir, os.W_OK):
            return self.data_dir / ".r2dde-node"
        return Path(os.environ.get("FLWR_HOME") or Path.home() / ".flwr") / "r2dde-state" / self.site

    def to_mapping(self) -> dict[str, str]:
        raw = asdict(self)
        return {k.replace("_", "-"): str(v) for k, v in raw.items() if v is not None}


def write_manifest(path: Path, nodes: list[NodeSettings]) -> None:
    """Written by `r2dde simulate`: one entry per virtual node, in partition order."""
    path.write_text(json.dumps({"nodes": [n.to_mapping() for n in nodes]}, indent=2), encoding="utf-8")


def resolve(node_config: Mapping[str, object]) -> NodeSettings:
    """The settings of the node running this ClientApp."""
    if "site" in node_config:
        return NodeSettings.from_mapping(node_config, "node config")
    manifest = os.environ.get(MANIFEST_ENV)
    if "partition-id" not in node_config or not manifest:
        raise NodeSettingsError(
            "this node has no 'site' in its node config (deployment) and no simulation manifest "
            f"({MANIFEST_ENV}) — start it with `r2dde node start` or `r2dde simulate`"
        )
    nodes = json.loads(Path(manifest).read_text(encoding="utf-8"))["nodes"]
    index = int(node_config["partition-id"])  # type: ignore[call-overload]
    if index >= len(nodes):
        raise NodeSettingsError(f"{manifest}: no node for partition {index} ({len(nodes)} listed)")
    return NodeSettings.from_mapping(nodes[index], manifest)
