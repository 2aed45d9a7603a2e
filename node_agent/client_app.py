"""The Flower ClientApp a partner runs: one handler per message type, each declining cleanly.

Order inside a training round (DESIGN.md, "At the node"): admit (grant, local policy) → load,
anonymize, filter → reserve the round's ε at the broker → DP-SGD → commit → reply with the
update and metrics only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Error, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from tasks.instructions import InstructionError, StudyInstructions
from tasks.metrics import binary_metrics, group_rates, score_histograms
from tasks.models import mlp

from .declined import NodeDeclined
from .dp_plan import epsilon_spent
from .gate import StandaloneGate, StudyGate
from .settings import NodeSettings, NodeSettingsError, resolve
from .site_study import SiteStudy, open_site_study
from .training import predict, train_round

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
#: Error code of a reply in which the site declines (Flower reserves small codes for itself).
DECLINED = 100

app = ClientApp()


@app.train()
def train(msg: Message, context: Context) -> Message:
    return _answer(msg, context, _train)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    return _answer(msg, context, _evaluate)


@app.query("company_clustering")  # message type "query.company_clustering" (use case 2)
def company_clustering(msg: Message, context: Context) -> Message:
    from .company_study import answer_company_query

    return answer_company_query(msg, context)


Handler = Callable[[SiteStudy, Message, Context], RecordDict]


def _answer(msg: Message, context: Context, handler: Handler) -> Message:
    site = str(context.node_config.get("site", f"partition {context.node_config.get('partition-id', '?')}"))
    try:
        settings = resolve(context.node_config)
        site = settings.site
        instructions = StudyInstructions.from_config(msg.content["config"])
        torch.set_num_threads(1)  # one core per node: simulated nodes share the machine
        study = open_site_study(settings, instructions, _gate)
        return Message(handler(study, msg, context), reply_to=msg)
    except NodeDeclined as declined:
        return Message(Error(code=DECLINED, reason=declined.reason(site)), reply_to=msg)
    except (NodeSettingsError, InstructionError) as exc:
        return Message(
            Error(code=DECLINED, reason=f"site {site} declined — rule node.config: {exc}"), reply_to=msg
        )


def _gate(settings: NodeSettings) -> StudyGate:
    if settings.broker_url is None:
        return StandaloneGate()
    from .broker_gate import BrokerGate

    return BrokerGate(settings)


def _model(study: SiteStudy, msg: Message) -> torch.nn.Module:
    model = mlp(study.data.x_train.shape[1], study.spec.hidden)
    model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    return model


def _train(study: SiteStudy, msg: Message, context: Context) -> RecordDict:
    server_round = int(msg.content["config"]["server-round"])
    study.gate.still_granted()  # a grant revoked or expired since admission stops this site now
    model = _model(study, msg)
    x, y, newly_opted_out = study.training_set()
    mechanism = study.plan.round_mechanism()
    request_id = f"{study.instructions.study_id}:{study.settings.site}:round-{server_round}"
    reservation = study.gate.reserve(request_id, mechanism, examples=len(y))
    outcome = train_round(
        model,
        x,
        y,
        study.plan,
        learning_rate=study.instructions.learning_rate,
        seed=study.instructions.seed * 1000 + server_round,
    )
    study.gate.commit(reservation, mechanism)
    study.gate.report(
        {
            "round": server_round,
            "records_used": len(y),
            "opt_outs_applied": int(study.data.counts.get("opt_outs_applied", 0)) + newly_opted_out,  # type: ignore[call-overload]
            "reservation_id": reservation,
        }
    )
    history = _record_round(context, study)
    epsilon = epsilon_spent(history, study.plan.delta) if study.plan.private else float("inf")
    metrics = MetricRecord(
        {
            "num-examples": len(y),
            "train-loss": outcome.mean_loss,
            "epsilon": epsilon,
            "delta": study.plan.delta,
            "noise-multiplier": study.plan.noise_multiplier,
            "sample-rate": study.plan.sample_rate,
            "steps": outcome.steps,
        }
    )
    site = ConfigRecord(
        {
            "site": study.settings.site,
            "target-epsilon": study.terms.target_epsilon,
            "opted-out-since-start": newly_opted_out,
            "counts": json.dumps(study.data.counts, default=str),
        }
    )
    return RecordDict({"arrays": ArrayRecord(model.state_dict()), "metrics": metrics, "site": site})


def _record_round(context: Context, study: SiteStudy) -> list[tuple[float, float, int]]:
    """This study's mechanisms at this site so far, kept in the node's Flower context."""
    key = f"dp-history:{study.instructions.study_id}"
    if key not in context.state:
        context.state[key] = ConfigRecord({"sigma": [], "q": [], "steps": []})
    record = context.state[key]
    record["sigma"] = [*record["sigma"], study.plan.noise_multiplier]
    record["q"] = [*record["q"], study.plan.sample_rate]
    record["steps"] = [*record["steps"], study.plan.steps_per_round]
    return list(zip(record["sigma"], record["q"], record["steps"], strict=True))


def _evaluate(study: SiteStudy, msg: Message, context: Context) -> RecordDict:
    model = _model(study, msg)
    scores = predict(model, study.data.x_test)
    metrics = binary_metrics(study.data.y_test, scores)
    del metrics["auc"]  # undefined on a one-class holdout; the coordinator pools the histograms instead
    fairness = {
        attribute: group_rates(study.data.y_test, scores, groups)
        for attribute, groups in study.data.groups_test.items()
    }
    return RecordDict(
        {
            "metrics": MetricRecord({"num-examples": len(study.data.y_test), **metrics}),
            "site": ConfigRecord(
                {
                    "site": study.settings.site,
                    "fairness": json.dumps(fairness),
                    "roc": json.dumps(score_histograms(study.data.y_test, scores)),
                }
            ),
        }
    )
