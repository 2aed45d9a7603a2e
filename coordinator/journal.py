"""What happened in a study, round by round and site by site — the material of its report."""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from flwr.app import Message

from contracts.decline import Decline
from contracts.records import EvaluateReply, TrainReply, reply_site
from tasks.metrics import HoldoutRelease, PooledHoldout, pooled_fairness, pooled_quality


@dataclass
class SiteRecord:
    """One site's part in the study as the coordinator saw it (updates and metrics only)."""

    epsilon: float = 0.0
    delta: float = 0.0
    target_epsilon: float = float("nan")
    noise_multiplier: float = 0.0
    sample_rate: float = 0.0
    steps_per_round: int = 0
    rounds_trained: list[int] = field(default_factory=list)
    #: The site's last evaluation, as released: noisy cells, some suppressed at the node.
    evaluation: HoldoutRelease | None = None
    declined: list[str] = field(default_factory=list)
    #: Problems with the site's own file (schema): to fix at the partner, not a policy refusal.
    data_errors: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.rounds_trained:
            return "trained"
        if self.declined:
            return "declined"
        if self.data_errors:
            return "data error"
        return "failed"


#: Called after each round's evaluation with (round, sites that trained): drives progress displays.
RoundListener = Callable[[int, list[str]], None]

PROGRESS_FILE = "progress.json"


class ProgressFile:
    """A RoundListener that leaves the last finished round in the study folder (`progress.json`), so
    `r2dde coordinator run-study` can show rounds as they end and say how far a lost run got."""

    def __init__(self, folder: Path, rounds_planned: int) -> None:
        self.path = Path(folder) / PROGRESS_FILE
        self.rounds_planned = rounds_planned

    def __call__(self, server_round: int, trained: list[str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "round": server_round,
            "rounds_planned": self.rounds_planned,
            "trained": sorted(trained),
            "at": time.time(),
        }
        partial = self.path.with_suffix(".tmp")
        partial.write_text(json.dumps(record), encoding="utf-8")
        os.replace(partial, self.path)  # a reader never sees half a file


def read_progress(folder: Path) -> dict[str, object] | None:
    """The last round `ProgressFile` recorded in ``folder``, or None (none yet, or another host)."""
    try:
        return dict(json.loads((Path(folder) / PROGRESS_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


class StudyJournal:
    def __init__(
        self,
        expected_sites: tuple[str, ...],
        on_round: RoundListener | None = None,
        node_sites: dict[int, str] | None = None,
    ) -> None:
        self.on_round = on_round
        self.sites: dict[str, SiteRecord] = {s: SiteRecord() for s in expected_sites}
        self.node_sites: dict[int, str] = dict(node_sites or {})
        self._sent: list[Message] = []
        self.rounds: dict[int, dict[str, list[str]]] = defaultdict(dict)
        self.releases: dict[int, dict[str, HoldoutRelease]] = defaultdict(dict)

    def _site_of(self, msg: Message) -> str:
        if msg.has_error():
            decline = Decline.from_error(msg.error)
            if decline is not None:
                return decline.site
            # An unreachable node's error reply is written by the SuperLink, not by the node:
            # name the site through the instruction it answers.
            node = self.addressees.get(msg.metadata.reply_to_message_id, msg.metadata.src_node_id)
            return self.node_sites.get(node, f"node-{node}")
        site = reply_site(msg.content)
        self.node_sites[msg.metadata.src_node_id] = site
        return site

    def sent(self, messages: list[Message]) -> list[Message]:
        """Remember the instructions sent; Flower gives them their ids when it pushes them."""
        self._sent = messages
        return messages

    @property
    def addressees(self) -> dict[str, int]:
        return {m.metadata.message_id: m.metadata.dst_node_id for m in self._sent if m.metadata.message_id}

    def _failure(self, server_round: int, msg: Message, phase: str) -> None:
        site = self._site_of(msg)
        record = self.sites.setdefault(site, SiteRecord())
        decline = Decline.from_error(msg.error)
        if decline is not None and decline.kind != "failed":
            notes = record.declined if decline.kind == "declined" else record.data_errors
            if decline.why not in notes:
                notes.append(decline.why)
        else:
            why = decline.why if decline is not None else (msg.error.reason or "no reason given")
            record.failures.append(f"round {server_round} ({phase}): {why[:300]}")

    def record_train(self, server_round: int, replies: list[Message]) -> int:
        answered = []
        for msg in replies:
            if msg.has_error():
                self._failure(server_round, msg, "train")
                continue
            site = self._site_of(msg)
            reply = TrainReply.from_record(msg.content)
            record = self.sites.setdefault(site, SiteRecord())
            record.epsilon = max(record.epsilon, reply.epsilon)
            record.delta = reply.delta
            record.noise_multiplier = reply.noise_multiplier
            # What the several-sites worst case composes (report.several_sites_epsilon).
            record.sample_rate = reply.sample_rate
            record.steps_per_round = reply.steps
            record.target_epsilon = reply.target_epsilon
            record.rounds_trained.append(server_round)
            answered.append(site)
        silent = sorted(set(self.node_sites.values()) - {self._site_of(m) for m in replies})
        self.rounds[server_round]["trained"] = sorted(answered)
        self.rounds[server_round]["no_reply"] = silent
        return len(answered)

    def record_evaluate(self, server_round: int, replies: list[Message]) -> None:
        for msg in replies:
            if msg.has_error():
                self._failure(server_round, msg, "evaluate")
                continue
            site = self._site_of(msg)
            record = self.sites.setdefault(site, SiteRecord())
            release = EvaluateReply.from_record(msg.content).release
            record.evaluation = release
            record.epsilon = max(record.epsilon, release.epsilon)  # training and evaluations composed
            self.releases[server_round][site] = release
        self.rounds[server_round]["evaluated"] = sorted(
            self._site_of(m) for m in replies if not m.has_error()
        )
        if self.on_round is not None:
            self.on_round(server_round, list(self.rounds[server_round].get("trained", [])))

    def pooled(self, server_round: int) -> PooledHoldout | None:
        """Every site's noisy cells of one round's evaluation, summed."""
        return PooledHoldout.of(self.releases.get(server_round, {}))

    def pooled_quality(self, server_round: int) -> dict[str, dict[str, float]]:
        """Pooled AUC, accuracy, log-loss and positive rate with their 95 % intervals (noise only)."""
        pooled = self.pooled(server_round)
        return pooled_quality(pooled) if pooled is not None else {}

    def pooled_score_histogram(self) -> tuple[list[float], list[float]] | None:
        """The last evaluation's pooled noisy score histogram (positive, negative), clipped at 0:
        the calibration counts the autodiagnostic service shows (already DP releases)."""
        evaluated = [r for r, releases in self.releases.items() if releases]
        pooled = self.pooled(max(evaluated)) if evaluated else None
        if pooled is None:
            return None
        bins = pooled.layout.bins
        cells = [max(0.0, float(v)) for v in pooled.values[pooled.layout.slices()["scores"]]]
        return cells[bins:], cells[:bins]

    def pooled_fairness(self) -> dict[str, dict[str, object]]:
        """Group rates and gaps from the last evaluated round's pooled cells, with their intervals."""
        evaluated = [r for r, releases in self.releases.items() if releases]
        pooled = self.pooled(max(evaluated)) if evaluated else None
        return pooled_fairness(pooled) if pooled is not None else {}
