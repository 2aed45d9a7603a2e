"""French counselor notes (``counselor_note``) with PII woven into domain content.

The notes feed the PII scrubber's tests, so the identifiers come in many shapes and places: full name,
civility + surname, first name alone, phone in several notations, e-mail, NIR grouped or compact, postal
address, date of birth, France Travail id, the name of another counselor. The domain content (ROME
labels, zones d'emploi, trainings, constraints) is what must survive scrubbing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MONTHS_FR = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
TRAININGS = (
    "CACES R489",
    "titre professionnel Agent de restauration",
    "POE individuelle",
    "SST",
    "titre professionnel Secrétaire assistant",
    "habilitation électrique B1V",
    "certificat CléA",
    "BAFA",
    "permis C",
    "titre professionnel Vendeur conseil en magasin",
    "DEAES",
    "remise à niveau en français",
    "titre professionnel Cuisinier",
    "formation aux gestes et postures",
    "titre professionnel Développeur web",
)
CONSTRAINTS = (
    "garde d'enfants le mercredi",
    "logement précaire",
    "problème de santé (dos)",
    "pas de véhicule",
    "horaires décalés impossibles",
    "aidant familial",
)
PARTNERS = (
    "la Mission Locale",
    "l'APEC",
    "Cap emploi",
    "le PLIE",
    "le Carif-Oref",
    "un organisme de formation",
)


def _date_fr(day: int, month: int, year: int) -> str:
    return f"{day} {MONTHS_FR[month - 1]} {year}"


def _date_slash(day: int, month: int, year: int) -> str:
    return f"{day:02d}/{month:02d}/{year}"


def compose_notes(rng: np.random.Generator, people: pd.DataFrame) -> np.ndarray:
    """One note per row of ``people``.

    Expected columns: first_name, last_name, sex, phone, email, nir, address, ft_id, birth_year,
    birth_month, birth_day, rome_label, previous_label, zone_label, commune_label, mobility_km,
    months_unemployed, driving_licence, training_followed, registration_date, counselor_first,
    counselor_last, counselor_sex.
    """
    n = len(people)
    draws = rng.random((n, 12))
    picks = rng.integers(0, 1_000_000, size=(n, 8))
    records = people.to_dict("records")
    notes = np.empty(n, dtype=object)
    for i, p in enumerate(records):  # text assembly; all random draws are made above in one go
        u, k = draws[i], picks[i]
        female = p["sex"] == "F"
        e = "e" if female else ""
        civ = "Mme" if female else "M."
        reg = p["registration_date"]
        ry, rm, rd = int(reg[:4]), int(reg[5:7]), int(reg[8:10])
        dob = (
            _date_slash(p["birth_day"], p["birth_month"], p["birth_year"])
            if u[0] < 0.6
            else _date_fr(p["birth_day"], p["birth_month"], p["birth_year"])
        )
        age = ry - p["birth_year"]
        openings = (
            f"Entretien du {_date_fr(rd, rm, ry)} avec {civ} {p['first_name']} {p['last_name'].upper()}.",
            f"RDV {_date_slash(rd, rm, ry)} : {p['first_name']} {p['last_name']}, {age} ans, "
            f"inscrit{e} depuis {p['months_unemployed']} mois.",
            f"Premier entretien avec {civ} {p['last_name'].upper()} ({p['first_name']}), né{e} le {dob}.",
            f"{p['first_name']} {p['last_name']} reçu{e} ce jour en entretien de diagnostic.",
            f"Suivi de {p['first_name']} : point d'étape sur la recherche d'emploi.",
        )
        projects = (
            f"Projet : poste de {p['rome_label']} sur la zone de {p['zone_label']}.",
            f"Souhaite se positionner sur le métier de {p['rome_label']}, secteur {p['zone_label']}.",
            f"Recherche active en tant que {p['rome_label']} ; mobilité jusqu'à {p['mobility_km']} km "
            f"autour de {p['commune_label']}.",
            f"Vise un emploi de {p['rome_label']} ({p['zone_label']} ou alentours).",
        )
        parts = [openings[k[0] % len(openings)], projects[k[1] % len(projects)]]
        if u[1] < 0.6:
            parts.append(
                f"Titulaire du permis B, véhiculé{e}."
                if p["driving_licence"]
                else "Pas de permis, dépend des transports en commun."
            )
        if p["training_followed"] and u[2] < 0.8:
            parts.append(f"A suivi la formation {TRAININGS[k[2] % len(TRAININGS)]} en {ry}.")
        if p["previous_label"] and u[3] < 0.5:
            parts.append(f"Expérience antérieure comme {p['previous_label']}.")
        if u[4] < 0.3:
            parts.append(f"Freins périphériques : {CONSTRAINTS[k[3] % len(CONSTRAINTS)]}.")
        contacts = [
            f"Joignable au {p['phone']}." if p["phone"] else "",
            f"Tél : {p['phone']} / mail : {p['email']}" if p["phone"] and p["email"] else "",
            f"Contact par mail de préférence : {p['email']}." if p["email"] else "",
            f"Adresse : {p['address']}." if p["address"] else "",
            f"Habite {p['address']}." if p["address"] else "",
            f"NIR {p['nir']} à vérifier sur le dossier.",
            f"N° sécu : {p['nir']}.",
            f"Identifiant FT {p['ft_id']}." if p["ft_id"] else "",
            f"Date de naissance : {dob}.",
        ]
        available = [c for c in contacts if c]
        for j in range(1 + int(u[5] < 0.55) + int(u[6] < 0.2)):
            parts.append(available[(k[4] + 3 * j) % len(available)])
        if u[7] < 0.35:
            counselor = f"{'Mme' if p['counselor_sex'] == 'F' else 'M.'} {p['counselor_last']}"
            role = "conseillère" if p["counselor_sex"] == "F" else "conseiller"
            parts.append(
                f"Orienté{e} vers {counselor} ({role} entreprise) et {PARTNERS[k[5] % len(PARTNERS)]}."
            )
        elif u[7] < 0.55:
            parts.append(f"Prochain RDV le {_date_slash(min(rd + 7, 28), rm, ry)}.")
        elif u[7] < 0.65 and p["email"]:
            parts.append(f"Envoyer les offres de {p['rome_label']} à {p['email']}.")
        elif u[7] < 0.75:
            parts.append(f"Signé : {p['counselor_first']} {p['counselor_last']}.")
        notes[i] = " ".join(dict.fromkeys(parts))  # keep order, drop a repeated sentence
    return notes
