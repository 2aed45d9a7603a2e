"""The analyst's query file (YAML): read, checked, and every refusal pinned to a line of the file.

Checked before anything is sent to a node: YAML syntax, the query's shape, known fields, group
keys with a public key set, clamp bounds on sums/means/quantiles, fields the purpose allows and
every listed site exposes; the broker then refuses a cost past the purpose's or site's cap or the
remaining budget, which is pinned to the ``epsilon`` line (``refusal_from_broker``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from policies.loader import load_purposes, load_site_policies
from policies.models import Reason
from tasks.analytics import QuerySpec, check_query


@dataclass(frozen=True)
class QueryFileProblem:
    rule: str
    line: int | None
    detail: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "file"
        return f"{where}: rule {self.rule}: {self.detail}"


class QueryFileError(ValueError):
    def __init__(self, path: Path, problems: Sequence[QueryFileProblem]) -> None:
        self.path = path
        self.problems = tuple(problems)
        super().__init__("\n".join(f"{path}:{p}" for p in self.problems))


def _lines(node: yaml.Node, path: tuple[str | int, ...], out: dict[tuple[str | int, ...], int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = key.value
            out[(*path, name)] = key.start_mark.line + 1
            _lines(value, (*path, name), out)
            out[(*path, name)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, (*path, i), out)


def _line(lines: dict[tuple[str | int, ...], int], path: Sequence[str | int]) -> int | None:
    path = tuple(path)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())


@dataclass(frozen=True)
class QueryFile:
    path: Path
    spec: QuerySpec
    lines: dict[tuple[str | int, ...], int]

    def line_of(self, path: Sequence[str | int]) -> int | None:
        return _line(self.lines, path)

    def field_line(self, field: str) -> int | None:
        for i, key in enumerate(self.spec.group_by):
            if key == field:
                return self.line_of(("group_by", i))
        for i, f in enumerate(self.spec.filters):
            if f.field == field:
                return self.line_of(("filters", i, "field"))
        for i, m in enumerate(self.spec.measures):
            if m.field == field or (field == "months_out_of_work" and m.field == "months_out_band"):
                return self.line_of(("measures", i, "field"))
        return None


def read_query_file(path: Path) -> QueryFile:
    """Parse and check the file; QueryFileError lists every problem with its rule and line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise QueryFileError(path, [QueryFileProblem("query.file", None, str(exc))]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        raise QueryFileError(
            path, [QueryFileProblem("query.yaml", line, f"malformed YAML: {reason}")]
        ) from None
    lines: dict[tuple[str | int, ...], int] = {}
    if node is not None:
        _lines(node, (), lines)
    if not isinstance(data, dict):
        raise QueryFileError(path, [QueryFileProblem("query.yaml", 1, "the file must be a YAML mapping")])
    try:
        spec = QuerySpec.model_validate(data)
    except ValidationError as exc:
        problems = [
            QueryFileProblem(
                "query.schema",
                _line(lines, [p for p in e["loc"] if not str(p).startswith("function")]),
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}",
            )
            for e in exc.errors()
        ]
        raise QueryFileError(path, problems) from None
    query = QueryFile(Path(path), spec, lines)
    problems = [QueryFileProblem(p.rule, query.line_of(p.path), p.detail) for p in check_query(spec)]
    problems += _granted(query)
    if problems:
        raise QueryFileError(path, problems)
    return query


def _granted(query: QueryFile) -> list[QueryFileProblem]:
    """Fields the purpose allows and every listed site exposes for the dataset (as the broker checks)."""
    spec = query.spec
    purposes, sites = load_purposes(), load_site_policies()
    if spec.purpose not in purposes:
        return [
            QueryFileProblem("purpose.unknown", query.line_of(("purpose",)), f"no purpose {spec.purpose!r}")
        ]
    problems = []
    allowed = set(purposes[spec.purpose].allowed_fields)
    for i, site in enumerate(spec.sites):
        if site not in sites:
            problems.append(
                QueryFileProblem("site.unknown", query.line_of(("sites", i)), f"no policy for site {site!r}")
            )
    for field in spec.fields():
        if field not in allowed:
            detail = f"field {field!r} is not allowed by purpose {spec.purpose}"
            problems.append(QueryFileProblem("query.field_granted", query.field_line(field), detail))
            continue
        for site in spec.sites:
            if site in sites and field not in sites[site].exposed_fields(spec.dataset):
                detail = f"site {site} does not expose field {field!r} of dataset {spec.dataset}"
                problems.append(QueryFileProblem("query.field_granted", query.field_line(field), detail))
    return problems


def refusal_from_broker(query: QueryFile, reasons: Sequence[Reason]) -> QueryFileError:
    """The broker's refusal (every rule it named) pinned to the lines of the query file."""
    problems = []
    for reason in reasons:
        family = reason.rule.split(".")[0]
        if family in ("budget", "delta"):
            line = query.line_of(("epsilon",))
        elif reason.rule in ("purpose.field", "site.field"):
            line = query.field_line(reason.subject.split(".")[-1])
        elif family == "site":
            line = query.line_of(("sites",))
        else:
            line = query.line_of(("purpose",))
        problems.append(QueryFileProblem(reason.rule, line, f"{reason.subject}: {reason.detail}"))
    return QueryFileError(query.path, problems)
