"""Raw parcours rows for the anonymization tests, importable by a name no other test folder uses
(``from conftest import …`` found whichever conftest was imported first)."""

from __future__ import annotations

import random

import pandas as pd
import pii_factory as f


def make_parcours(n: int, seed: int = 0) -> pd.DataFrame:
    """Raw parcours rows (docs/CONTRACTS.md schema) with valid, realistic identifiers written in many ways."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        first, last = f.first_name(rng), f.last_name(rng)
        code, _ = rng.choice(f.communes())
        phone = f.mobile(rng)
        rows.append(
            {
                "record_id": f"R{i:05d}",
                "nir": f.write_nir(f.nir(rng, corsica=rng.random() < 0.1), rng),
                "ft_id": f.ft_id(rng) if rng.random() < 0.8 else "",
                "last_name": last,
                "first_name": first,
                "email": f.email_for(first, last, rng),
                "phone": f.write_phone(phone, rng),
                "address": f.address(rng),
                "birth_year": str(rng.randint(1950, 2009)),
                "sex": rng.choice("FM"),
                "commune": code,
                "education_level": rng.choice(["infra_bac", "bac", "bac+2", "bac+3_4", "bac+5"]),
                "rome_target": rng.choice(["M1805", "J1501", "K1302", "N1103"]),
                "rome_previous": rng.choice(["", "H2909", "G1603"]),
                "months_unemployed": str(rng.randint(0, 36)),
                "mobility_km": str(rng.randint(0, 80)),
                "driving_licence": rng.choice("01"),
                "training_followed": rng.choice("01"),
                "registration_date": f"20{rng.randint(20, 24)}-{rng.randint(1, 12):02d}-"
                f"{rng.randint(1, 28):02d}",
                # consistent, as the schema's outcome rule wants (anonymize table checks it as the node)
                "employed_6m": (employed := rng.choice("01")),
                "months_to_employment": "3.0" if employed == "1" else rng.choice(["", "7.5"]),
                "counselor_note": f"Entretien avec {first} {last}, joignable au {f.write_phone(phone, rng)} "
                f"ou {f.email_for(first, last, rng)}. Souhaite une formation de cariste.",
            }
        )
    return pd.DataFrame(rows)
