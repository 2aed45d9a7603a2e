"""`r2dde anonymize …`: the data officer's tools, on files, without the rest of the platform.

r2dde anonymize table IN OUT --config CONFIG [--linkage-key KEY] [--study STUDY] [--report REPORT]
r2dde anonymize text [--operator tag|pseudonym]  < notes.txt > scrubbed.txt
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from anonymization.errors import AnonymizationError

#: Reads and checks a table of a schema the node knows, exactly as the node does (its row rule, its
#: line numbers), or answers None for any other table. Anonymization is a leaf and knows no schema:
#: ``node_agent.anonymize_cli`` builds the mounted command with the node's reader.
TableCheck = Callable[[Path, str], Any]

TABLE_READERS = {".csv": "csv", ".parquet": "parquet"}


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _format(path: Path) -> str:
    kind = TABLE_READERS.get(path.suffix.lower())
    if kind is None:
        _fail(f"{path}: unsupported file type {path.suffix!r} (use .csv or .parquet)")
    return kind or ""


def _read_utf8(path: Path) -> str:
    """The file's text, or a clear error naming the line of the first byte that is not UTF-8."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise AnonymizationError(
            f"{path}: line {line} is not UTF-8 (byte {exc.start}); re-encode the file as UTF-8"
        ) from None


def _record_lines(text: str, records: int) -> list[int]:
    """The line each CSV record starts on (header on line 1; quoted text may span lines)."""
    import csv

    reader = csv.reader(io.StringIO(text))
    next(reader, None)
    lines = []
    start = reader.line_num + 1
    for _ in reader:
        lines.append(start)
        start = reader.line_num + 1
    return lines[:records] if len(lines) >= records else list(range(2, records + 2))


def build_app(check_table: TableCheck | None = None) -> typer.Typer:
    """``r2dde anonymize``: ``check_table`` reads the tables of the node's schemas (none without it)."""
    app = typer.Typer(
        help="Pseudonymize, generalize and scrub a partner's data before any use.", no_args_is_help=True
    )
    app.command("table")(_table_command(check_table))
    app.command("text")(text_command)
    return app


def _table_command(check_table: TableCheck | None) -> Callable[..., None]:
    def table_command(
        input_path: Annotated[Path, typer.Argument(metavar="IN", help="CSV (UTF-8) or Parquet table.")],
        output_path: Annotated[
            Path, typer.Argument(metavar="OUT", help="Where to write the anonymized table.")
        ],
        config_path: Annotated[Path, typer.Option("--config", help="YAML table configuration.")],
        linkage_key: Annotated[
            Path | None,
            typer.Option(
                help="Linkage key file (mode 600); else $R2DDE_LINKAGE_KEY_FILE or $R2DDE_LINKAGE_KEY."
            ),
        ] = None,
        study: Annotated[str, typer.Option(help="Study id the study pseudonyms are derived for.")] = "local",
        report_path: Annotated[
            Path | None,
            typer.Option("--report", help="Write the JSON report here (default: OUT + .report.json)."),
        ] = None,
        key_file: Annotated[Path | None, typer.Option("--key-file", hidden=True)] = None,  # old --linkage-key
    ) -> None:
        """Anonymize a table; write it and a JSON report (pseudonymized, rejected, generalized, scrubbed)."""
        key_file = linkage_key or key_file
        import pandas as pd

        from anonymization.config import load_config
        from anonymization.keys import load_linkage_key
        from anonymization.table import LINE_NUMBERS, anonymize_table

        in_format, out_format = _format(input_path), _format(output_path)
        try:
            config = load_config(config_path)
            key = load_linkage_key(key_file)
            if not input_path.is_file():
                _fail(f"{input_path}: no such file")
            if in_format == "csv":
                text = _read_utf8(input_path)
            raw = check_table(input_path, config.dataset) if check_table is not None else None
            if raw is None and in_format == "csv":
                raw = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""])
                raw.attrs[LINE_NUMBERS] = _record_lines(text, len(raw))
            elif raw is None:
                raw = pd.read_parquet(input_path)
            anonymized, report = anonymize_table(
                raw, config, source=str(input_path), linkage_key=key, study_id=study
            )
        except AnonymizationError as exc:
            _fail(str(exc))
            return
        output_path.parent.mkdir(parents=True, exist_ok=True)
        if out_format == "csv":
            anonymized.to_csv(output_path, index=False)
        else:
            anonymized.to_parquet(output_path, index=False)
        report_file = report_path or output_path.with_name(output_path.name + ".report.json")
        report_file.write_text(report.to_json() + "\n", encoding="utf-8")
        for line in report.summary_lines():
            typer.echo(line, err=True)
        typer.echo(f"wrote {output_path} and {report_file}", err=True)

    return table_command


def text_command(
    operator: Annotated[
        str, typer.Option(help="tag (<NOM>, <NIR>…) or pseudonym (needs the linkage key).")
    ] = "tag",
    linkage_key: Annotated[
        Path | None, typer.Option(help="Linkage key file for --operator pseudonym.")
    ] = None,
    study: Annotated[str, typer.Option(help="Study id for --operator pseudonym.")] = "local",
    batch_size: Annotated[int, typer.Option(help="Lines per batch given to the model.")] = 256,
    key_file: Annotated[Path | None, typer.Option("--key-file", hidden=True)] = None,  # old --linkage-key
) -> None:
    """Scrub French free text: one line in on stdin, one scrubbed line out on stdout."""
    key_file = linkage_key or key_file
    from anonymization.keys import load_linkage_key
    from anonymization.pseudonyms import Pseudonymizer
    from anonymization.scrubber import FrenchScrubber

    try:
        study_pseudonymizer = None
        if operator == "pseudonym":
            study_pseudonymizer = Pseudonymizer(load_linkage_key(key_file)).for_study(study)
        scrubber = FrenchScrubber(operator=operator, study=study_pseudonymizer)
    except (AnonymizationError, ValueError) as exc:
        _fail(str(exc))
        return
    stdin = sys.stdin.buffer
    batch: list[str] = []

    def flush() -> None:
        for line in scrubber.scrub_batch(batch):
            sys.stdout.write(line + "\n")
        sys.stdout.flush()
        batch.clear()

    try:
        for line_number, raw_line in enumerate(stdin, start=1):
            try:
                text = raw_line.decode("utf-8")
            except UnicodeDecodeError as exc:
                flush()
                _fail(
                    f"stdin line {line_number}: not UTF-8 (byte {exc.start}); nothing after line "
                    f"{line_number - 1} was written"
                )
            batch.append(text.rstrip("\r\n").replace("\r", " "))
            if len(batch) >= batch_size:
                flush()
        flush()
    except AnonymizationError as exc:
        _fail(str(exc))


app = build_app()  # without the node's schemas: every table is read as a generic one
