"""Shared helpers of the anonymization benchmarks: paths, the labelled French set, Presidio out of the box."""

from __future__ import annotations

import csv
import json
import os
import platform
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results"
sys.path.insert(0, str(REPO))
# $R2DDE_BENCH_CODE: another checkout whose packages are measured instead (the "before" of a change).
if os.environ.get("R2DDE_BENCH_CODE"):
    sys.path.insert(0, os.environ["R2DDE_BENCH_CODE"])
sys.path.insert(0, str(REPO / "tests" / "anonymization"))

import pii_factory as f  # noqa: E402

from anonymization.reference import reference_data_dir  # noqa: E402


@dataclass
class Example:
    """A sentence and its gold entities as (start, end, type)."""

    text: str
    spans: list[tuple[int, int, str]] = field(default_factory=list)


class Builder:
    """Concatenate literal text and labelled entities, tracking offsets."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.spans: list[tuple[int, int, str]] = []
        self.length = 0

    def text(self, value: str) -> Builder:
        self.parts.append(value)
        self.length += len(value)
        return self

    def entity(self, value: str, kind: str) -> Builder:
        self.spans.append((self.length, self.length + len(value), kind))
        return self.text(value)

    def build(self) -> Example:
        return Example("".join(self.parts), self.spans)


def rome_sentences() -> list[str]:
    """Real French job-description sentences (ROME 4.0 texts)."""
    with (reference_data_dir() / "rome" / "unix_texte_v460_utf8.csv").open(encoding="utf-8") as handle:
        # The ROME export doubles apostrophes (l''emploi); undo that.
        return [
            row["libelle_texte"].replace("''", "'")
            for row in csv.DictReader(handle)
            if 30 < len(row["libelle_texte"]) < 300
        ]


def person(rng: random.Random, b: Builder) -> None:
    first, last = f.first_name(rng), f.last_name(rng)
    style = rng.randrange(8)
    if style == 0:
        b.entity(f"{first} {last}", "PERSON")
    elif style == 6:
        b.entity(first, "PERSON")
    elif style == 7:
        b.text(rng.choice(["Mme ", "M. ", "Madame ", "Monsieur "])).entity(last, "PERSON")
    elif style == 1:
        b.entity(f"{first} {last.title()}", "PERSON")
    elif style == 2:
        b.entity(f"{last} {first}", "PERSON")
    elif style == 3:
        b.text(rng.choice(["Mme ", "M. ", "Madame ", "Monsieur "])).entity(last.title(), "PERSON")
    elif style == 4:
        b.text(rng.choice(["Mme ", "M. "])).entity(f"{first} {last}", "PERSON")
    else:
        b.entity(f"{first} {last.title()}", "PERSON")


def build_eval_set(n: int, seed: int = 2026) -> list[Example]:
    """Sentences mixing real ROME text with identifiers written the many ways people write them,
    plus tricky negatives (wrong NIR keys, Luhn-invalid SIRETs, foreign numbers, non-birth dates)."""
    rng = random.Random(seed)
    sentences = rome_sentences()
    examples = []
    for _ in range(n):
        b = Builder()
        b.text(rng.choice(sentences) + " ")
        kind = rng.randrange(14)
        if kind == 0:
            b.text("Entretien avec ")
            person(rng, b)
            b.text(rng.choice([", qui souhaite se reconvertir.", " ce matin à l'agence.", "."]))
        elif kind == 1:
            person(rng, b)
            b.text(" est joignable au ").entity(f.write_phone(f.mobile(rng), rng), "FR_PHONE").text(".")
        elif kind == 2:
            b.text(
                rng.choice(["Numéro de sécurité sociale : ", "NIR ", "Son numéro de sécu est le ", "N° SS "])
            )
            b.entity(f.write_nir(f.nir(rng, corsica=rng.random() < 0.1), rng), "FR_NIR").text(".")
        elif kind == 3:
            b.text(rng.choice(["Écrire à ", "Courriel : ", "Mail : ", "Contacter "]))
            first, last = f.first_name(rng), f.last_name(rng)
            b.entity(f.email_for(first, last, rng), "EMAIL_ADDRESS").text(
                rng.choice([".", " pour la suite.", ""])
            )
        elif kind == 4:
            b.text(rng.choice(["IBAN : ", "RIB transmis, IBAN ", "Coordonnées bancaires : "]))
            b.entity(f.write_iban(f.iban_fr(rng), rng), "IBAN_CODE").text(".")
        elif kind == 5 and rng.random() < 0.25:
            siren = f.siren(rng)
            written = siren if rng.random() < 0.5 else f"{siren[:3]} {siren[3:6]} {siren[6:]}"
            b.text(rng.choice(["Entreprise SIREN ", "Employeur (SIREN ", "Société immatriculée "]))
            b.entity(written, "FR_SIREN").text(rng.choice([").", "."]))
        elif kind == 5:
            b.text(rng.choice(["Employeur SIRET ", "Stage chez l'entreprise (SIRET ", "Établissement n° "]))
            b.entity(f.write_siret(f.siret(rng), rng), "FR_SIRET").text(rng.choice([").", "."]))
        elif kind == 6:
            b.text(rng.choice(["Habite au ", "Adresse : ", "Domicilié au ", "Hébergée au "]))
            b.entity(f.address(rng, with_city=rng.random() < 0.7), "FR_ADDRESS").text(".")
        elif kind == 7:
            b.text(rng.choice(["Né le ", "Née le ", "Date de naissance : ", "Né(e) le "]))
            b.entity(f.birth_date(rng), "DATE_OF_BIRTH").text(rng.choice([".", ", célibataire."]))
        elif kind == 8:
            b.text(rng.choice(["Identifiant France Travail : ", "Inscrit sous l'identifiant ", "ID FT "]))
            b.entity(f.ft_id(rng), "FR_FT_ID").text(".")
        elif kind == 9:
            b.text("Tél. ").entity(f.write_phone(f.landline(rng), rng), "FR_PHONE").text(", ou par courriel ")
            first, last = f.first_name(rng), f.last_name(rng)
            b.entity(f.email_for(first, last, rng), "EMAIL_ADDRESS").text(".")
        elif kind == 10:  # negatives
            b.text(
                rng.choice(
                    [
                        f"Numéro de sécurité sociale erroné : {f.wrong_key_nir(rng)}.",
                        f"SIRET invalide {f.luhn_invalid(f.siret(rng))} à corriger.",
                        f"Ancien numéro aux États-Unis : +1 212 555 {rng.randint(1000, 9999)}.",
                        f"Rendez-vous le {rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/2025 à 14h.",
                        f"Inscrit depuis le {rng.randint(1, 28)} mars 2024, réunion le 03/04/2025.",
                        f"Formation de {rng.randint(2, 40)} semaines, "
                        f"{rng.randint(100, 900)} heures en centre.",
                    ]
                )
            )
        elif kind == 11:
            b.text("Rencontre avec ")
            person(rng, b)
            b.text(" et ")
            person(rng, b)
            b.text(" pour un atelier CV.")
        elif kind == 12:
            b.text("Contact : ")
            person(rng, b)
            b.text(", ").entity(f.write_phone(f.mobile(rng), rng), "FR_PHONE").text(", né le ")
            b.entity(f.birth_date(rng), "DATE_OF_BIRTH").text(".")
        else:
            b.text("Vit au ").entity(f.address(rng), "FR_ADDRESS").text(" avec ")
            person(rng, b)
            b.text(".")
        examples.append(b.build())
    return examples


def presidio_out_of_the_box():
    """Presidio's AnalyzerEngine as documented for French: default registry, full fr_core_news_sm pipeline.

    Its EmailRecognizer would try to download the public suffix list on first use; the default extractor
    is pointed at the bundled snapshot so that this benchmark stays offline (it does not change results).
    """
    import tldextract
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    provider = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "fr", "model_name": "fr_core_news_sm"}],
        }
    )
    return AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["fr"])


# Presidio's own entity names mapped to ours, for the side-by-side table.
PRESIDIO_TO_OURS = {
    "PERSON": "PERSON",
    "EMAIL_ADDRESS": "EMAIL_ADDRESS",
    "IBAN_CODE": "IBAN_CODE",
    "PHONE_NUMBER": "FR_PHONE",
    "LOCATION": "FR_ADDRESS",
    "DATE_TIME": "DATE_OF_BIRTH",
}


def machine() -> dict[str, str]:
    import os

    return {"python": platform.python_version(), "cpus": str(os.cpu_count()), "platform": platform.platform()}


def save(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
