"""The embedded broker over real loopback HTTP: the path Flower's Ray workers take."""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from broker_support import DELTA, dpsgd, study_request

from trust_broker.accounting import LedgerAccountant
from trust_broker.audit.verify import verify_export
from trust_broker.client import BrokerClient, BrokerUnavailable, BudgetRefused
from trust_broker.embedded import EmbeddedBroker
from trust_broker.grants import verify_grant
from trust_broker.provision import ProvisionedFolder
from trust_broker.roles import Role


def test_embedded_broker_serves_a_study_over_loopback_and_stops_cleanly(
    folder: ProvisionedFolder, tmp_path: Path
) -> None:
    accountant = LedgerAccountant()
    with EmbeddedBroker(f"sqlite:///{tmp_path / 'b.db'}", folder.root) as embedded:
        url = embedded.url
        assert url.startswith("http://127.0.0.1:")
        # 50 requests race over HTTP for a study budget with room for exactly 2 reservations
        eps = [accountant.epsilon([dpsgd()] * k, DELTA) for k in (2, 3)]
        region = BrokerClient.from_folder(folder.root, Role.REGION, base_url=url)
        grant = region.request_study(study_request("s-live", target_epsilon=sum(eps) / 2, sites=("apec",)))
        assert verify_grant(grant.grant, folder.broker_public_key(), site="apec").study_id == "s-live"
        barrier = threading.Barrier(50)

        def race(i: int) -> bool:
            with BrokerClient.from_folder(folder.root, Role.NODE, "apec", base_url=url) as node:
                barrier.wait(timeout=30)
                try:
                    node.reserve(
                        request_id=f"r{i}",
                        study_id="s-live",
                        dataset="parcours",
                        mechanism=dpsgd(),
                        examples=9,
                    )
                except BudgetRefused:
                    return False
                return True

        with ThreadPoolExecutor(max_workers=50) as pool:
            assert sum(pool.map(race, range(50))) == 2
        auditor = BrokerClient.from_folder(folder.root, Role.AUDITOR, base_url=url)
        report = verify_export(auditor.export_audit(tmp_path / "audit.jsonl"))
        assert report.ok, report.problems
    port = int(url.rsplit(":", 1)[1])
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    with pytest.raises(BrokerUnavailable):
        BrokerClient.from_folder(folder.root, Role.REGION, base_url=url, timeout=2).health()
