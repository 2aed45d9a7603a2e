"""The fairness gate on release: a study's model serves people only if its purpose's thresholds hold.

Pure: it reads a ``StudyReport`` (the typed view of ``report.json``) and a ``Purpose``; nothing else.
A released gap is compared by its point estimate (a DP release's interval is shown beside it, so a
reader can see when the verdict rests on noise); a gap the study could not measure (a group
suppressed, a missing attribute) fails the gate: what was not measured cannot be vouched for.
"""

from __future__ import annotations

from dataclasses import dataclass

from policies.loader import load_purposes
from policies.models import Purpose

from .study import Estimate, StudyReport

#: French names of the protected attributes and of the gaps, for messages and pages.
ATTRIBUTE_FR = {"sex": "le sexe", "age_band": "la tranche d'âge", "race": "l'origine déclarée"}
GAP_FR = {
    "demographic_parity_gap": "écart de parité démographique",
    "equal_opportunity_gap": "écart d'égalité des chances",
}


@dataclass(frozen=True)
class GateCheck:
    """One rule of the gate, with what was measured and the limit."""

    rule: str
    attribute: str
    passed: bool
    message: str
    measured: Estimate | None = None
    limit: float | None = None


@dataclass(frozen=True)
class GateResult:
    purpose: str
    checks: tuple[GateCheck, ...]

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def failures(self) -> tuple[GateCheck, ...]:
        return tuple(c for c in self.checks if not c.passed)

    def refusal(self) -> str:
        """The French message the service prints when it refuses to start."""
        lines = [f"Le modèle n'a pas passé la porte d'équité de la finalité « {self.purpose} » :"]
        lines += [f"  - [{c.rule}] {c.message}" for c in self.failures]
        lines.append(
            "Entraînez un modèle sans entrée protégée et avec une atténuation (voir "
            "benchmarks/autodiag/fairness_mitigation.py), puis relancez l'étude."
        )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        return {
            "purpose": self.purpose,
            "passed": self.passed,
            "checks": [
                {
                    "rule": c.rule,
                    "attribute": c.attribute,
                    "passed": c.passed,
                    "measured": None if c.measured is None else _estimate_dict(c.measured),
                    "limit": c.limit,
                    "message": c.message,
                }
                for c in self.checks
            ],
        }


def _estimate_dict(e: Estimate) -> dict[str, float | None]:
    return {"value": e.value if e.known else None, "low": e.low, "high": e.high}


def _fmt(e: Estimate) -> str:
    text = f"{e.value:.3f}".replace(".", ",")
    if e.noisy:
        text += f" (IC 95 % {e.low:.3f} – {e.high:.3f})".replace(".", ",")
    return text


def check_release(report: StudyReport, purpose: Purpose) -> GateResult:
    """Every rule of the purpose's fairness section against the study's released numbers."""
    policy = purpose.fairness
    if policy is None:
        return GateResult(
            purpose.id,
            (
                GateCheck(
                    "fairness.policy",
                    "-",
                    False,
                    "la finalité ne fixe aucun seuil d'équité : aucun modèle ne peut être publié",
                ),
            ),
        )
    checks: list[GateCheck] = []
    if report.purpose is not None and report.purpose != purpose.id:
        checks.append(
            GateCheck(
                "fairness.purpose",
                "-",
                False,
                f"l'étude a été accordée pour la finalité « {report.purpose} », pas « {purpose.id} »",
            )
        )
    for attribute in policy.protected_attributes:
        name = ATTRIBUTE_FR.get(attribute, attribute)
        used = [f for f in report.features if f == attribute or f.startswith(f"{attribute}=")]
        if used and not policy.protected_inputs_reason:
            checks.append(
                GateCheck(
                    "fairness.protected_input",
                    attribute,
                    False,
                    f"le modèle prend {name} en entrée ({', '.join(used[:3])}…) alors que la "
                    "finalité ne donne aucune raison de le faire",
                )
            )
        else:
            checks.append(
                GateCheck(
                    "fairness.protected_input", attribute, True, f"{name} n'est pas une entrée du modèle"
                )
            )
        measured = report.fairness.get(attribute)
        limits = policy.limits[attribute]
        for gap, limit in (
            ("demographic_parity_gap", limits.max_demographic_parity_gap),
            ("equal_opportunity_gap", limits.max_equal_opportunity_gap),
        ):
            rule = f"fairness.{gap}"
            value = getattr(measured, gap) if measured is not None else Estimate(float("nan"))
            if not value.known:
                checks.append(
                    GateCheck(
                        rule,
                        attribute,
                        False,
                        f"{GAP_FR[gap]} selon {name} non mesuré par l'étude (groupes absents ou "
                        "trop petits) : la porte ne peut pas le garantir",
                        value,
                        limit,
                    )
                )
                continue
            ok = value.value <= limit
            verdict = "≤" if ok else ">"
            checks.append(
                GateCheck(
                    rule,
                    attribute,
                    ok,
                    f"{GAP_FR[gap]} selon {name} : {_fmt(value)} {verdict} seuil {limit:.2f}".replace(
                        ".", ","
                    ),
                    value,
                    limit,
                )
            )
    return GateResult(purpose.id, tuple(checks))


class UnknownPurposeError(LookupError):
    pass


def purpose_for(report: StudyReport, purpose_id: str | None = None) -> Purpose:
    """The purpose whose gate applies: the one named, else the study's grant, else the one purpose
    that allows the study's task and publishes a model to people (has a ``fairness`` section)."""
    purposes = load_purposes()
    wanted = purpose_id or report.purpose
    if wanted:
        if wanted not in purposes:
            raise UnknownPurposeError(f"la finalité « {wanted} » est inconnue")
        return purposes[wanted]
    candidates = [p for p in purposes.values() if report.task in p.allowed_tasks and p.fairness is not None]
    if len(candidates) != 1:
        raise UnknownPurposeError(
            f"aucune finalité unique ne publie de modèle pour la tâche « {report.task} »"
        )
    return candidates[0]
