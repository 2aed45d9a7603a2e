"""The company record of use case 2 (one row per establishment) and its clamped, scaled features.

A partner that follows employers (France Travail's employer service, the Carif-Oref observatory,
APEC) holds ``entreprises.csv``. The node validates every row against public nomenclatures (NAF
rév. 2 sub-classes, INSEE size brackets, PACA communes, ROME 4.0) and leaves out — counted, with
file, line and field — any row it cannot trust; the SIRET is replaced by its linkage pseudonym
before anything else is computed.

Features are built from public constants only (nothing fitted on data, as in ``tasks.encoding``),
clamped and centred so that every company's vector has an L2 norm of at most
:func:`CompanyFeatures.max_norm`: that bound is the sensitivity the Gaussian releases of
``node_agent.company_study`` are calibrated on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import reference

#: Columns of a partner's ``entreprises.csv`` (the raw, identified file).
COMPANY_COLUMNS: tuple[str, ...] = (
    "siret",
    "naf",
    "size_bracket",
    "commune",
    "hiring_projects",
    "difficult_projects",
    "seasonal_projects",
    "past_hires",
    "rome_sought",
    "skill_need",
)
COUNT_COLUMNS: tuple[str, ...] = ("hiring_projects", "difficult_projects", "seasonal_projects", "past_hires")
#: ROME 4.0 grand domaines: the "skills" a company seeks, at the level a DP release can carry.
ROME_DOMAINS: tuple[str, ...] = tuple("ABCDEFGHIJKLMN")
#: Brackets a small or medium company can be in (INSEE codes 00 … 32): the clustering's size scale.
SIZE_SCALE: tuple[str, ...] = ("00", "01", "02", "03", "11", "12", "21", "22", "31", "32")

#: Public grouping of NAF divisions (first two digits) into sectors a counselor recognises.
SECTOR_GROUPS: dict[str, tuple[range, ...]] = {
    "agriculture": (range(1, 4),),
    "industrie": (range(5, 40),),
    "construction": (range(41, 44),),
    "commerce": (range(45, 48),),
    "transport_logistique": (range(49, 54),),
    "hebergement_restauration": (range(55, 57),),
    "services_entreprises": (range(58, 76), range(77, 83)),
    "administration_enseignement": (range(84, 86),),
    "sante_action_sociale": (range(86, 89),),
    "autres_services": (range(90, 100), range(76, 77)),
}
SECTOR_LABELS_FR: dict[str, str] = {
    "agriculture": "agriculture",
    "industrie": "industrie",
    "construction": "bâtiment et travaux publics",
    "commerce": "commerce",
    "transport_logistique": "transport et logistique",
    "hebergement_restauration": "hôtellerie-restauration",
    "services_entreprises": "services aux entreprises et numérique",
    "administration_enseignement": "administration et enseignement",
    "sante_action_sociale": "santé et action sociale",
    "autres_services": "autres services",
}
SECTORS: tuple[str, ...] = tuple(SECTOR_GROUPS)

#: Caps of the log scales (beyond them a company is simply "large" for the clustering).
PROJECTS_CAP = 100
PAST_HIRES_CAP = 200
#: Weights of the two vector blocks (sector one-hot, sought-domain shares) against the scalars.
SECTOR_WEIGHT = 0.7
DOMAIN_WEIGHT = 0.7
#: At most this many skill-need domains count per company (bounds the prediction's sensitivity).
MAX_SKILL_NEEDS = 3


def sector_of_division(division: int) -> str:
    for name, spans in SECTOR_GROUPS.items():
        if any(division in span for span in spans):
            return name
    raise reference.UnknownCodeError(f"NAF division {division:02d} belongs to no sector group")


# --------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class RowProblem:
    """Why one row was left out: where (file, 1-based line incl. header), which field, which rule."""

    file: str
    line: int
    field: str
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: field {self.field} — rule {self.rule}: {self.detail}"


@dataclass
class ValidationReport:
    """Rows read, rows kept, and every problem; the detail stays at the node (it names lines)."""

    file: str
    rows_read: int = 0
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def rows_left_out(self) -> int:
        return len({p.line for p in self.problems})

    def by_rule(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for problem in self.problems:
            counts[problem.rule] = counts.get(problem.rule, 0) + 1
        return dict(sorted(counts.items()))

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "rows_read": self.rows_read,
            "rows_left_out": self.rows_left_out,
            "by_rule": self.by_rule(),
            "problems": [p.__dict__ for p in self.problems],
        }


class CompanyFileError(ValueError):
    """The file itself is unusable (missing columns): nothing can be read from it."""


def as_read(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """A holder's company table as its source read it: its rows are checked by ``validate_companies``,
    which leaves an untrustworthy row out with a report instead of refusing the whole table."""
    return frame


def parse_occupations(text: str) -> dict[str, int]:
    """``"G1603:3|G1602:1"`` → ``{"G1603": 3, "G1602": 1}`` (ROME 4.0 code → hiring projects)."""
    out: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in str(text).split("|"))):
        code, _, count = item.partition(":")
        out[code.strip().upper()] = int(count) if count else 1
    return out


def validate_companies(raw: pd.DataFrame, file: str) -> tuple[pd.DataFrame, ValidationReport]:
    """Rows that pass every check, and the report of those that did not (line = CSV line number)."""
    missing = [c for c in COMPANY_COLUMNS if c not in raw.columns]
    if missing:
        raise CompanyFileError(f"{file}: missing column(s) {', '.join(missing)}")
    report = ValidationReport(file=file, rows_read=len(raw))
    naf = set(reference.naf_subclasses().index)
    brackets = set(SIZE_SCALE)
    communes = set(reference.communes_paca().index)
    keep = np.ones(len(raw), dtype=bool)

    def reject(position: int, column: str, rule: str, detail: str) -> None:
        keep[position] = False
        report.problems.append(RowProblem(file, position + 2, column, rule, detail))

    for position, row in enumerate(raw[list(COMPANY_COLUMNS)].itertuples(index=False)):
        if str(row.naf).strip().upper() not in naf:
            reject(position, "naf", "company.naf_unknown", f"'{row.naf}' is not a NAF rév. 2 sub-class")
        if str(row.size_bracket).strip().zfill(2) not in brackets:
            reject(
                position,
                "size_bracket",
                "company.size_out_of_range",
                f"'{row.size_bracket}' is not an INSEE bracket of a small or medium company (00–32)",
            )
        if str(row.commune).strip() not in communes:
            reject(position, "commune", "company.commune_unknown", f"'{row.commune}' is not a PACA commune")
        counts: dict[str, int] = {}
        for column in COUNT_COLUMNS:
            value = pd.to_numeric(getattr(row, column), errors="coerce")
            if value is None or not math.isfinite(float(value)) or float(value) != int(value):
                reject(position, column, "company.count_invalid", f"'{getattr(row, column)}' is not a count")
            elif value < 0:
                reject(position, column, "company.count_negative", f"{int(value)} is negative")
            else:
                counts[column] = int(value)
        hiring = counts.get("hiring_projects")
        for column in ("difficult_projects", "seasonal_projects"):
            if hiring is not None and counts.get(column, 0) > hiring:
                reject(position, column, "company.share_above_one", f"{counts[column]} > {hiring} projects")
        for column in ("rome_sought", "skill_need"):
            text = "" if pd.isna(getattr(row, column)) else str(getattr(row, column))
            try:
                codes = parse_occupations(text)
            except ValueError:
                reject(position, column, "company.occupations_invalid", f"'{text}' is not CODE:count|…")
                continue
            unknown = [c for c in codes if not reference.is_rome4_code(c)]
            if unknown:
                reject(position, column, "company.rome_unknown", f"{unknown[0]} is not a ROME 4.0 code")
            elif any(n < 0 for n in codes.values()):
                reject(position, column, "company.count_negative", "a negative count of projects")
    return raw[keep].reset_index(drop=True), report


# --------------------------------------------------------------------------- analysis view and features


def domain_shares(occupations: Sequence[str]) -> np.ndarray:
    """Per company, the share of its hiring projects in each ROME grand domaine (rows sum to 1 or 0)."""
    index = {d: i for i, d in enumerate(ROME_DOMAINS)}
    out = np.zeros((len(occupations), len(ROME_DOMAINS)))
    for row, text in enumerate(occupations):
        for code, count in parse_occupations(text).items():
            out[row, index[reference.rome_grand_domaine(code)]] += max(count, 0)
    totals = out.sum(axis=1, keepdims=True)
    shares: np.ndarray = np.divide(out, totals, out=np.zeros_like(out), where=totals > 0)
    return shares


def skill_need_domains(needs: Sequence[str]) -> np.ndarray:
    """Per company, 0/1 for each grand domaine it found hard to hire (at most ``MAX_SKILL_NEEDS``)."""
    index = {d: i for i, d in enumerate(ROME_DOMAINS)}
    out = np.zeros((len(needs), len(ROME_DOMAINS)))
    for row, text in enumerate(needs):
        domains = sorted({reference.rome_grand_domaine(c) for c in parse_occupations(text)})
        for domain in domains[:MAX_SKILL_NEEDS]:
            out[row, index[domain]] = 1.0
    return out


def company_view(valid: pd.DataFrame) -> pd.DataFrame:
    """The generalized analysis view of validated rows (no SIRET: the caller adds its pseudonym)."""
    division = valid["naf"].astype(str).str[:2].astype(int)
    communes = reference.communes_paca()
    commune = valid["commune"].astype(str).str.strip()
    counts = {c: pd.to_numeric(valid[c]).astype(int).to_numpy() for c in COUNT_COLUMNS}
    hiring = counts["hiring_projects"]
    safe = np.maximum(hiring, 1)
    return pd.DataFrame(
        {
            "naf_division": division.map(lambda d: f"{d:02d}").to_numpy(),
            "sector": division.map(sector_of_division).to_numpy(),
            "size_bracket": valid["size_bracket"].astype(str).str.zfill(2).to_numpy(),
            "zone_emploi": commune.map(communes["zone_emploi"]).to_numpy(),
            "departement": commune.map(communes["departement"]).to_numpy(),
            "hiring_projects": hiring,
            "difficult_projects_share": np.where(hiring > 0, counts["difficult_projects"] / safe, 0.0),
            "seasonal_projects_share": np.where(hiring > 0, counts["seasonal_projects"] / safe, 0.0),
            "past_hires": counts["past_hires"],
            "rome_sought": valid["rome_sought"].fillna("").astype(str).to_numpy(),
            "skill_need": valid["skill_need"].fillna("").astype(str).to_numpy(),
        }
    )


@dataclass(frozen=True)
class FeatureBlock:
    """Columns of the feature vector fed by one granted field, with their largest squared norm."""

    field: str
    names: tuple[str, ...]
    max_sq_norm: float


def _log_scale(values: np.ndarray, cap: int) -> np.ndarray:
    scaled: np.ndarray = np.log1p(np.clip(values, 0, cap)) / math.log1p(cap)
    return scaled


@dataclass(frozen=True)
class CompanyFeatures:
    """The clustering's feature map restricted to the granted fields (public constants only)."""

    fields: tuple[str, ...]

    @property
    def blocks(self) -> tuple[FeatureBlock, ...]:
        every = (
            FeatureBlock("size_bracket", ("taille",), 0.25),
            FeatureBlock("hiring_projects", ("projets",), 0.25),
            FeatureBlock("difficult_projects_share", ("part_difficile",), 0.25),
            FeatureBlock("seasonal_projects_share", ("part_saisonniere",), 0.25),
            FeatureBlock("past_hires", ("embauches_passees",), 0.25),
            FeatureBlock("naf_division", tuple(f"secteur={s}" for s in SECTORS), SECTOR_WEIGHT**2),
            FeatureBlock("rome_sought", tuple(f"domaine={d}" for d in ROME_DOMAINS), DOMAIN_WEIGHT**2),
        )
        return tuple(b for b in every if b.field in self.fields)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for b in self.blocks for n in b.names)

    @property
    def width(self) -> int:
        return len(self.names)

    def max_norm(self) -> float:
        """Largest L2 norm of one company's vector: the sensitivity of a per-cluster sum."""
        return math.sqrt(sum(b.max_sq_norm for b in self.blocks))

    def encode(self, view: pd.DataFrame) -> np.ndarray:
        """Clamped, scaled and centred features: scalars in [-½, ½], blocks scaled by their weight."""
        parts: list[np.ndarray] = []
        for block in self.blocks:
            if block.field == "size_bracket":
                rank = view["size_bracket"].map({c: i for i, c in enumerate(SIZE_SCALE)}).fillna(0)
                parts.append((rank.to_numpy(dtype=float) / (len(SIZE_SCALE) - 1))[:, None] - 0.5)
            elif block.field == "hiring_projects":
                parts.append(_log_scale(view["hiring_projects"].to_numpy(float), PROJECTS_CAP)[:, None] - 0.5)
            elif block.field == "past_hires":
                parts.append(_log_scale(view["past_hires"].to_numpy(float), PAST_HIRES_CAP)[:, None] - 0.5)
            elif block.field in ("difficult_projects_share", "seasonal_projects_share"):
                parts.append(np.clip(view[block.field].to_numpy(float), 0, 1)[:, None] - 0.5)
            elif block.field == "naf_division":
                index = {s: i for i, s in enumerate(SECTORS)}
                onehot = np.zeros((len(view), len(SECTORS)))
                onehot[np.arange(len(view)), view["sector"].map(index).to_numpy(int)] = SECTOR_WEIGHT
                parts.append(onehot)
            elif block.field == "rome_sought":
                parts.append(DOMAIN_WEIGHT * domain_shares(view["rome_sought"].tolist()))
        x = np.hstack(parts) if parts else np.zeros((len(view), 0))
        norms = np.linalg.norm(x, axis=1, keepdims=True)  # already bounded; the clamp makes it a promise
        bound = self.max_norm()
        return np.where(norms > bound, x * bound / np.maximum(norms, 1e-12), x)

    def decode(self, centre: np.ndarray) -> dict[str, object]:
        """A centre read back in the data's units (for the French profile of a type)."""
        out: dict[str, object] = {}
        at = 0
        for block in self.blocks:
            values = np.asarray(centre[at : at + len(block.names)], dtype=float)
            at += len(block.names)
            if block.field == "size_bracket":
                rank = int(np.clip(round((values[0] + 0.5) * (len(SIZE_SCALE) - 1)), 0, len(SIZE_SCALE) - 1))
                out["size_bracket"] = SIZE_SCALE[rank]
            elif block.field == "hiring_projects":
                out["hiring_projects"] = float(
                    np.expm1(np.clip(values[0] + 0.5, 0, 1) * math.log1p(PROJECTS_CAP))
                )
            elif block.field == "past_hires":
                out["past_hires"] = float(
                    np.expm1(np.clip(values[0] + 0.5, 0, 1) * math.log1p(PAST_HIRES_CAP))
                )
            elif block.field in ("difficult_projects_share", "seasonal_projects_share"):
                out[block.field] = float(np.clip(values[0] + 0.5, 0, 1))
            elif block.field == "naf_division":
                weights = np.clip(values / SECTOR_WEIGHT, 0, None)
                out["sectors"] = {s: float(w) for s, w in zip(SECTORS, weights, strict=True)}
            elif block.field == "rome_sought":
                weights = np.clip(values / DOMAIN_WEIGHT, 0, None)
                out["domains"] = {d: float(w) for d, w in zip(ROME_DOMAINS, weights, strict=True)}
        return out
