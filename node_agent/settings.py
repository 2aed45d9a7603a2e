"""Where a node finds its site, data, keys and broker.

Deployment: from the SuperNode's node config (`--node-config "site='apec' data-dir='…'"`).
Simulation: the Flower simulation engine only gives each virtual node a partition id, so
`r2dde simulate` writes a manifest (partition id → site settings) and names it in
`R2DDE_SIMULATION_MANIFEST`; the settings never come from the coordinator's messages, so a
coordinator cannot make a node read another site's data.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

MANIFEST_ENV = "R2DDE_SIMULATION_MANIFEST"


class NodeSettingsError(ValueError):
    """The node's own configuration is incomplete or inconsistent."""


@dataclass(frozen=True)
class NodeSettings:
    site: str
    data_dir: Path
    keys_dir: Path | None = None
    broker_url: str | None = None
    site_policy: Path | None = None  # the site's own policy document (deployment: `--site-policy`)
    #: Where the node keeps its own records (the rounds it trained per study); default <data-dir>/.r2dde-node.
    state_dir: Path | None = None
    #: Tests and debugging only: seeds the node's DP randomness so runs repeat. A run with it is NOT
    #: private — whoever learns the seed can subtract the noise — and the node reports ε = ∞ for it.
    reproducible_seed: int | None = None

    @classmethod
    def from_mapping(cls, config: Mapping[str, object], origin: str) -> NodeSettings:
        missing = [k for k in ("site", "data-dir") if not config.get(k)]
        if missing:
            raise NodeSettingsError(f"{origin}: missing {', '.join(missing)} in the node configuration")
        keys = config.get("keys-dir")
        broker = config.get("broker-url")
        policy = config.get("site-policy")
        state = config.get("state-dir")
        seed = config.get("reproducible-seed")
        if seed not in (None, "") and not str(seed).lstrip("-").isdigit():
            raise NodeSettingsError(f"{origin}: reproducible-seed must be an integer, got {seed!r}")
        return cls(
            site=str(config["site"]),
            data_dir=Path(str(config["data-dir"])),
            keys_dir=Path(str(keys)) if keys else None,
            broker_url=str(broker) if broker else None,
            site_policy=Path(str(policy)) if policy else None,
            state_dir=Path(str(state)) if state else None,
            reproducible_seed=int(str(seed)) if seed not in (None, "") else None,
        )

    @property
    def state_folder(self) -> Path:
        return self.state_dir if self.state_dir is not None else self.data_dir / ".r2dde-node"

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
