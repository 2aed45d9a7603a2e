"""Federated statistics under DP: the query a coordinator sends, what a node computes, what it returns.

A query is a table: measures (count, sum, mean, share, quantiles, histogram, expected share) of
granted fields over cells made by group keys whose values come from public key sets
(``tasks.keysets``). Its **release plan** turns it into *components*, each a vector over the
cells with a known L2 sensitivity when one person is added or removed at one site:

- ``cells``: a histogram over cells × the joint categories of every share/histogram field. One
  person falls in exactly one bin (sensitivity 1); counts, shares and histograms all come from it,
  so a share costs nothing beyond its count.
- ``sum:<measure>``: the clamped sum of a numeric field per cell (sensitivity max(|low|, |high|));
  means divide it by the count, and an expected share sums a model's probability (clamp [0, 1]).
- ``bins:<measure>``: a histogram of a clamped numeric field over equal bins per cell (sensitivity
  1), from which the coordinator reads quantiles.

Each component is one Gaussian release at the same noise multiplier, so the ledger records one
``gaussian`` mechanism with ``count`` = number of components. Pure: no I/O, no randomness.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import formations, keysets
from .record_values import ConfigValue, read_float, read_str

MeasureKind = Literal["count", "sum", "mean", "share", "quantile", "histogram", "expected_share"]
NEEDS_CLAMP = frozenset({"sum", "mean", "quantile"})
#: Largest number of noisy values one query may ask a node for.
MAX_VALUES = 200_000


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Filter(_Model):
    """Keep records whose ``field`` is one of ``in`` (categorical/binary) or within ``between``."""

    field: str
    in_: tuple[str, ...] | None = Field(default=None, alias="in")
    between: tuple[float, float] | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_test(self) -> Filter:
        if (self.in_ is None) == (self.between is None):
            raise ValueError("a filter needs exactly one of `in` or `between`")
        return self


class ProfileModel(_Model):
    """A logistic model of a binary outcome on categorical profile fields (main effects).

    Set by the coordinator from an earlier DP release (use case 3's expected rate); the node only
    evaluates it, and whatever its coefficients, each person's probability lies in [0, 1], so the
    sum it releases has sensitivity 1.
    """

    intercept: float
    coefficients: dict[str, dict[str, float]]

    def probability(self, frame: pd.DataFrame) -> np.ndarray:
        logit = np.full(len(frame), self.intercept, dtype=float)
        for field, table in self.coefficients.items():
            logit += frame[field].astype(str).map(table).fillna(0.0).to_numpy(dtype=float)
        probability: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(logit, -30, 30)))
        return probability


class Measure(_Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    kind: MeasureKind
    field: str | None = None
    clamp: tuple[float, float] | None = None
    #: For a share of a categorical field: the value whose share is asked.
    equals: str | None = None
    quantiles: tuple[float, ...] = (0.5,)
    bins: int = Field(default=24, ge=2, le=200)
    model: ProfileModel | None = None

    @field_validator("clamp")
    @classmethod
    def _ordered(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not (
            math.isfinite(value[0]) and math.isfinite(value[1]) and value[0] < value[1]
        ):
            raise ValueError("clamp must be [low, high] with low < high, both finite")
        return value

    @field_validator("quantiles")
    @classmethod
    def _probabilities(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or any(not 0.0 < q < 1.0 for q in value):
            raise ValueError("quantiles must be probabilities strictly between 0 and 1")
        return value


class QuerySpec(_Model):
    """One table asked of every listed site (the analyst's query file, docs/QUERIES.md)."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=120)
    title: str = ""
    purpose: str
    dataset: str = formations.DATASET
    sites: tuple[str, ...] = Field(min_length=1)
    epsilon: float = Field(gt=0.0, allow_inf_nan=False, description="ε each site spends on this query")
    group_by: tuple[str, ...] = ()
    filters: tuple[Filter, ...] = ()
    measures: tuple[Measure, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> QuerySpec:
        names = [m.name for m in self.measures]
        if len(set(names)) != len(names):
            raise ValueError(f"two measures share a name: {names}")
        return self

    def fields(self) -> tuple[str, ...]:
        """Every source column the query reads (what the grant must cover), in first-use order."""
        used: list[str] = [*self.group_by, *(f.field for f in self.filters)]
        for m in self.measures:
            if m.field:
                used.append(m.field)
            if m.model:
                used.extend(m.model.coefficients)
        sources = [formations.FIELDS[f].source if f in formations.FIELDS else f for f in used]
        return tuple(dict.fromkeys(sources))

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)

    @classmethod
    def from_json(cls, text: str) -> QuerySpec:
        return cls.model_validate_json(text)


@dataclass(frozen=True)
class Problem:
    """One reason a query is refused: the rule, the place in the query (a pydantic-style path), why."""

    rule: str
    path: tuple[str | int, ...]
    detail: str


def check_query(spec: QuerySpec) -> list[Problem]:
    """The rules a query must meet whatever is granted: known fields, public keys, clamp bounds."""
    problems: list[Problem] = []

    def kind(field: str) -> str | None:
        known = formations.FIELDS.get(field)
        return known.kind if known else None

    for i, key in enumerate(spec.group_by):
        if kind(key) is None:
            problems.append(
                Problem("query.field_unknown", ("group_by", i), f"no field {key!r} in {spec.dataset}")
            )
        elif keysets.key_set_of(key) is None:
            problems.append(
                Problem(
                    "query.group_key_public", ("group_by", i), f"{key!r} has no public key set to group by"
                )
            )
    for i, f in enumerate(spec.filters):
        if kind(f.field) is None:
            problems.append(Problem("query.field_unknown", ("filters", i, "field"), f"no field {f.field!r}"))
        elif f.between is not None and kind(f.field) != "numeric":
            problems.append(
                Problem("query.filter", ("filters", i), f"`between` needs a numeric field, not {f.field!r}")
            )
    for i, m in enumerate(spec.measures):
        where = ("measures", i)
        field_kind = kind(m.field) if m.field else None
        if m.kind in ("count", "expected_share"):
            if m.kind == "expected_share" and m.model is None:
                problems.append(Problem("query.model", (*where, "model"), "an expected share needs a model"))
            continue
        if m.field is None:
            problems.append(Problem("query.field_missing", (*where, "field"), f"a {m.kind} needs a field"))
        elif field_kind is None:
            problems.append(Problem("query.field_unknown", (*where, "field"), f"no field {m.field!r}"))
        elif m.kind in NEEDS_CLAMP and field_kind != "numeric":
            problems.append(
                Problem("query.measure_type", (*where, "field"), f"a {m.kind} needs a numeric field")
            )
        elif m.kind in NEEDS_CLAMP and m.clamp is None:
            problems.append(
                Problem(
                    "query.clamp_required", where, f"a {m.kind} of {m.field!r} needs clamp bounds [low, high]"
                )
            )
        elif m.kind == "share" and field_kind == "numeric":
            problems.append(
                Problem(
                    "query.measure_type", (*where, "field"), "a share needs a binary or categorical field"
                )
            )
        elif (
            m.kind in ("share", "histogram")
            and field_kind == "categorical"
            and keysets.key_set_of(m.field) is None
        ):
            problems.append(
                Problem("query.group_key_public", (*where, "field"), f"{m.field!r} has no public key set")
            )
        elif m.kind == "histogram" and field_kind == "numeric":
            problems.append(
                Problem(
                    "query.measure_type",
                    (*where, "field"),
                    "a histogram counts a categorical field; use quantile",
                )
            )
        elif m.kind == "share" and field_kind == "categorical" and m.equals is None:
            problems.append(
                Problem(
                    "query.measure_type", (*where, "equals"), "a share of a categorical field needs `equals`"
                )
            )
    if not problems:
        size = release_plan(spec).size
        if size > MAX_VALUES:
            problems.append(
                Problem("query.too_large", ("group_by",), f"{size} noisy values asked; at most {MAX_VALUES}")
            )
    return problems


# --------------------------------------------------------------------------- release plan


@dataclass(frozen=True)
class Component:
    """One released vector: ``shape`` = cells × bins; ``sensitivity`` = its L2 sensitivity."""

    name: str
    shape: tuple[int, int]
    sensitivity: float


@dataclass(frozen=True)
class ReleasePlan:
    cells: tuple[tuple[str, ...], ...]  # the group cells, from the public key sets
    categorical: tuple[str, ...]  # the fields whose joint categories make the ``cells`` histogram
    categories: tuple[tuple[str, ...], ...]  # their joint categories, in bin order
    components: tuple[Component, ...]

    @property
    def size(self) -> int:
        return sum(c.shape[0] * c.shape[1] for c in self.components)


def _categories(field: str) -> tuple[str, ...]:
    if formations.FIELDS[field].kind == "binary":
        return ("0", "1")
    key_set = keysets.key_set_of(field)
    assert key_set is not None
    return key_set.values()


def release_plan(spec: QuerySpec) -> ReleasePlan:
    group_values = [keysets.key_set_of(k).values() for k in spec.group_by]  # type: ignore[union-attr]
    cells = tuple(itertools.product(*group_values)) if group_values else ((),)
    categorical = tuple(
        dict.fromkeys(m.field for m in spec.measures if m.kind in ("share", "histogram") and m.field)
    )
    categories = tuple(itertools.product(*(_categories(f) for f in categorical)))
    counted = any(m.kind in ("count", "share", "histogram") for m in spec.measures)
    components = [Component("cells", (len(cells), len(categories)), 1.0)] if counted else []
    for m in spec.measures:
        if m.kind in ("sum", "mean"):
            low, high = m.clamp  # type: ignore[misc]
            components.append(Component(f"sum:{m.name}", (len(cells), 1), max(abs(low), abs(high))))
        elif m.kind == "expected_share":
            components.append(Component(f"sum:{m.name}", (len(cells), 1), 1.0))
        elif m.kind == "quantile":
            components.append(Component(f"bins:{m.name}", (len(cells), m.bins), 1.0))
    return ReleasePlan(cells, categorical, categories, tuple(components))


def _keep(frame: pd.DataFrame, spec: QuerySpec) -> np.ndarray:
    keep = np.ones(len(frame), dtype=bool)
    for f in spec.filters:
        column = frame[f.field]
        if f.in_ is not None:
            keep &= column.astype(str).isin(f.in_).to_numpy()
        else:
            low, high = f.between  # type: ignore[misc]
            values = column.astype(float).to_numpy()
            keep &= (values >= low) & (values <= high)
    return keep


def _codes(frame: pd.DataFrame, fields: tuple[str, ...], values: list[tuple[str, ...]]) -> np.ndarray:
    """Mixed-radix index of each record's joint value; -1 when a value is not in its public list."""
    index = np.zeros(len(frame), dtype=np.int64)
    for field, allowed in zip(fields, values, strict=True):
        code = pd.Categorical(frame[field].astype(str), categories=list(allowed)).codes.astype(np.int64)
        index = np.where((index < 0) | (code < 0), -1, index * len(allowed) + code)
    return index


def _binary_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for field, kind in formations.FIELDS.items():
        if kind.kind == "binary" and field in out:
            out[field] = out[field].astype(int).astype(str)
    return out


def true_components(frame: pd.DataFrame, spec: QuerySpec, plan: ReleasePlan) -> dict[str, np.ndarray]:
    """The exact (noise-free) components over ``frame``, one row per person, values clamped.

    This is what the node adds noise to; benchmarks call it on pooled data for the no-DP anchor.
    """
    frame = _binary_as_text(formations.analysis_columns(frame))
    frame = frame[_keep(frame, spec)]
    group_values = [keysets.key_set_of(k).values() for k in spec.group_by]  # type: ignore[union-attr]
    cell = _codes(frame, spec.group_by, group_values) if spec.group_by else np.zeros(len(frame), np.int64)
    category_values = [_categories(f) for f in plan.categorical]
    category = (
        _codes(frame, plan.categorical, category_values)
        if plan.categorical
        else np.zeros(len(frame), np.int64)
    )
    n_cells, n_categories = len(plan.cells), len(plan.categories)
    inside = (cell >= 0) & (category >= 0)
    out: dict[str, np.ndarray] = {}
    if any(c.name == "cells" for c in plan.components):
        out["cells"] = (
            np.bincount(cell[inside] * n_categories + category[inside], minlength=n_cells * n_categories)
            .reshape(n_cells, n_categories)
            .astype(float)
        )
    in_cell = cell >= 0
    for m in spec.measures:
        if m.kind in ("sum", "mean", "expected_share"):
            if m.kind == "expected_share":
                values = m.model.probability(frame)  # type: ignore[union-attr]
            else:
                values = frame[m.field].astype(float).to_numpy()
            low, high = m.clamp if m.clamp else (0.0, 1.0)
            values = np.clip(values, low, high)
            out[f"sum:{m.name}"] = np.bincount(
                cell[in_cell], weights=values[in_cell], minlength=n_cells
            ).reshape(n_cells, 1)
        elif m.kind == "quantile":
            low, high = m.clamp  # type: ignore[misc]
            values = np.clip(frame[m.field].astype(float).to_numpy(), low, high)
            bins = np.minimum(((values - low) / (high - low) * m.bins).astype(np.int64), m.bins - 1)
            out[f"bins:{m.name}"] = (
                np.bincount(cell[in_cell] * m.bins + bins[in_cell], minlength=n_cells * m.bins)
                .reshape(n_cells, m.bins)
                .astype(float)
            )
    return out


# --------------------------------------------------------------------------- messages


@dataclass(frozen=True)
class QueryRequest:
    """What the coordinator sends with a ``query`` message (beside the study instructions).

    ``budget_share`` is the part of the site's study ε this release may use: the node calibrates
    σ so that every release of the study composes (RDP) to the grant's ε when the shares sum to 1;
    the broker refuses any reservation past the grant.
    """

    release: str
    spec: QuerySpec
    budget_share: float = 1.0

    def to_config(self) -> dict[str, ConfigValue]:
        return {"release": self.release, "query": self.spec.to_json(), "budget-share": self.budget_share}

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> QueryRequest:
        try:
            share = read_float(config, "budget-share")
            spec = QuerySpec.from_json(read_str(config, "query"))
            return cls(read_str(config, "release"), spec, share)
        except (KeyError, TypeError, ValueError, ValidationError) as exc:
            raise ValueError(f"query message: {exc}") from None


@dataclass(frozen=True)
class QueryAnswer:
    """A site's noisy components, each with the noise std that was added (never a true value)."""

    site: str
    release: str
    values: dict[str, list[list[float]]]
    noise_std: dict[str, float]
    epsilon: float
    delta: float
    noise_multiplier: float
    mechanisms: int

    def to_config(self) -> dict[str, ConfigValue]:
        return {"answer": json.dumps(self.__dict__)}

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> QueryAnswer:
        return cls(**json.loads(read_str(config, "answer")))

    def component(self, name: str) -> np.ndarray:
        return np.asarray(self.values[name], dtype=float)
