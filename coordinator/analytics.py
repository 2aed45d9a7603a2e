"""The federated analytics driver: ask every site a query, combine the noisy parts, publish a table.

The coordinator sends ``query`` messages (Flower Message API) with the study's grant, receives
each site's noisy components, adds them across sites (noise variances add), suppresses every
cell whose noisy count does not clear the purpose's minimum cell size with margin, and gives each
released value a 95 % interval that accounts for the DP noise. It never sees a true count.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from flwr.app import Message, MessageType
from flwr.serverapp import Grid

from contracts.decline import Decline
from contracts.instructions import StudyInstructions
from contracts.queries import QueryMessage, QueryReply
from tasks import keysets
from tasks.analytics import Measure, QueryAnswer, QueryRequest, QuerySpec, ReleasePlan, release_plan
from tasks.noisy import NoisyValue, linear_ratio, normal_quantile

log = logging.getLogger(__name__)

LEVEL = 0.95
#: A cell is released only if its noisy count minus this many noise std still reaches the minimum
#: cell size (one-sided 99.99 %): the decision uses noisy counts only, and a cell whose true count
#: is under the minimum is released with probability below 0.01 % (a table has hundreds of cells).
SUPPRESSION_Z = float(normal_quantile(0.9998))


@dataclass(frozen=True)
class QueryStudy:
    """One analytics study as the ServerApp runs it (both engines)."""

    study_id: str
    sites: tuple[str, ...]
    study_dir: Path
    grant: str
    delta: float
    epsilon: float
    min_cell_size: int
    kind: str = "table"  # "table" (one query file) or "usecase3"
    query: str = ""  # QuerySpec JSON (kind "table")
    timeout: float = 600.0
    extra: dict[str, object] = field(default_factory=dict)

    def to_run_config(self) -> dict[str, str]:
        data = {**self.__dict__, "study_dir": str(self.study_dir), "sites": list(self.sites)}
        return {"analytics": json.dumps(data)}

    @classmethod
    def from_run_config(cls, config: Mapping[str, object]) -> QueryStudy:
        data = json.loads(str(config["analytics"]))
        data["study_dir"], data["sites"] = Path(data["study_dir"]), tuple(data["sites"])
        return cls(**data)

    def instructions(self, task: str) -> StudyInstructions:
        return StudyInstructions(
            study_id=self.study_id,
            task=task,
            num_rounds=1,
            local_epochs=1,
            batch_size=1,
            learning_rate=0.0,
            max_grad_norm=1.0,
            target_epsilon=self.epsilon,
            delta=self.delta,
            seed=0,
            fields="",
            grant=self.grant,
        )


@dataclass
class Exchange:
    """What the sites answered to one release: their answers, and who declined with which rule."""

    answers: dict[str, QueryAnswer] = field(default_factory=dict)
    declined: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def ask(
    grid: Grid,
    study: QueryStudy,
    request: QueryRequest,
    *,
    task: str,
    node_sites: dict[int, str] | None = None,
) -> Exchange:
    """Send one ``query`` message to every node and collect the replies (errors name the rule)."""
    content = QueryMessage(study.instructions(task), request).to_record()
    node_ids = list(grid.get_node_ids())
    messages = [
        Message(
            content=content,
            dst_node_id=node,
            message_type=MessageType.QUERY,
        )
        for node in node_ids
    ]
    exchange = Exchange()
    started = time.monotonic()
    replies = list(grid.send_and_receive(messages, timeout=study.timeout))
    exchange.seconds = time.monotonic() - started
    for reply in replies:
        node = reply.metadata.src_node_id
        if reply.has_error():
            decline = Decline.from_error(reply.error)
            if decline is None:
                why = reply.error.reason or "no reason given"
                exchange.declined[(node_sites or {}).get(node, f"node {node}")] = why
            else:
                exchange.declined[decline.site] = decline.sentence()
            continue
        answer = QueryReply.from_record(reply.content).answer
        exchange.answers[answer.site] = answer
    return exchange


def await_sites(grid: Grid, expected: int, grace_s: float = 30.0) -> None:
    deadline = time.monotonic() + grace_s
    while len(list(grid.get_node_ids())) < expected and time.monotonic() < deadline:
        time.sleep(0.2)


# --------------------------------------------------------------------------- combining


@dataclass(frozen=True)
class Combined:
    """Every component summed over the answering sites, with the std of its summed noise."""

    values: dict[str, np.ndarray]
    stds: dict[str, float]

    @classmethod
    def of(cls, answers: Iterable[QueryAnswer]) -> Combined:
        values: dict[str, np.ndarray] = {}
        variances: dict[str, float] = {}
        for answer in answers:
            for name in answer.values:
                values[name] = values.get(name, 0.0) + answer.component(name)
                variances[name] = variances.get(name, 0.0) + answer.noise_std[name] ** 2
        return cls(values, {k: math.sqrt(v) for k, v in variances.items()})

    def margin(self, spec: QuerySpec, keep: tuple[str, ...]) -> tuple[Combined, QuerySpec, ReleasePlan]:
        """The same table by fewer keys: cells summed (post-processing, no extra ε), stds grown."""
        sizes = [len(keysets.key_set_of(k).values()) for k in spec.group_by]  # type: ignore[union-attr]
        dropped = tuple(a for a, k in enumerate(spec.group_by) if k not in keep)
        merged = math.prod(sizes[a] for a in dropped)
        values = {
            name: array.reshape(*sizes, array.shape[1]).sum(axis=dropped).reshape(-1, array.shape[1])
            for name, array in self.values.items()
        }
        stds = {name: std * math.sqrt(merged) for name, std in self.stds.items()}
        smaller = spec.model_copy(update={"group_by": tuple(k for k in spec.group_by if k in keep)})
        return Combined(values, stds), smaller, release_plan(smaller)


def _row(
    group: dict[str, str],
    measure: str,
    value: float | None,
    low: float | None,
    high: float | None,
    suppressed: bool,
) -> dict[str, object]:
    clean = [None if v is None or not math.isfinite(v) else float(v) for v in (value, low, high)]
    return {
        "group": group,
        "measure": measure,
        "value": clean[0],
        "ci_low": clean[1],
        "ci_high": clean[2],
        "suppressed": suppressed,
    }


def _clip(triple: tuple[float, float, float], low: float, high: float) -> tuple[float, float, float]:
    estimate, lower, upper = (float(np.clip(v, low, high)) if math.isfinite(v) else v for v in triple)
    return estimate, lower, upper


def _quantile(
    counts: np.ndarray, std: float, q: float, low: float, high: float
) -> tuple[float, float, float]:
    """Quantile of a noisy histogram over equal bins, and the values where the noisy CDF is q ± z·sd."""
    counts = np.clip(counts, 0.0, None)
    total = counts.sum()
    if total <= 0:
        return math.nan, math.nan, math.nan
    cumulative = np.concatenate([[0.0], np.cumsum(counts)])
    edges = np.linspace(low, high, len(counts) + 1)

    def at(target: float) -> float:
        target = min(max(target, 0.0), total)
        return float(np.interp(target, cumulative, edges))

    estimate = at(q * total)
    k = max(1, int(np.searchsorted(cumulative, q * total)))
    half = normal_quantile(LEVEL) * std * math.sqrt(k)  # the noise of the cumulative count there
    return estimate, at(q * total - half), at(q * total + half)


def combine(
    spec: QuerySpec, answers: Iterable[QueryAnswer], min_cell_size: int, plan: ReleasePlan | None = None
) -> list[dict[str, object]]:
    """The published table: one row per (cell, measure), suppressed cells without a value."""
    return combine_totals(spec, Combined.of(answers), min_cell_size, plan)


def cell_count(total: Combined, plan: ReleasePlan, i: int) -> NoisyValue:
    """A cell's noisy count: the sum of its bins in the ``cells`` histogram."""
    return NoisyValue(
        float(total.values["cells"][i].sum()), total.stds["cells"] * math.sqrt(len(plan.categories))
    )


def is_suppressed(count: NoisyValue, min_cell_size: int) -> bool:
    """Decided on the noisy count alone: released only when count − z·σ ≥ the minimum cell size."""
    return count.value - SUPPRESSION_Z * count.noise_std < min_cell_size


def combine_totals(
    spec: QuerySpec, total: Combined, min_cell_size: int, plan: ReleasePlan | None = None
) -> list[dict[str, object]]:
    plan = plan or release_plan(spec)
    cells = total.values["cells"]
    z = normal_quantile(LEVEL)
    rows: list[dict[str, object]] = []
    for i, cell in enumerate(plan.cells):
        group = dict(zip(spec.group_by, cell, strict=True))
        bins = cells[i]
        count = cell_count(total, plan, i)
        suppressed = is_suppressed(count, min_cell_size)
        for m in spec.measures:
            for name, triple in _measure(m, i, bins, count, total, plan, z):
                if suppressed:
                    rows.append(_row(group, name, None, None, None, True))
                else:
                    rows.append(_row(group, name, *triple, False))
    return rows


def _categorical(m: Measure, plan: ReleasePlan) -> tuple[str, int]:
    """The categorical field a share or histogram is about, and its position in the release plan."""
    if m.field is None or m.field not in plan.categorical:
        raise ValueError(f"measure {m.name!r} needs a categorical field of the query")
    return m.field, plan.categorical.index(m.field)


def _measure(
    m: Measure, i: int, bins: np.ndarray, count: NoisyValue, total: Combined, plan: ReleasePlan, z: float
) -> Iterator[tuple[str, tuple[float, float, float]]]:
    std_cells = total.stds["cells"]
    ones = np.ones(len(bins))
    stds = np.full(len(bins), std_cells)
    if m.kind == "count":
        low, high = count.interval(LEVEL)
        yield m.name, (count.value, low, high)
    elif m.kind == "share":
        _, position = _categorical(m, plan)
        wanted = "1" if m.equals is None else str(m.equals)
        mask = np.array([c[position] == wanted for c in plan.categories], dtype=float)
        yield m.name, _clip(linear_ratio(bins, stds, mask, ones, LEVEL), 0.0, 1.0)
    elif m.kind == "histogram":
        field_name, position = _categorical(m, plan)
        key_set = keysets.key_set_of(field_name)
        if key_set is None:
            raise ValueError(f"histogram {m.name!r}: field {field_name!r} has no key set")
        for category in key_set.values():
            mask = np.array([c[position] == category for c in plan.categories], dtype=float)
            yield f"{m.name}[{category}]", _clip(linear_ratio(bins, stds, mask, ones, LEVEL), 0.0, 1.0)
    elif m.kind in ("sum", "mean", "expected_share"):
        value = float(total.values[f"sum:{m.name}"][i, 0])
        std = total.stds[f"sum:{m.name}"]
        if m.kind == "sum":
            yield m.name, (value, value - z * std, value + z * std)
            return
        x = np.concatenate([bins, [value]])
        s = np.concatenate([stds, [std]])
        numerator = np.concatenate([np.zeros(len(bins)), [1.0]])
        denominator = np.concatenate([ones, [0.0]])
        low, high = m.clamp if m.clamp else (0.0, 1.0)
        yield m.name, _clip(linear_ratio(x, s, numerator, denominator, LEVEL), low, high)
    elif m.kind == "quantile":
        counts = total.values[f"bins:{m.name}"][i]
        if m.clamp is None:
            raise ValueError(f"quantile {m.name!r} needs its clamp (the range of its bins)")
        low, high = m.clamp
        for q in m.quantiles:
            yield (
                f"{m.name}[q{round(q * 100):02d}]",
                _quantile(counts, total.stds[f"bins:{m.name}"], q, low, high),
            )
