"""A coordinator asking again and again: every release is charged, and the broker stops the site
at the grant's ε (the node's real gate against a real broker on loopback)."""

from __future__ import annotations

import pytest
from flwr.app import ConfigRecord, Context, RecordDict

from coordinator.analytics import QueryStudy
from coordinator.query_grant import request_query_grant, study_request
from node_agent.broker_gate import BrokerGate
from node_agent.declined import NodeDeclined
from node_agent.query_handler import answer_query
from node_agent.settings import NodeSettings
from simulations.usecase3 import generate_formations
from tasks import formations
from tasks.analytics import Measure, QueryAnswer, QueryRequest, QuerySpec
from trust_broker.client import BrokerClient
from trust_broker.embedded import EmbeddedBroker
from trust_broker.provision import provision
from trust_broker.roles import Role

SITES = ("carif_oref", "france_travail")
PURPOSE = "commande_publique_formation"


def test_a_replayed_query_costs_again_and_the_broker_refuses_past_the_grant(tmp_path):
    keys = provision(tmp_path / "keys", SITES)
    generate_formations(tmp_path / "data", seed=3, people=300, sites=SITES)
    spec = QuerySpec(
        id="replay",
        purpose=PURPOSE,
        sites=SITES,
        epsilon=0.5,
        group_by=("sex",),
        measures=(Measure(name="n", kind="count"),),
    )
    with EmbeddedBroker(f"sqlite:///{tmp_path / 'broker.db'}", keys.root) as broker:
        request = study_request("replay-study", PURPOSE, SITES, spec.fields(), spec.epsilon)
        grant = request_query_grant(request, broker_url=broker.url, keys=keys.root)
        study = QueryStudy("replay-study", SITES, tmp_path / "study", grant, request.delta, 0.5, 11)
        settings = NodeSettings(
            site="carif_oref",
            data_dir=tmp_path / "data" / "carif_oref",
            keys_dir=keys.node_dir("carif_oref"),
            broker_url=broker.url,
        )
        context = Context(run_id=1, node_id=1, node_config={}, state=RecordDict(), run_config={})

        def ask(share: float) -> QueryAnswer:
            content = RecordDict(
                {
                    "config": ConfigRecord(study.instructions(formations.TASK).to_config()),
                    "query": ConfigRecord(QueryRequest("again", spec, share).to_config()),
                }
            )
            reply = answer_query(content, context, settings, BrokerGate)
            return QueryAnswer.from_config(reply["answer"])

        first, second = ask(0.5), ask(0.5)  # the same release asked twice is charged twice
        assert second.epsilon > first.epsilon
        assert second.epsilon == pytest.approx(0.5, abs=0.01)
        with pytest.raises(NodeDeclined) as refused:
            ask(0.5)  # a third time would pass the grant's ε
        assert refused.value.rule == "budget.study_cap"
        with BrokerClient.from_folder(keys.root, Role.AUDITOR, base_url=broker.url) as auditor:
            balance = auditor.balance(formations.DATASET, "carif_oref")
        assert balance.epsilon == pytest.approx(0.5, abs=0.01) and balance.reservations == 2
