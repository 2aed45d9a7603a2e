"""Table configuration (YAML): what to do with every column of a partner's table.

linkage: nir                       # the identifier column whose pseudonym links across partners
columns:
  nir: {identifier: nir}            # identifier type; output: study (default) | linkage | none
  email: {identifier: email, output: none, optional: true}
  birth_year: {generalize: age_band, output: age_band, reference_year: 2025}
  counselor_note: scrub
  sex: keep
  last_name: drop
k_anonymity: {quasi_identifiers: [age_band, sex], k: 5, action: enforce, steps: [...]}
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from anonymization.errors import ConfigError
from anonymization.generalization import Generalizer, build_generalizer
from anonymization.identifiers import get_identifier_type
from anonymization.kanonymity import GeneralizationStep, build_step

SIMPLE_ACTIONS = {"keep", "drop", "scrub"}
IDENTIFIER_OUTPUTS = {"study", "linkage", "none"}


@dataclass
class ColumnSpec:
    """What happens to one column."""

    name: str
    action: str
    identifier_type: str | None = None
    output: str = "study"
    optional: bool = False
    generalizer: Generalizer | None = None


@dataclass
class KAnonymitySpec:
    """Which quasi-identifiers, the target k, and how to reach it (generalization steps, then suppression).

    The only action is `enforce`: a target that is stated and not reached is a promise not kept.
    """

    quasi_identifiers: list[str]
    k: int
    sensitive: list[str] = field(default_factory=list)
    action: str = "enforce"
    steps: list[GeneralizationStep] = field(default_factory=list)
    max_suppression: float = 0.05


@dataclass
class TableConfig:
    """A validated table configuration."""

    columns: dict[str, ColumnSpec]
    linkage: str | None
    k_anonymity: KAnonymitySpec | None
    dataset: str = "table"
    origin: str = "<memory>"

    def check_table(self, table_columns: list[str], where: str) -> None:
        """Every table column must be configured, and every configured column must exist."""
        unknown = [c for c in self.columns if c not in table_columns]
        if unknown:
            raise ConfigError(f"{self.origin}: column(s) {', '.join(unknown)} configured but not in {where}")
        uncovered = [c for c in table_columns if c not in self.columns]
        if uncovered:
            raise ConfigError(
                f"{where}: column(s) {', '.join(uncovered)} not covered by {self.origin} "
                "(say keep, drop, scrub, identifier or generalize for each)"
            )

    def minimized(self, needed: set[str]) -> TableConfig:
        """Data minimization: a column whose outputs the study does not need is dropped unread —
        in particular free text that would otherwise cost a scrub and risk a leak."""

        def unneeded(spec: ColumnSpec) -> bool:
            if spec.action in ("keep", "scrub"):
                return spec.name not in needed
            if spec.action == "generalize" and spec.generalizer is not None:
                return not set(spec.generalizer.outputs()) & needed
            return False

        columns = {n: ColumnSpec(n, "drop") if unneeded(c) else c for n, c in self.columns.items()}
        return replace(self, columns=columns)

    def output_columns(self) -> list[str]:
        """Names of the columns the anonymized table will have, in order."""
        out = ["linkage_pseudonym", "study_pseudonym"] if self.linkage else []
        for spec in self.columns.values():
            if spec.action in ("keep", "scrub"):
                out.append(spec.name)
            elif spec.action == "generalize" and spec.generalizer is not None:
                out.extend(spec.generalizer.outputs())
            elif spec.action == "identifier" and spec.name != self.linkage and spec.output != "none":
                out.append(f"{spec.name}_pseudonym")
        return out


def _column(name: str, raw: Any, origin: str) -> ColumnSpec:
    where = f"{origin}: column {name!r}"
    if isinstance(raw, str):
        if raw not in SIMPLE_ACTIONS:
            raise ConfigError(f"{where}: unknown action {raw!r} (keep, drop, scrub, or a mapping)")
        return ColumnSpec(name, raw)
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected an action name or a mapping")
    options = dict(raw)
    if "identifier" in options:
        kind = str(options.pop("identifier"))
        try:
            get_identifier_type(kind)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        output = str(options.pop("output", "study"))
        if output not in IDENTIFIER_OUTPUTS:
            raise ConfigError(f"{where}: output must be one of {sorted(IDENTIFIER_OUTPUTS)}")
        optional = bool(options.pop("optional", False))
        if options:
            raise ConfigError(f"{where}: unknown option(s) {', '.join(sorted(options))}")
        return ColumnSpec(name, "identifier", identifier_type=kind, output=output, optional=optional)
    if "generalize" in options:
        method = str(options.pop("generalize"))
        try:
            generalizer = build_generalizer(name, method, options)
        except ConfigError as exc:
            raise ConfigError(f"{origin}: {exc}") from None
        return ColumnSpec(name, "generalize", generalizer=generalizer)
    raise ConfigError(f"{where}: a mapping needs 'identifier' or 'generalize'")


def _k_anonymity(raw: Any, origin: str) -> KAnonymitySpec | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or "quasi_identifiers" not in raw or "k" not in raw:
        raise ConfigError(f"{origin}: k_anonymity needs quasi_identifiers and k")
    options = dict(raw)
    action = str(options.pop("action", "enforce"))
    if action != "enforce":
        raise ConfigError(
            f"{origin}: k_anonymity action {action!r} is not supported: a target k is enforced "
            f"(generalization steps, then suppression) or not stated at all (remove the section)"
        )
    try:
        spec = KAnonymitySpec(
            quasi_identifiers=[str(c) for c in options.pop("quasi_identifiers")],
            k=int(options.pop("k")),
            sensitive=[str(c) for c in options.pop("sensitive", [])],
            action=action,
            steps=[build_step(s) for s in options.pop("steps", [])],
            max_suppression=float(options.pop("max_suppression", 0.05)),
        )
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    if options:
        raise ConfigError(f"{origin}: unknown k_anonymity option(s) {', '.join(sorted(options))}")
    return spec


def parse_config(document: Any, origin: str = "<memory>") -> TableConfig:
    """Validate a parsed YAML document into a TableConfig."""
    if not isinstance(document, dict) or not isinstance(document.get("columns"), dict):
        raise ConfigError(f"{origin}: expected a mapping with a 'columns' mapping")
    known = {"dataset", "linkage", "columns", "k_anonymity"}
    extra = set(document) - known
    if extra:
        raise ConfigError(f"{origin}: unknown key(s) {', '.join(sorted(extra))}")
    columns = {str(name): _column(str(name), raw, origin) for name, raw in document["columns"].items()}
    linkage = document.get("linkage")
    if linkage is not None:
        spec = columns.get(linkage)
        if spec is None or spec.action != "identifier":
            raise ConfigError(f"{origin}: linkage column {linkage!r} must be configured as an identifier")
    config = TableConfig(
        columns=columns,
        linkage=linkage,
        k_anonymity=_k_anonymity(document.get("k_anonymity"), origin),
        dataset=str(document.get("dataset", "table")),
        origin=origin,
    )
    if config.k_anonymity:
        produced = set(config.output_columns())
        missing = [
            c
            for c in [*config.k_anonymity.quasi_identifiers, *config.k_anonymity.sensitive]
            if c not in produced
        ]
        if missing:
            raise ConfigError(f"{origin}: k_anonymity column(s) {', '.join(missing)} are not output columns")
    return config


def load_config(path: Path) -> TableConfig:
    """Read and validate a YAML table configuration file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read configuration {path}: {exc.strerror}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_config(document, origin=str(path))


def packaged_config(name: str) -> TableConfig:
    """A configuration shipped in anonymization/configs (e.g. 'parcours')."""
    resource = resources.files("anonymization") / "configs" / f"{name}.yaml"
    return parse_config(yaml.safe_load(resource.read_text(encoding="utf-8")), origin=f"configs/{name}.yaml")
