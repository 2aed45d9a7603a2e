"""Aggregation strategies by name (Flower's own message-based strategies), and the study wrapper
that watches every reply: which site answered, what it spent, who declined and why."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAdam, FedAvg, FedAvgM, FedMedian, FedTrimmedAvg, FedYogi, Strategy

from contracts.records import AGGREGATION_WEIGHT, ARRAYS, INSTRUCTIONS

from .journal import StudyJournal


class StudyAborted(RuntimeError):
    """Fewer sites than the study's minimum answered a round: stop cleanly, keep the report."""


StrategyFactory = Callable[..., Strategy]

STRATEGIES: dict[str, StrategyFactory] = {
    "fedavg": FedAvg,
    "fedavgm": FedAvgM,
    "fedmedian": FedMedian,
    "fedtrimmedavg": FedTrimmedAvg,
    "fedadam": FedAdam,
    "fedyogi": FedYogi,
}


def build_strategy(name: str, *, fraction_train: float, min_sites: int, available: int) -> Strategy:
    try:
        factory = STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; known: {', '.join(sorted(STRATEGIES))}") from None
    return factory(
        fraction_train=fraction_train,
        fraction_evaluate=1.0,
        min_train_nodes=min_sites,
        min_evaluate_nodes=min_sites,
        min_available_nodes=available,
        weighted_by_key=AGGREGATION_WEIGHT,  # batches per epoch (1/q): no record count leaves a node
        arrayrecord_key=ARRAYS,
        configrecord_key=INSTRUCTIONS,
    )


class JournaledStrategy(Strategy):
    """Delegates to an aggregation strategy; records each site's reply in the study journal."""

    def __init__(
        self, inner: Strategy, journal: StudyJournal, min_sites: int, evaluated_rounds: Iterable[int] = ()
    ) -> None:
        self.inner = inner
        self.journal = journal
        self.min_sites = min_sites
        #: Each evaluation is a DP release the grant pays for: only these rounds ask for one.
        self.evaluated_rounds = frozenset(evaluated_rounds)

    def summary(self) -> None:
        self.inner.summary()

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        return self.journal.sent(list(self.inner.configure_train(server_round, arrays, config, grid)))

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        answered = self.journal.record_train(server_round, replies)
        if answered < self.min_sites:
            raise StudyAborted(
                f"round {server_round}: {answered} site(s) trained, below the minimum of {self.min_sites}"
            )
        return self.inner.aggregate_train(server_round, replies)

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        if server_round not in self.evaluated_rounds:
            return []
        return self.journal.sent(list(self.inner.configure_evaluate(server_round, arrays, config, grid)))

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        """The pooled holdout quality of the round, from the sites' noisy releases (not an average
        of per-site metrics: the node sends cells, and the coordinator pools them)."""
        self.journal.record_evaluate(server_round, list(replies))
        quality = self.journal.pooled_quality(server_round)
        return MetricRecord({k: v["value"] for k, v in quality.items()}) if quality else None
