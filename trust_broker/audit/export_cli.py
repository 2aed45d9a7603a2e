"""``r2dde audit export``: fetch the broker's audit export (JSON Lines), over HTTP or from its database."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console


def export_command(
    out: Annotated[Path, typer.Option("--out", help="JSON Lines file to write (0600)")],
    keys: Annotated[
        Path, typer.Option("--keys", help="provisioned folder (auditor or admin key; broker key for --db)")
    ],
    broker_url: Annotated[
        str | None, typer.Option("--broker-url", help="broker base URL (default: $R2DDE_BROKER_URL)")
    ] = None,
    role: Annotated[str, typer.Option(help="whose key signs the request: auditor or admin")] = "auditor",
    database: Annotated[
        str | None,
        typer.Option("--database", help="read the broker's database directly instead (on the broker host)"),
    ] = None,
    db: Annotated[str | None, typer.Option("--db", hidden=True)] = None,  # old name of --database
) -> None:
    """Write the audit chain with the broker's signed heads, for `r2dde audit verify`."""
    from trust_broker.client import BrokerClient, BrokerError  # the HTTP stack: only when it runs
    from trust_broker.roles import Role

    db = db or database
    console = Console(stderr=True)
    try:
        if db is not None:
            count = _export_from_database(db, keys, out)
        else:
            with BrokerClient.from_folder(keys, Role(role), base_url=broker_url) as client:
                client.export_audit(out)
            count = max(0, sum(1 for _ in out.open(encoding="utf-8")) - 1)
    except (BrokerError, ValueError, OSError) as exc:
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(code=2) from exc
    console.print(f"wrote {out} ({count} lines after the header)")


def _export_from_database(db: str, keys: Path, out: Path) -> int:
    from trust_broker.service.context import BrokerContext
    from trust_broker.service.routers.audit import render_export

    context = BrokerContext.from_config(db, keys)
    try:
        text = render_export(context)
    finally:
        context.close()
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fp:
        fp.write(text)
    return text.count("\n") - 1


def register(app: typer.Typer) -> None:
    """Mount ``export`` on the auditor's ``r2dde audit`` app (called by ``audit/cli.py``)."""
    app.command("export")(export_command)
