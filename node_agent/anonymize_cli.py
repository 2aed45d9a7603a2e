"""`r2dde anonymize` as the root CLI mounts it: the data officer's tools with the node's own reader.

A table of a schema the node knows (``dataset: parcours``) is read and checked exactly as the node
reads it: the same row rule (any bad cell refuses the file, every problem listed with its line,
field and rule) and the same numbering. ``anonymization`` is a leaf and knows no schema, so the
node side plugs its reader into the command.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from anonymization.cli import build_app
from anonymization.errors import AnonymizationError

if TYPE_CHECKING:
    import pandas as pd


def check_node_table(path: Path, dataset: str) -> pd.DataFrame | None:
    """The table as the node reads it, or None when ``dataset`` is not one of the node's schemas."""
    from tasks.schema import SCHEMAS, SchemaError, validate_table

    from .sources import file_source

    schema = SCHEMAS.get(dataset)
    if schema is None:
        return None
    try:
        return file_source(path, str(path)).load(lambda frame, name: validate_table(frame, name, schema))
    except SchemaError as exc:
        raise AnonymizationError(
            f"{exc}\nthe node would refuse this file too (a data error): fix these lines, then run again"
        ) from None


app = build_app(check_node_table)
