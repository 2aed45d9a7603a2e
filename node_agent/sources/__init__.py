"""The node's data sources: CSV and Parquet files, or a table or query of a SQL database.

``factory.site_source`` picks one from the node's settings; every source hands ``tasks.schema`` a
raw frame with its records numbered, so that the rules and the messages are the same for all.
(``sql_source`` is imported only by the nodes that read a database: SQLAlchemy is not free.)
"""

from __future__ import annotations

from .factory import file_source, load_file, site_source
from .source import TableSource, Validate

__all__ = ["TableSource", "Validate", "file_source", "load_file", "site_source"]
