"""What happened in a study, round by round and site by site — the material of its report."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from flwr.app import Message

from tasks.metrics import HoldoutRelease, PooledHoldout, pooled_fairness, pooled_quality

_DECLINED = re.compile(r"site (?P<site>\S+) declined — (?P<why>.*)", re.DOTALL)


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
    failures: list[str] = field(default_factory=list)


#: Called after each round's evaluation with (round, sites that trained): drives progress displays.
RoundListener = Callable[[int, list[str]], None]


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
        self.rounds: dict[int, dict[str, object]] = defaultdict(dict)
        self.releases: dict[int, dict[str, HoldoutRelease]] = defaultdict(dict)

    def _site_of(self, msg: Message) -> str:
        if msg.has_error():
            match = _DECLINED.match(msg.error.reason or "")
            if match:
                return match["site"]
            # An unreachable node's error reply is written by the SuperLink, not by the node:
            # name the site through the instruction it answers.
            node = self.addressees.get(msg.metadata.reply_to_message_id, msg.metadata.src_node_id)
            return self.node_sites.get(node, f"node-{node}")
        site = str(msg.content["site"]["site"])
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
        reason = msg.error.reason or "no reason given"
        match = _DECLINED.match(reason)
        if match:
            if match["why"] not in record.declined:
                record.declined.append(match["why"])
        else:
            record.failures.append(f"round {server_round} ({phase}): {reason[:300]}")

    def record_train(self, server_round: int, replies: list[Message]) -> int:
        answered = []
        for msg in replies:
            if msg.has_error():
                self._failure(server_round, msg, "train")
                continue
            site = self._site_of(msg)
            metrics, info = msg.content["metrics"], msg.content["site"]
            record = self.sites.setdefault(site, SiteRecord())
            record.epsilon = max(record.epsilon, float(metrics["epsilon"]))
            record.delta = float(metrics["delta"])
            record.noise_multiplier = float(metrics["noise-multiplier"])
            # What the several-sites worst case composes (report.several_sites_epsilon).
            record.sample_rate = float(metrics.get("sample-rate", 1.0))
            record.steps_per_round = int(metrics.get("steps", 0))
            record.target_epsilon = float(info["target-epsilon"])
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
            release = HoldoutRelease.from_json(str(msg.content["site"]["evaluation"]))
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

    def pooled_fairness(self) -> dict[str, dict[str, object]]:
        """Group rates and gaps from the last evaluated round's pooled cells, with their intervals."""
        evaluated = [r for r, releases in self.releases.items() if releases]
        pooled = self.pooled(max(evaluated)) if evaluated else None
        return pooled_fairness(pooled) if pooled is not None else {}
