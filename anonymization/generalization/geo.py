"""INSEE commune code → zone d'emploi 2020 and département, from INSEE's own composition table."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

from anonymization.errors import ConfigError
from anonymization.generalization.age_band import _positions
from anonymization.generalization.base import GeneralizationResult, Generalizer
from anonymization.reference import reference_data_dir

ZE_TABLE = Path("geo") / "insee_ze2020_communes_paca.csv"


@lru_cache(maxsize=4)
def load_commune_table(path: Path) -> pd.DataFrame:
    """codgeo → (ze2020, dep) with codes kept as zero-padded strings."""
    if not path.is_file():
        raise ConfigError(f"INSEE commune table {path} not found (set R2DDE_REFERENCE_DATA)")
    table = pd.read_csv(path, dtype=str, usecols=["codgeo", "ze2020", "dep"])
    return table.set_index("codgeo")


class CommuneGeneralizer(Generalizer):
    """A commune is replaced by its employment zone and its département; unknown codes are counted."""

    method = "commune_to_zone"

    def __init__(
        self,
        zone_output: str = "zone_emploi",
        departement_output: str = "departement",
        table: Path | None = None,
    ) -> None:
        self.zone_output = zone_output
        self.departement_output = departement_output
        self.table_path = table or reference_data_dir() / ZE_TABLE

    def outputs(self) -> list[str]:
        return [self.zone_output, self.departement_output]

    def apply(self, values: pd.Series) -> GeneralizationResult:
        table = load_commune_table(self.table_path)
        empty = self.empty_mask(values)
        codes = values.astype("string").str.strip().str.upper().str.zfill(5)
        zone = codes.map(table["ze2020"]).astype("string")
        departement = codes.map(table["dep"]).astype("string")
        unknown = ~empty & zone.isna()
        return GeneralizationResult(
            columns={self.zone_output: zone, self.departement_output: departement},
            empty_positions=_positions(empty),
            unknown_positions=_positions(unknown),
            details={"table": ZE_TABLE.as_posix()},
        )
