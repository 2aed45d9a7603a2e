"""`r2dde autodiag serve`: the autodiagnostic service on a completed study's released model.

Light on purpose: FastAPI, torch and uvicorn are imported inside the command, so that mounting
this sub-command costs the rest of `r2dde` nothing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)


@app.callback()
def autodiag() -> None:
    """Le service d'autodiagnostic de mobilité (demandeurs d'emploi, conseillers)."""


@app.command("serve")
def serve(
    study: Annotated[
        Path, typer.Option("--study", help="Dossier d'une étude terminée (report.json + model.pt).")
    ],
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port d'écoute.")] = 8080,
    host: Annotated[
        str, typer.Option("--host", help="Adresse d'écoute (127.0.0.1 : cette machine seule).")
    ] = "127.0.0.1",
    workers: Annotated[
        int, typer.Option("--workers", min=1, max=16, help="Processus de service (un par cœur).")
    ] = 1,
    purpose: Annotated[
        str | None, typer.Option("--purpose", help="Finalité dont la porte d'équité s'applique.")
    ] = None,
) -> None:
    """Serve the released model to job seekers and counselors, if it passed its fairness gate."""
    from .service import ServiceRefused, open_study

    try:
        opened = open_study(study, purpose)
    except ServiceRefused as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    import uvicorn

    typer.echo(
        f"Autodiagnostic de mobilité : étude {opened.model.report.study_id}, porte d'équité passée.\n"
        f"Écoute sur http://{host}:{port}/ (conseiller : /conseiller). Aucune réponse n'est journalisée, "
        "aucun cookie, rien n'est enregistré. Ctrl-C pour arrêter."
    )
    similar = opened.similar
    typer.echo(
        f"Profils similaires : table publiée {similar.study_id} (lecture seule, aucune nouvelle requête)."
        if similar is not None
        else "Profils similaires : aucune table publiée avec l'étude (make similaires) ; la page le dit."
    )
    # Each worker process opens the study again (and checks its gate again) from these variables.
    os.environ[STUDY_ENV] = str(study.resolve())
    os.environ[PURPOSE_ENV] = purpose or ""
    if workers > 1:
        # uvicorn's workers re-import __main__: let it be uvicorn, not the whole `r2dde` command line.
        os.execv(
            sys.executable,
            [
                sys.executable,
                "-m",
                "uvicorn",
                "autodiag.cli:app_from_environment",
                "--factory",
                "--host",
                host,
            ]
            + ["--port", str(port), "--workers", str(workers), "--no-access-log", "--log-level", "warning"]
            + ["--no-server-header"],
        )
    uvicorn.run(
        "autodiag.cli:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level="warning",
        server_header=False,
    )


STUDY_ENV = "R2DDE_AUTODIAG_STUDY"
PURPOSE_ENV = "R2DDE_AUTODIAG_PURPOSE"


def app_from_environment():  # type: ignore[no-untyped-def]
    """The app of one service process, for uvicorn's workers (they import it by name)."""
    import torch

    from .service import open_study
    from .web import create_app

    # One thread per forward pass: a diagnosis is a few dozen rows, and under concurrent users
    # intra-op threads only fight each other for the cores.
    torch.set_num_threads(1)
    opened = open_study(Path(os.environ[STUDY_ENV]), os.environ.get(PURPOSE_ENV) or None)
    return create_app(opened.model, opened.gate, similar=opened.similar)
