"""UCI Adult as a federated benchmark: the raw loader, a non-IID split across sites, and site files.

The raw files have no header, ``", "`` separators, ``?`` for missing values; ``adult.test`` starts
with a junk line and its labels end with a dot. Both are normalized to ``tasks.schema.ADULT_COLUMNS``
with labels ``<=50K`` / ``>50K`` and missing values as empty cells.

Heterogeneity across sites comes from a Dirichlet split over the classes of one attribute (label
skew by default): for each class, site shares are drawn from Dir(alpha), so a small alpha gives sites
with very different class mixes — the usual way federated benchmarks model partners that serve
different populations.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tasks import reference
from tasks.schema import ADULT_COLUMNS, validate_adult

ADULT_TRAIN = "adult/adult.data"
ADULT_TEST = "adult/adult.test"
#: Smallest number of rows a site may receive from ``split_non_iid`` by default.
MIN_SITE_ROWS = 200
_MAX_DRAWS = 1000


def _read_raw(relative: str, *, skip_first_line: bool) -> pd.DataFrame:
    path = reference.reference_data_dir() / relative
    if not path.is_file():
        raise reference.ReferenceDataError(f"reference file {path} is missing")
    raw = pd.read_csv(
        path,
        header=None,
        names=list(ADULT_COLUMNS),
        sep=",",
        skipinitialspace=True,
        dtype=str,
        keep_default_na=False,
        skiprows=1 if skip_first_line else 0,
        skip_blank_lines=True,
    )
    raw = raw.apply(lambda column: column.str.strip())
    raw = raw.replace("?", "")
    raw["income"] = raw["income"].str.rstrip(".")
    return validate_adult(raw, f"adult/{path.name}", first_row=2 if skip_first_line else 1)


def load_adult_train() -> pd.DataFrame:
    """The 32,561 training rows of UCI Adult, typed (``tasks.schema.ADULT_COLUMNS``)."""
    return _read_raw(ADULT_TRAIN, skip_first_line=False)


def load_adult_test() -> pd.DataFrame:
    """The 16,281 test rows of UCI Adult, typed, labels without their trailing dot."""
    return _read_raw(ADULT_TEST, skip_first_line=True)


def split_non_iid(
    df: pd.DataFrame,
    n_sites: int,
    seed: int,
    alpha: float = 0.5,
    *,
    by: str = "income",
    min_size: int = MIN_SITE_ROWS,
) -> list[pd.DataFrame]:
    """Split ``df`` into ``n_sites`` disjoint parts with Dirichlet(alpha) class mixes over column ``by``.

    Every row goes to exactly one site; draws are repeated until every site has at least ``min_size``
    rows (a clear error if that is impossible, e.g. too many sites for the data).
    """
    if n_sites < 1:
        raise ValueError("n_sites must be at least 1")
    if alpha <= 0:
        raise ValueError("alpha must be positive")
    if by not in df.columns:
        raise ValueError(f"column '{by}' is not in the table (columns: {', '.join(map(str, df.columns))})")
    if n_sites * min_size > len(df):
        raise ValueError(f"{len(df)} rows cannot give {n_sites} sites of at least {min_size} rows")
    rng = np.random.default_rng(seed)
    classes = df[by].fillna("").astype(str).to_numpy()
    members = {c: rng.permutation(np.flatnonzero(classes == c)) for c in sorted(set(classes))}
    for _ in range(_MAX_DRAWS):
        assignment = np.empty(len(df), dtype=int)
        for rows in members.values():
            shares = rng.dirichlet(np.full(n_sites, alpha))
            cuts = (np.cumsum(shares)[:-1] * len(rows)).astype(int)
            for site, part in enumerate(np.split(rows, cuts)):
                assignment[part] = site
        sizes = np.bincount(assignment, minlength=n_sites)
        if sizes.min() >= min_size:
            return [df.iloc[np.flatnonzero(assignment == s)].reset_index(drop=True) for s in range(n_sites)]
    raise ValueError(
        f"no Dirichlet(alpha={alpha}) split over '{by}' gave every one of {n_sites} sites {min_size} rows "
        f"in {_MAX_DRAWS} draws; raise alpha or lower min_size"
    )


def site_id(index: int) -> str:
    """Site id of the ``index``-th Adult site (1-based): ``site_1``, ``site_2``, …"""
    return f"site_{index}"


def write_adult_sites(
    out_dir: Path, n_sites: int, seed: int, *, alpha: float = 0.5, by: str = "income"
) -> dict[str, Path]:
    """Split the Adult training rows non-IID and write ``<out_dir>/site_<i>/adult.csv`` (i = 1…n)."""
    parts = split_non_iid(load_adult_train(), n_sites, seed, alpha, by=by)
    paths: dict[str, Path] = {}
    for index, part in enumerate(parts, start=1):
        folder = Path(out_dir) / site_id(index)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "adult.csv"
        part[list(ADULT_COLUMNS)].to_csv(path, index=False, lineterminator="\n")
        paths[site_id(index)] = path
    return paths


__all__ = [
    "load_adult_test",
    "load_adult_train",
    "site_id",
    "split_non_iid",
    "write_adult_sites",
]
