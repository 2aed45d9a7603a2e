"""The web service: French pages rendered on the server, no JavaScript, no cookie, nothing stored.

Answers travel in POST bodies only (never in a URL, so never in an access log or a browser history),
are validated here with French messages that say what to fix, live for one request, and are never
logged: the service logs nothing about a request but its failure's exception type.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

import torch
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .catalogue import Appellation, Catalogue, Place, catalogue
from .diagnosis import EDUCATION_FR, FACTOR_FR, Diagnosis, Profile, diagnose
from .gate import ATTRIBUTE_FR, GAP_FR, GateResult
from .similar import SimilarTable, describe_cell
from .study import ReleasedModel

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
MAX_BODY_BYTES = 8192
MONTHS_MAX = 240
RADIUS_MAX = 200
CHOICES_SHOWN = 15

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


# --------------------------------------------------------------------------- formatting


def pct(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{round(100 * value)}\u202f%"


def points(value: float) -> str:
    p = round(100 * value)
    return "±0 point" if p == 0 else f"{p:+d} point{'s' if abs(p) > 1 else ''}".replace("-", "−")


def months(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    if value > 24:
        return "plus de 24 mois"
    return f"{value:.0f} mois" if value >= 1.5 else "moins de 2 mois"


def dec(value: float | None, digits: int = 2) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.{digits}f}".replace(".", ",")


def thousands(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "secret statistique"
    return f"{round(value):,}".replace(",", "\u202f")


def bar(value: float, width: int = 300) -> int:
    return max(0, min(width, round(value * width)))


def whole(value: float | None) -> str:
    """A noisy count, to the nearest person."""
    return thousands(value)


def delay(value: float | None) -> str:
    """A median delay read off a table whose delays stop at 24 months (later = 24)."""
    if value is not None and math.isfinite(value) and value >= 23.5:
        return "24 mois ou plus"
    return months(value)


SITE_FR = {
    "france_travail": "France Travail",
    "apec": "APEC",
    "missions_locales": "Missions Locales",
    "carif_oref": "Carif-Oref",
}
#: The released table's group fields as the similar-profiles section names them.
CELL_FR = {
    "zone_emploi": "dans la zone d'emploi",
    "departement": "dans le département",
    "education_level": "avec le niveau de diplôme",
    "months_out_band": "sans emploi depuis",
    "rome_domain": "visant un métier du domaine",
}


def cell_value(field: str, value: str) -> str:
    if field == "education_level":
        return f"« {EDUCATION_FR.get(value, value)} »"
    if field == "months_out_band":
        return "24 mois ou plus" if value == "24+" else f"{value.replace('-', ' à ')} mois"
    return describe_cell(field, value)


TENSION_LEVEL_FR = {
    "bassin": "dans votre bassin",
    "departement": "dans votre département (pas de chiffre pour le bassin)",
    "national": "en France (pas de chiffre local)",
    "overall": "moyenne générale (métier sans chiffre publié)",
}


# --------------------------------------------------------------------------- form


@dataclass
class FormState:
    """The raw answers (to refill the form), the errors by field, and choices to disambiguate."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    choices: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


def _resolve_appellation(
    state: FormState, cat: Catalogue, text_key: str, code_key: str, required: bool
) -> Appellation | None:
    code = state.values.get(code_key, "").strip()
    if code:
        if code in cat.appellations:
            return cat.appellations[code]
        state.errors[text_key] = "Le métier choisi n'existe pas dans le ROME 4.0 : cherchez-le par son nom."
        return None
    text = state.values.get(text_key, "").strip()
    if not text:
        if required:
            state.errors[text_key] = "Indiquez le métier que vous visez (par exemple « aide-soignant »)."
        return None
    found = cat.search_appellations(text, CHOICES_SHOWN)
    if not found:
        state.errors[text_key] = (
            f"Aucun métier du ROME ne correspond à « {text[:60]} » : essayez un autre mot, "
            "plus court ou sans abréviation."
        )
        return None
    if len(found) == 1 or found[0].label.casefold() == text.casefold():
        return found[0]
    state.choices[code_key] = [(a.code, a.label) for a in found]
    state.errors[text_key] = "Plusieurs métiers correspondent : choisissez le vôtre dans la liste."
    return None


def _resolve_place(state: FormState, cat: Catalogue) -> Place | None:
    code = state.values.get("commune_code", "").strip()
    if code:
        if code in cat.communes:
            return cat.communes[code]
        state.errors["lieu"] = "La commune choisie n'est pas en Provence-Alpes-Côte d'Azur."
        return None
    text = state.values.get("lieu", "").strip()
    zone = state.values.get("zone", "").strip()
    if not text:
        if zone:
            if zone in cat.zones:
                return cat.zones[zone]
            state.errors["zone"] = "Cette zone d'emploi n'existe pas en Provence-Alpes-Côte d'Azur."
            return None
        state.errors["lieu"] = "Indiquez votre commune ou choisissez votre zone d'emploi."
        return None
    found = cat.search_communes(text, CHOICES_SHOWN)
    if not found:
        state.errors["lieu"] = (
            f"« {text[:60]} » n'est pas une commune de Provence-Alpes-Côte d'Azur : vérifiez "
            "l'orthographe, ou choisissez votre zone d'emploi."
        )
        return None
    if len(found) == 1:
        return found[0]
    state.choices["commune_code"] = [(p.code, f"{p.label} ({p.code[:2]})") for p in found]
    state.errors["lieu"] = "Plusieurs communes correspondent : choisissez la vôtre dans la liste."
    return None


def _integer(state: FormState, key: str, label: str, high: int, default: str | None = None) -> int | None:
    raw = state.values.get(key, "").strip() or (default or "")
    if not raw:
        state.errors[key] = f"Indiquez {label}."
        return None
    try:
        value = int(raw)
    except ValueError:
        state.errors[key] = f"{label[0].upper()}{label[1:]} doit être un nombre entier (par exemple 6)."
        return None
    if not 0 <= value <= high:
        state.errors[key] = f"{label[0].upper()}{label[1:]} doit être entre 0 et {high}."
        return None
    return value


def _yes_no(state: FormState, key: str, question: str) -> bool | None:
    raw = state.values.get(key, "")
    if raw not in ("oui", "non"):
        state.errors[key] = f"Répondez par oui ou non : {question}"
        return None
    return raw == "oui"


def parse_profile(values: dict[str, str], cat: Catalogue) -> tuple[Profile | None, FormState]:
    """The profile, or the form state to show again with French errors and choices."""
    state = FormState(values={k: v[:200] for k, v in values.items()})
    target = _resolve_appellation(state, cat, "metier", "metier_code", required=True)
    place = _resolve_place(state, cat)
    education = state.values.get("diplome", "")
    if education not in EDUCATION_FR:
        state.errors["diplome"] = "Choisissez votre niveau de diplôme dans la liste."
    months_out = _integer(state, "mois", "le nombre de mois sans emploi", MONTHS_MAX)
    radius = _integer(state, "rayon", "le rayon de mobilité en kilomètres", RADIUS_MAX)
    licence = _yes_no(state, "permis", "avez-vous le permis de conduire ?")
    training = _yes_no(state, "formation", "avez-vous suivi une formation ces douze derniers mois ?")
    previous = _resolve_appellation(state, cat, "precedent", "precedent_code", required=False)
    if state.errors or target is None or place is None:
        return None, state
    assert months_out is not None and radius is not None and licence is not None and training is not None
    profile = Profile(target, place, education, months_out, radius, licence, training, previous)
    return profile, state


def hidden_fields(profile: Profile) -> list[tuple[str, str]]:
    """The resolved answers, to post again to the explanation or the printable summary."""
    fields = [
        ("metier_code", profile.target.code),
        ("diplome", profile.education_level),
        ("mois", str(profile.months_unemployed)),
        ("rayon", str(profile.mobility_km)),
        ("permis", "oui" if profile.driving_licence else "non"),
        ("formation", "oui" if profile.training_followed else "non"),
    ]
    is_zone = profile.place.code == profile.place.zone_emploi  # a zone's code is its ZE2020 code
    fields.append(("zone", profile.place.code) if is_zone else ("commune_code", profile.place.code))
    if profile.previous is not None:
        fields.append(("precedent_code", profile.previous.code))
    return fields


# --------------------------------------------------------------------------- application


class Guard:
    """Pure ASGI middleware: the security headers on every response, and a French page instead of
    any failure — logged by its exception type only, since a message may quote the answers.
    (Starlette's ``BaseHTTPMiddleware`` would do the same at several times the cost per request.)"""

    def __init__(self, app: ASGIApp, failure_page: Callable[[], Response]) -> None:
        self.app = app
        self.failure_page = failure_page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_secured(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message).update(SECURITY_HEADERS)
            await send(message)

        try:
            await self.app(scope, receive, send_secured)
        except Exception as exc:  # never a traceback to a person, never the answers in a log
            log.error("autodiag: request failed (%s)", type(exc).__name__)
            if not started:
                await self.failure_page()(scope, receive, send_secured)


class Pages:
    """Jinja2 templates with the French formatting filters."""

    def __init__(self) -> None:
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,  # compiled once per process: no stat() of every template per page
        )
        self.env.filters.update(
            pct=pct,
            points=points,
            months=months,
            dec=dec,
            thousands=thousands,
            bar=bar,
            whole=whole,
            delay=delay,
            cell_value=cell_value,
            site_name=lambda site: SITE_FR.get(site, site),
        )
        self.env.globals.update(
            EDUCATION_FR=EDUCATION_FR,
            FACTOR_FR=FACTOR_FR,
            ATTRIBUTE_FR=ATTRIBUTE_FR,
            GAP_FR=GAP_FR,
            TENSION_LEVEL_FR=TENSION_LEVEL_FR,
            CELL_FR=CELL_FR,
        )

    def render(self, name: str, status: int = 200, /, **context: object) -> HTMLResponse:
        return HTMLResponse(self.env.get_template(name).render(**context), status_code=status)


def create_app(
    model: ReleasedModel, gate: GateResult, cat: Catalogue | None = None, similar: SimilarTable | None = None
) -> FastAPI:
    """The service for one released model that passed its gate (the caller checked it), with the
    released table of similar profiles when the study ships one (read only: never a new query)."""
    if not gate.passed:
        raise ValueError(gate.refusal())
    cat = cat or catalogue()
    pages = Pages()
    pages.env.globals["report"] = model.report
    app = FastAPI(title="Autodiagnostic de mobilité", docs_url=None, redoc_url=None, openapi_url=None)
    report = model.report
    layers = [m.out_features for m in model.network.modules() if isinstance(m, torch.nn.Linear)][:-1]
    card = {"report": report, "gate": gate, "model": model, "layers": layers}
    zones = sorted(cat.zones.values(), key=lambda p: p.label)
    css = (HERE / "static" / "style.css").read_bytes()

    def failure_page() -> HTMLResponse:
        return pages.render(
            "error.html",
            500,
            title="Erreur du service",
            message="Le service n'a pas pu calculer votre diagnostic. Réessayez dans un instant.",
        )

    app.add_middleware(Guard, failure_page=failure_page)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        messages = {
            404: "Cette page n'existe pas. Revenez au formulaire d'autodiagnostic.",
            405: "Cette page s'ouvre depuis le formulaire : revenez au formulaire d'autodiagnostic.",
            413: "Le formulaire envoyé est trop long.",
        }
        message = messages.get(exc.status_code, "La demande n'a pas pu être traitée.")
        return pages.render("error.html", exc.status_code, title="Page introuvable", message=message)

    async def form_values(request: Request) -> dict[str, str]:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise StarletteHTTPException(413)
        try:
            parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=40)
        except (UnicodeDecodeError, ValueError):
            return {}
        return {k: v[-1] for k, v in parsed.items()}

    def form_page(state: FormState, action: str, counselor: bool, status: int = 200) -> HTMLResponse:
        return pages.render(
            "form.html",
            status,
            state=state,
            zones=zones,
            action=action,
            counselor=counselor,
            report=report,
        )

    async def diagnosis_or_form(request: Request, action: str, counselor: bool) -> Diagnosis | HTMLResponse:
        """The person's diagnosis, or the form again when the answers do not make a profile."""
        profile, state = parse_profile(await form_values(request), cat)
        if profile is None:
            only_choices = all(k in ("metier", "lieu", "precedent") for k in state.errors) and state.choices
            return form_page(state, action, counselor, 200 if only_choices else 422)
        return diagnose(model, cat, profile, similar)

    @app.get("/", response_class=HTMLResponse)
    def home() -> HTMLResponse:
        return form_page(FormState(), "/diagnostic", counselor=False)

    async def answer_page(request: Request, action: str, counselor: bool) -> HTMLResponse:
        """The answer page, for a person or a counselor (same diagnosis, the counselor's extras)."""
        diagnosis = await diagnosis_or_form(request, action, counselor)
        if isinstance(diagnosis, HTMLResponse):
            return diagnosis
        return pages.render(
            "answer.html",
            diagnosis=diagnosis,
            hidden=hidden_fields(diagnosis.profile),
            counselor=counselor,
            **card,
        )

    @app.post("/diagnostic", response_class=HTMLResponse)
    async def answer(request: Request) -> HTMLResponse:
        return await answer_page(request, "/diagnostic", False)

    @app.get("/comment", response_class=HTMLResponse)
    def explanation_general() -> HTMLResponse:
        return pages.render("explanation.html", diagnosis=None, hidden=[], **card)

    @app.post("/comment", response_class=HTMLResponse)
    async def explanation(request: Request) -> HTMLResponse:
        diagnosis = await diagnosis_or_form(request, "/diagnostic", False)
        if isinstance(diagnosis, HTMLResponse):
            return diagnosis
        return pages.render(
            "explanation.html", diagnosis=diagnosis, hidden=hidden_fields(diagnosis.profile), **card
        )

    @app.get("/conseiller", response_class=HTMLResponse)
    def counselor_home() -> HTMLResponse:
        return form_page(FormState(), "/conseiller/diagnostic", counselor=True)

    @app.post("/conseiller/diagnostic", response_class=HTMLResponse)
    async def counselor(request: Request) -> HTMLResponse:
        return await answer_page(request, "/conseiller/diagnostic", True)

    @app.post("/conseiller/synthese", response_class=HTMLResponse)
    async def summary(request: Request) -> HTMLResponse:
        diagnosis = await diagnosis_or_form(request, "/conseiller/diagnostic", True)
        if isinstance(diagnosis, HTMLResponse):
            return diagnosis
        return pages.render("summary.html", diagnosis=diagnosis, **card)

    @app.get("/modele", response_class=HTMLResponse)
    def model_card() -> HTMLResponse:
        return pages.render("model.html", **card)

    @app.get("/style.css")
    def style() -> Response:
        return Response(css, media_type="text/css; charset=utf-8")

    @app.get("/sante")
    def health() -> PlainTextResponse:
        return PlainTextResponse("ok")

    return app
