"""People of the synthetic population who objected (GDPR art. 21) before the study.

A partner registers an objection at its node, which sends only the person's linkage pseudonym to
the broker's opt-out registry; because the pseudonym is keyed by the linkage key every node
shares, the other partners that know the same person drop their records too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from node_agent.sources import Validate, load_file
from tasks.schema import validate_parcours


def choose_objectors(
    parcours_file: Path,
    site: str,
    count: int,
    seed: int,
    validate: Validate = validate_parcours,
) -> list[str]:
    """The NIRs of `count` people registered at `site`, drawn with `seed` (they stay on the node)."""
    frame = load_file(parcours_file, site, validate)
    nirs = sorted(set(frame["nir"]))
    rng = np.random.default_rng(seed)
    return [nirs[i] for i in rng.choice(len(nirs), size=min(count, len(nirs)), replace=False)]


def register_objections(
    keys_root: Path, broker_url: str, site: str, nirs: list[str], linkage_key_path: Path
) -> int:
    """What the site's node does for each objection: pseudonymize, then post the pseudonym."""
    from anonymization.keys import load_linkage_key
    from anonymization.pseudonyms import Pseudonymizer
    from trust_broker.client import BrokerClient
    from trust_broker.roles import Role

    pseudonymizer = Pseudonymizer(load_linkage_key(linkage_key_path))
    with BrokerClient.from_folder(keys_root, Role.NODE, site, base_url=broker_url) as node:
        for nir in nirs:
            node.add_opt_out(pseudonymizer.pseudonymize("nir", nir))
    return len(nirs)
