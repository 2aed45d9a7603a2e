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
from .dp_release import NodeRandomness
from .gate import StandaloneGate, StudyGate
from .round_record import RoundRecord
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
    if len(y) == 0:  # every record opted out since the study opened: decline before any reservation
        raise NodeDeclined("dp.plan", "no training record left at this site")
    plan = study.plan
    mechanism = plan.round_mechanism()
    record = RoundRecord(study.settings.state_folder, study.instructions.study_id)
    remembered = f"trained-rounds:{study.instructions.study_id}"
    record.claim(  # before any ε is reserved: a repeated or surplus round is refused here
        server_round,
        rounds_granted=plan.rounds,
        mechanism=mechanism,
        target_epsilon=plan.target_epsilon,
        delta=plan.delta,
        remembered=_remembered_rounds(context, remembered),
    )
    request_id = f"{study.instructions.study_id}:{study.settings.site}:round-{server_round}"
    try:
        reservation = study.gate.reserve(request_id, mechanism, examples=len(y))
    except BaseException:
        record.unclaim(server_round)  # refused or unreachable: nothing trained, the round may come again
        raise
    randomness = _randomness(study.settings, server_round)
    try:
        outcome = train_round(
            model, x, y, plan, learning_rate=study.instructions.learning_rate, randomness=randomness
        )
    except Exception:
        # Nothing left the node: give the round's ε back, keep the round claimed (never retrained).
        record.settle(server_round, trained=False)
        study.gate.release(reservation)
        raise
    study.gate.commit(reservation, mechanism)
    history = record.settle(server_round, trained=True)
    context.state[remembered] = ConfigRecord(
        {"rounds": [*_remembered_rounds(context, remembered), server_round]}
    )
    study.gate.report(
        {
            "round": server_round,
            "records_used": len(y),
            "opt_outs_applied": int(study.data.counts.get("opt_outs_applied", 0)) + newly_opted_out,  # type: ignore[call-overload]
            "reservation_id": reservation,
        }
    )
    private = plan.private and randomness.private
    # The training loss is not a DP release: it stays at the node (issue 10, finding 5).
    metrics = MetricRecord(
        {
            "num-examples": len(y),
            "epsilon": epsilon_spent(history, plan.delta) if private else float("inf"),
            "delta": plan.delta,
            "noise-multiplier": plan.noise_multiplier,
            "sample-rate": plan.sample_rate,
            "steps": outcome.steps,
        }
    )
    site = ConfigRecord(
        {
            "site": study.settings.site,
            "target-epsilon": study.terms.target_epsilon,
            "opted-out-since-start": newly_opted_out,
            "counts": json.dumps(study.data.counts, default=str),
            "randomness": "secret" if randomness.private else "reproducible (node setting): not private",
        }
    )
    return RecordDict({"arrays": ArrayRecord(model.state_dict()), "metrics": metrics, "site": site})


def _randomness(settings: NodeSettings, server_round: int) -> NodeRandomness:
    """Secret to the node unless its own settings ask for reproducible runs (then not private)."""
    if settings.reproducible_seed is None:
        return NodeRandomness()
    return NodeRandomness(reproducible_seed=settings.reproducible_seed * 1000 + server_round)


def _remembered_rounds(context: Context, key: str) -> list[int]:
    """The rounds this Flower run trained, as its context remembers them."""
    if key not in context.state:
        return []
    return [int(r) for r in context.state[key]["rounds"]]  # type: ignore[union-attr]


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
