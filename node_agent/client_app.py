"""The Flower ClientApp a partner runs: one handler per message type, each declining cleanly.

Order inside a training round (DESIGN.md, "At the node"): admit (grant, local policy) → load,
anonymize, filter → reserve the round's ε at the broker → DP-SGD → commit → reply with the
update and metrics only.

Flower's deployment engine starts a fresh process for every message, so this module imports only
what every message needs: torch and Opacus load in the train and evaluate paths, Presidio and spaCy
in the anonymization layer when free-text notes are granted (tests/node_agent/test_cold_start.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp

from contracts.instructions import InstructionError, RecordError
from contracts.records import (
    EvaluateReply,
    RoundMessage,
    TrainReply,
    load_model,
    model_arrays,
    read_instructions,
    round_arrays,
)
from tasks.flower_logs import plain_unless_terminal
from tasks.metrics import RECORD_CELLS, HoldoutRelease, holdout_statistics, suppress_small_cells

from .declined import NodeDeclined, answer_or_decline
from .dp_plan import epsilon_spent
from .dp_release import NodeRandomness, release
from .gate import StandaloneGate, StudyGate
from .round_record import RoundRecord
from .settings import NodeSettings
from .site_study import SiteStudy, open_site_study

if TYPE_CHECKING:
    import torch

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
plain_unless_terminal()  # Flower colours every line, also into log files

app = ClientApp()


@app.train()
def train(msg: Message, context: Context) -> Message:
    return _answer(msg, context, _train)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    return _answer(msg, context, _evaluate)


@app.query()
def query(msg: Message, context: Context) -> Message:
    """A statistics query: noisy aggregates of the site's records (node_agent.query_handler)."""
    from .query_handler import reply_to_query

    return reply_to_query(msg, context, _gate)


@app.query("company_clustering")  # message type "query.company_clustering" (use case 2)
def company_clustering(msg: Message, context: Context) -> Message:
    from .company_study import answer_company_query

    return answer_company_query(msg, context)


Handler = Callable[[SiteStudy, Message, Context], RecordDict]


def _answer(msg: Message, context: Context, handler: Handler) -> Message:
    def answer(settings: NodeSettings) -> RecordDict:
        instructions = read_instructions(msg.content)
        import torch  # only train and evaluate messages come here: they need it

        torch.set_num_threads(1)  # one core per node: simulated nodes share the machine
        study = open_site_study(settings, instructions, _gate)
        return handler(study, msg, context)

    return answer_or_decline(msg, context, answer)


def _gate(settings: NodeSettings) -> StudyGate:
    if settings.broker_url is None:
        return StandaloneGate()
    from .broker_gate import BrokerGate

    return BrokerGate(settings)


def _model(study: SiteStudy, msg: Message) -> torch.nn.Module:
    from tasks.models import mlp

    model = mlp(study.data.x_train.shape[1], study.spec.hidden)
    try:
        load_model(model, round_arrays(msg.content), "the round message")
    except RecordError as exc:  # another model than the study's: the coordinator's error, refused as such
        raise InstructionError(str(exc)) from None
    return model


def _model_task(study: SiteStudy) -> None:
    """A statistics or clustering grant trains no model: its grant's training bounds were never
    checked (``TaskSpec.trains``), so no train or evaluate message runs under it."""
    if not study.spec.trains:
        raise NodeDeclined(
            "grant.task", f"task {study.spec.name} trains no model: no train or evaluate message"
        )


def _train(study: SiteStudy, msg: Message, context: Context) -> RecordDict:
    from .training import train_round

    _model_task(study)
    server_round = RoundMessage.from_record(msg.content).server_round
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
        reservation = study.gate.reserve(request_id, mechanism, examples=study.size.examples)
    except BaseException:
        record.unclaim(server_round)  # refused or unreachable: nothing trained, the round may come again
        raise
    randomness = NodeRandomness.for_node(study.settings.reproducible_seed, server_round)
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
    # The exact counts stay in the node's own round record, for the partner's DPO; the broker's
    # audit trail gets the opt-out list position applied and a commitment to them, never the counts.
    commitment = record.keep_counts(
        server_round,
        {
            "records_used": len(y),
            "opt_outs_applied": int(study.data.counts.get("opt_outs_applied", 0)) + newly_opted_out,  # type: ignore[call-overload]
        },
    )
    study.gate.report({"round": server_round, "reservation_id": reservation, "counts_commitment": commitment})
    private = plan.private and randomness.private
    # Neither the training loss nor any count of the site's records leaves with the update (issue
    # 10, findings 5 and 10): FedAvg weighs each site by its plan's batches per epoch (1/q), and the
    # plan rests on the site's released size (node_agent.site_size), not on its exact count.
    return TrainReply(
        site=study.settings.site,
        arrays=model_arrays(model),
        aggregation_weight=float(plan.steps_per_epoch),  # 1/q, from the released size only
        epsilon=epsilon_spent([*history, study.size.step()], plan.delta) if private else float("inf"),
        delta=plan.delta,
        noise_multiplier=plan.noise_multiplier,
        sample_rate=plan.sample_rate,
        steps=outcome.steps,
        target_epsilon=study.terms.target_epsilon,
        randomness="secret" if randomness.private else "reproducible (node setting): not private",
    ).to_record()


def _remembered_rounds(context: Context, key: str) -> list[int]:
    """The rounds this Flower run trained, as its context remembers them."""
    if key not in context.state:
        return []
    return [int(r) for r in context.state[key]["rounds"]]  # type: ignore[union-attr]


def _evaluate(study: SiteStudy, msg: Message, context: Context) -> RecordDict:
    """One evaluation of the sent model on the site's holdout, released as a DP statistic only.

    Whatever model the coordinator sends (a crafted one can turn a score histogram into the
    holdout's table), the answer is one Gaussian release of counts of bounded sensitivity,
    counted against the grant's number of evaluations, reserved at the broker before the noise is
    drawn and committed after, with small cells suppressed here, on the noisy values.
    """
    from .training import predict

    _model_task(study)
    study.gate.still_granted()
    model = _model(study, msg)  # a model that does not load costs no evaluation
    granted = study.terms.evaluation.evaluations
    number = study.evaluations().claim(granted)  # NodeDeclined grant.evaluations past the grant
    assert study.layout is not None
    x, y, groups = study.holdout_set()
    n_train = study.training_count()
    loaded = int(study.data.counts.get("records_loaded", n_train + len(y)))  # type: ignore[call-overload]
    records = dict(zip(RECORD_CELLS, (n_train, len(y), max(loaded - n_train - len(y), 0)), strict=True))
    exact = holdout_statistics(study.layout, y, predict(model, x), groups, [records[c] for c in RECORD_CELLS])
    spec = study.evaluation
    if spec is None and study.plan.private:
        raise NodeDeclined("dp.evaluation", "no Gaussian release is calibrated for this study's evaluations")
    if spec is None:  # non-private benchmark training (ε = ∞): exact, and the report says so
        noisy, noise_std, epsilon = exact, 0.0, float("inf")
    else:
        mechanism = spec.mechanism()
        request_id = f"{study.instructions.study_id}:{study.settings.site}:evaluation-{number}"
        reservation = study.gate.reserve(request_id, mechanism, examples=study.size.examples)
        try:
            noisy = np.array([v.value for v in release(exact, spec, study.randomness)])
        except BaseException:
            study.gate.release(reservation)  # nothing left the node: the evaluation's ε is given back
            raise
        study.gate.commit(reservation, mechanism)
        noise_std = spec.noise_std
        # Every round the plan allows, composed with the evaluations released so far: what the
        # site's account holds for this study once training is over (the evaluation comes last).
        plan = study.plan
        epsilon = epsilon_spent(
            [
                (plan.noise_multiplier, plan.sample_rate, plan.steps_per_round * plan.rounds),
                (spec.noise_multiplier, 1.0, number),
                study.size.step(),
            ],
            plan.delta,
        )
        if study.settings.reproducible_seed is not None:  # its training was not private (node setting)
            epsilon = float("inf")
    answer = HoldoutRelease(
        layout=study.layout,
        values=tuple(suppress_small_cells(study.layout, noisy, study.terms.min_cell_size)),
        noise_std=noise_std,
        evaluation=number,
        evaluations_granted=granted,
        epsilon=epsilon,
        delta=study.plan.delta,
        min_cell=study.terms.min_cell_size,
    )
    return EvaluateReply(study.settings.site, answer).to_record()
