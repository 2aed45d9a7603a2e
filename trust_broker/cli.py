"""``r2dde broker …``: run the trust broker service.

The service (FastAPI, SQLAlchemy, uvicorn, the accountants) is imported when `serve` runs, not for
`--help`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

DEFAULT_DB_URL = (
    "sqlite:///r2dde-broker.db"  # trust_broker.store.db.DEFAULT_DB_URL (a test checks they agree)
)

app = typer.Typer(
    help="The trust broker: grants, opt-outs, privacy-budget ledger, audit chain.", no_args_is_help=True
)
console = Console(stderr=True)


@app.callback()
def _broker() -> None:
    """The trust broker service."""


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}", soft_wrap=True)
    return typer.Exit(code=2)


@app.command()
def serve(
    keys: Annotated[Path, typer.Option("--keys", help="folder written by `r2dde provision`")],
    database: Annotated[
        str,
        typer.Option("--database", help="SQLite path/URL, postgresql:// URL, or memory:// (lost at exit)"),
    ] = DEFAULT_DB_URL,
    policies: Annotated[
        Path | None, typer.Option("--policies", help="folder with purposes/ and sites/ (default: shipped)")
    ] = None,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8443,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
    sign_heads_every: Annotated[
        int,
        typer.Option(
            help="sign the audit chain's head after a transaction passing a multiple of N events (1: each)"
        ),
    ] = 1,
    workers: Annotated[int, typer.Option(help="server processes (PostgreSQL only; SQLite keeps one)")] = 1,
    db: Annotated[str | None, typer.Option("--db", hidden=True)] = None,  # old name of --database
) -> None:
    """Serve the broker API over HTTP (put TLS in front of it in production)."""
    import uvicorn
    from sqlalchemy.exc import SQLAlchemyError

    from policies import PolicyLoadError
    from trust_broker.service import app as app_module
    from trust_broker.service.app import create_app, freeze_startup_heap
    from trust_broker.service.context import BrokerContext, BrokerSettings
    from trust_broker.service.workers import serve_workers

    db = db or database
    try:
        settings = BrokerSettings(sign_heads_every=max(1, sign_heads_every))
        context = BrokerContext.from_config(db, keys, policies, settings=settings)
    except PolicyLoadError as exc:
        raise _fail(f"policy documents: {exc}") from exc
    except (ValueError, FileExistsError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from exc
    except SQLAlchemyError as exc:
        first = (str(getattr(exc, "orig", None) or exc).splitlines() or ["unknown error"])[0]
        raise _fail(f"database {db!r} cannot be used: {first}") from None
    out = Console(soft_wrap=True)
    out.print(f"[bold]R2DDE trust broker[/bold] on http://{host}:{port} (database: {context.database_name})")
    out.print("policies loaded:")
    for name, digest in context.policy_digests().items():
        out.print(f"  {name:<40} {digest}")
    out.print("participants:")
    for participant in context.store.participants():
        site = f" site={participant.site}" if participant.site else ""
        out.print(f"  {participant.kid:<32} role={participant.role.value}{site}")
    if workers > 1 and context.database_name == "postgresql":
        context.close()
        os.environ.update(
            {
                app_module.ENV_DB: db,
                app_module.ENV_KEYS: str(Path(keys).resolve()),
                app_module.ENV_SIGN_HEADS_EVERY: str(max(1, sign_heads_every)),
            }
        )
        if policies is not None:
            os.environ[app_module.ENV_POLICIES] = str(Path(policies).resolve())
        try:
            code = serve_workers(workers, host, port, log_level)
        except OSError as exc:
            raise _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        if code:
            raise _fail("a broker worker process stopped; the others were stopped too")
        return
    app = create_app(context)
    freeze_startup_heap()
    uvicorn.run(app, host=host, port=port, log_level=log_level, ws="none")
