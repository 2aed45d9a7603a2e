"""Similar profiles: the service reads a released DP table and never asks the partners anything.

A hand-written table checks the lookup and the page's words (numbers chosen here, so a wrong cell or
a number shown without its interval is caught); one table is built through the real query path
(synthetic partners, broker, grant, nodes, coordinator) and served.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from autodiag_fixtures import ANSWERS, MARSEILLE, hand_table, row, spec, write_similar, write_study

from autodiag.service import ServiceRefused, open_study
from autodiag.similar import RELEASE_FOLDER, months_out_band, read_similar_table

ROOT = Path(__file__).resolve().parents[2]
QUERY_FILE = ROOT / "autodiag" / "queries" / "profils_similaires.yaml"


def study_with(tmp_path: Path, table: dict[str, object] | None) -> Path:
    folder = write_study(tmp_path / "study")
    return write_similar(folder, table) if table is not None else folder


def similar_section(client, answers: dict[str, str]) -> str:  # type: ignore[no-untyped-def]
    page = client.post("/diagnostic", data=answers)
    assert page.status_code == 200
    found = re.search(r'<section aria-labelledby="similaires-titre">.*?</section>', page.text, re.S)
    assert found is not None
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(0)).split())


def client_for(folder: Path):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from autodiag.web import create_app

    opened = open_study(folder)
    return TestClient(create_app(opened.model, opened.gate, similar=opened.similar))


def at(zone: str, diploma: str) -> dict[str, str]:
    return {**ANSWERS, "lieu": "", "zone": zone, "diplome": diploma}


def test_the_person_s_cell_is_shown_with_every_interval_in_plain_french(tmp_path):
    client = client_for(study_with(tmp_path, hand_table()))
    text = similar_section(client, at(MARSEILLE, "bac"))
    assert "zone d'emploi Marseille (9312)" in text.replace("&#39;", "'") and "« Baccalauréat »" in text
    assert "environ 143 personnes (vraisemblablement entre 119 et 168)" in text
    assert "47 % avaient un emploi six mois après (vraisemblablement entre 41 % et 53 %)" in text
    assert "en 8 mois ou moins (vraisemblablement entre 5 mois et 12 mois)" in text
    assert "ε = 0,50 par partenaire" in text and "aucun nouveau chiffre" in text
    assert "larges" not in text  # a 12-point interval is not flagged
    # Never a number without its uncertainty: every percentage is a value or an interval bound.
    figures = text.split("Source :")[0]  # the note names the 95 % level, not a figure
    for share in re.findall(r"\d+ %", figures):
        assert re.search(rf"{share} avaient|entre {share}|et {share}", figures), share


def test_a_wide_interval_is_flagged_and_a_censored_delay_said_as_such(tmp_path):
    text = similar_section(client_for(study_with(tmp_path, hand_table())), at(MARSEILLE, "bac+2"))
    assert "38 % avaient un emploi" in text and "entre 12 % et 64 %" in text
    assert "Ces fourchettes sont larges" in text
    assert "ou plus ou moins" not in text
    assert "le délai médian est de 24 mois ou plus (vraisemblablement au moins 9 mois)" in text


def test_a_suppressed_cell_and_a_missing_cell_show_no_number(tmp_path):
    client = client_for(study_with(tmp_path, hand_table()))
    hidden = similar_section(client, at(MARSEILLE, "bac+5"))
    assert "Trop peu de personnes dans votre situation" in hidden and "moins de 11" in hidden
    assert not re.search(r"\d+ %|environ \d", hidden.split("Source :")[0])
    absent = similar_section(client, at("9310", "bac"))  # no row for this zone in the table
    assert "pas de case pour votre situation" in absent
    assert not re.search(r"\d+ %", absent.split("Source :")[0])


def test_without_a_released_table_the_page_says_so_and_shows_nothing(tmp_path):
    text = similar_section(client_for(study_with(tmp_path, None)), at(MARSEILLE, "bac"))
    assert "Aucune table de profils similaires" in text and not re.search(r"\d+ %", text)


@pytest.mark.parametrize(
    ("table", "said"),
    [
        (
            hand_table(
                cells=[
                    row({"zone_emploi": MARSEILLE, "education_level": "bac"}, "taux", None)
                    | {"suppressed": False, "value": 0.4}
                ]
            ),
            "sans valeur ni intervalle",
        ),
        (hand_table(query=spec(("zone_emploi", "sex")).to_json()), "que le formulaire ne demande pas"),
        (hand_table(kind="usecase3"), "n'est pas la table publiée"),
        (hand_table(audit={"verified": False}), "l'audit a échoué"),
        (hand_table(query="{"), "champ « query »"),
    ],
)
def test_an_unusable_table_stops_the_service_with_a_french_reason(tmp_path, table, said):
    with pytest.raises(ServiceRefused) as refused:
        open_study(study_with(tmp_path, table))
    assert said in str(refused.value) and "profils-similaires" in str(refused.value)


def test_months_out_bands_follow_the_public_key_set():
    assert [months_out_band(m) for m in (0, 5, 6, 11, 12, 23, 24, 200)] == [
        "0-5",
        "0-5",
        "6-11",
        "6-11",
        "12-23",
        "12-23",
        "24+",
        "24+",
    ]


def test_answering_people_cannot_reach_the_partners(tmp_path):
    """The service process never loads anything that could ask a node or the broker: a stream of
    requests cannot become a stream of DP queries."""
    folder = study_with(tmp_path, hand_table())
    script = f"""
import sys
sys.path.insert(0, {str(ROOT / "tests" / "autodiag")!r})
from pathlib import Path
from fastapi.testclient import TestClient
from autodiag_fixtures import ANSWERS
from autodiag.service import open_study
from autodiag.web import create_app
opened = open_study(Path({str(folder)!r}))
client = TestClient(create_app(opened.model, opened.gate, similar=opened.similar))
for diploma in ("bac", "bac+2", "bac+5", "infra_bac"):
    assert client.post("/diagnostic", data={{**ANSWERS, "diplome": diploma}}).status_code == 200
reach = {{"flwr", "coordinator", "node_agent", "trust_broker", "simulations"}}
print(sorted({{m.split(".")[0] for m in sys.modules}} & reach))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


# --------------------------------------------------------------------------- the real query path


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A study folder with a table built by `r2dde query`'s engine on synthetic partners."""
    from coordinator.query_file import read_query_file
    from simulations.scenarios import run_query_simulation
    from simulations.usecase3 import generate_formations

    root = tmp_path_factory.mktemp("similar")
    query = read_query_file(QUERY_FILE)
    generate_formations(root / "data", seed=11, people=12000, sites=query.spec.sites)
    study = write_study(root / "study")
    report = run_query_simulation(query.spec, root / "data", study / RELEASE_FOLDER)
    assert report["status"] == "completed"
    return study, root / "data"


def true_counts(data: Path, sites: tuple[str, ...]) -> pd.Series:
    """Per (zone, diploma): people counted once per site (their latest training), summed over sites."""
    frames = []
    for site in sites:
        frame = pd.read_csv(data / site / "formations.csv", dtype=str)
        frames.append(frame.sort_values("training_end", kind="stable").drop_duplicates("nir", keep="last"))
    return pd.concat(frames).groupby(["zone_emploi", "education_level"]).size()


def test_a_table_released_through_the_query_path_is_served_cell_by_cell(released):
    study, data = released
    table = read_similar_table(study)
    assert table is not None and table.group_by == ("zone_emploi", "education_level")
    shown = {k: v for k, v in table.cells.items() if v is not None}
    assert shown and len(shown) < len(table.cells)  # small cells are suppressed
    # The released counts are noisy but honest: most true counts lie in their 95 % intervals.
    truth = true_counts(data, table.sites)
    inside = [
        v[table.count].low <= truth.get(k, 0) <= v[table.count].high  # type: ignore[operator]
        for k, v in shown.items()
    ]
    assert sum(inside) >= 0.8 * len(inside)
    # The page shows the person's own cell from that table.
    (zone, diploma), values = max(shown.items(), key=lambda kv: kv[1][table.count].value)  # type: ignore[index]
    text = similar_section(client_for(study), at(zone, diploma))
    rate = values[table.rate]  # type: ignore[index]
    assert f"{round(100 * rate.value)} % avaient un emploi" in text
    assert f"entre {round(100 * rate.low)} % et {round(100 * rate.high)} %" in text  # type: ignore[operator]
