"""`r2dde node …`: what a partner's IT team runs — the site's SuperNode.

Imports stay inside the commands: `r2dde --help` must not pay for pandas, Flower or torch.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="A partner's node agent: the site's Flower SuperNode.", no_args_is_help=True)

DEFAULT_RUNTIME_PORT = 9094  # node_agent.deployment.supernode.DEFAULT_RUNTIME_PORT (checked by a test)


@app.callback()
def node() -> None:
    """A partner's node agent: the site's Flower SuperNode."""


def launcher_folder(flwr_home: Path | None) -> Path:
    """Where the node's ``flwr-clientapp`` launcher (and its warm server's socket) live."""
    return (flwr_home or Path.home() / ".flwr").resolve() / "r2dde-bin"


def supernode_environment(flwr_home: Path | None) -> dict[str, str]:
    """This venv first on PATH (the SuperNode launches ``flwr-clientapp`` by name), and before it
    the partner's ``flwr-clientapp`` launcher, which runs only app bundles the partner approved
    (``node_agent.deployment.approved_app``), and the ``flower-superexec`` its SuperNode wakes when
    a message arrives (``node_agent.deployment.superexec_wake``); telemetry off.

    The ClientApp runs from the app bundle Flower installs under FLWR_HOME, where the default
    ``<repo>/../shared/data`` means nothing: the reference-data folder is resolved here, once.
    """
    from node_agent.deployment.approved_app import write_launcher
    from node_agent.deployment.superexec_wake import WAKE_ENV, wake_path, write_superexec_launcher
    from tasks.reference import ENV_VAR as REFERENCE_ENV
    from tasks.reference import ReferenceDataError, reference_data_dir

    env = dict(os.environ)
    launcher = write_launcher(launcher_folder(flwr_home))
    env["PATH"] = os.pathsep.join(
        [str(launcher.parent), str(Path(sys.executable).parent), env.get("PATH", "")]
    )
    env["FLWR_TELEMETRY_ENABLED"] = "0"
    # The SuperNode starts `flower-superexec` by name: ours, beside the launcher, is Flower's woken by
    # the SuperNode when a message arrives (superexec_wake). Flower's own poll, should the wake socket
    # fail, every quarter second (its default, once a second, is half a second per message on average).
    write_superexec_launcher(launcher.parent)
    env[WAKE_ENV] = str(wake_path(launcher.parent))
    env.setdefault("FLWR_SUPEREXEC_TASK_POLL_INTERVAL", "0.25")
    with contextlib.suppress(ReferenceDataError):
        env[REFERENCE_ENV] = str(reference_data_dir())
    if flwr_home is not None:
        flwr_home.mkdir(parents=True, exist_ok=True)
        env["FLWR_HOME"] = str(flwr_home.resolve())
    return env


def source_config(source: str | None, table: str | None, query: str | None, dataset: str) -> dict[str, str]:
    """The node-config keys of a database source (``node_agent.settings``), checked before start.

    A password in the URL is refused: the URL travels in the SuperNode's command line, which every
    user of the machine can list; the database driver reads it from its own file instead.
    """
    if source is None:
        if table or query:
            raise ValueError("--table and --query read from a database: give its URL with --source")
        return {}
    if table and query:
        raise ValueError("give --table or --query, not both")
    from sqlalchemy import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(source)
    except ArgumentError:
        raise ValueError("--source: not a database URL (e.g. postgresql+psycopg://node@db/emploi)") from None
    if url.password is not None:
        raise ValueError(
            f"--source {url.render_as_string(hide_password=True)}: no password in the URL (the process "
            "list shows it); put it in ~/.pgpass or the file PGPASSFILE names"
        )
    if query:
        from node_agent.sources.sql_source import check_read_only

        check_read_only(query, "--query")
    config = {"source": source, "source-dataset": dataset}
    config.update({"source-table": table} if table else {"source-query": query} if query else {})
    return config


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)


@app.command("start")
def start(
    site: Annotated[str, typer.Option(help="This partner's site id, e.g. france_travail.")],
    data_dir: Annotated[
        Path, typer.Option(help="Folder holding parcours.csv (or .parquet); the node's reports go there too.")
    ],
    broker_url: Annotated[str, typer.Option(help="The trust broker's URL.")],
    superlink: Annotated[str, typer.Option(help="The Region's SuperLink address host:port.")],
    keys: Annotated[
        Path | None,
        typer.Option("--keys", help="This node's own folder (keys, pinned CA and broker key, site policy)."),
    ] = None,
    keys_dir: Annotated[Path | None, typer.Option("--keys-dir", hidden=True)] = None,  # old name of --keys
    runtime_port: Annotated[
        int, typer.Option(help="Loopback port of the SuperNode's own Runtime API (one per node on a host).")
    ] = DEFAULT_RUNTIME_PORT,
    flwr_home: Annotated[
        Path | None, typer.Option(help="Flower's working folder for this node (installed app bundles).")
    ] = None,
    max_wait_time: Annotated[
        float | None, typer.Option(help="Give up after this many seconds without the SuperLink.")
    ] = None,
    site_policy: Annotated[
        Path | None,
        typer.Option(help="This site's own policy (YAML); default: site-policy.yaml in the --keys folder."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Run every check (data, keys, policy, broker, SuperLink), print the command.")
    ] = False,
    source: Annotated[
        str | None,
        typer.Option(
            help="Read the site's records from this database (SQLAlchemy URL, e.g. "
            "postgresql+psycopg://node@db/emploi) instead of the data folder. No password in it: "
            "libpq reads ~/.pgpass or PGPASSFILE."
        ),
    ] = None,
    table: Annotated[
        str | None, typer.Option(help="The table (schema.table) holding the dataset, with --source.")
    ] = None,
    query: Annotated[
        str | None,
        typer.Option(help="A single SELECT giving the dataset, with --source (run read-only)."),
    ] = None,
    source_dataset: Annotated[
        str, typer.Option(help="The dataset --table or --query holds; others: the table of their name.")
    ] = "parcours",
    restart: Annotated[
        bool,
        typer.Option(
            help="Start the SuperNode again when it exits on its own (e.g. the SuperLink restarted)."
        ),
    ] = True,
    warm_start: Annotated[
        bool,
        typer.Option(
            help="Fork each message's ClientApp process from a server with torch and Opacus already "
            "imported (no import cost per message; the server holds about 450 MB resident)."
        ),
    ] = True,
) -> None:
    """Check this site's data, keys, policy, broker and SuperLink, say what the node exposes and trusts,
    then become its SuperNode."""
    from node_agent.deployment.checks import run_checks
    from node_agent.deployment.supernode import SuperNodeSettings
    from policies.loader import PolicyLoadError

    folder = keys or keys_dir
    if folder is None:
        raise _fail("missing option '--keys' (this node's own folder)")
    try:
        extra = source_config(source, table, query, source_dataset)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    settings = SuperNodeSettings(
        site=site,
        data_dir=data_dir,
        keys_dir=folder,
        broker_url=broker_url,
        superlink=superlink,
        runtime_port=runtime_port,
        max_wait_time_s=max_wait_time,
        site_policy=site_policy,
        extra_node_config=extra,
    )
    try:
        settings.check()
        argv = settings.argv()
    except (ValueError, FileNotFoundError, PolicyLoadError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"R2DDE node agent — SuperNode of {site}")
    for line in settings.describe():
        typer.echo(f"  {line}")
    if source is not None:
        typer.echo(
            f"  reads        {source} ({f'table {table}' if table else 'query' if query else 'tables'})"
        )
    findings = run_checks(settings, network=True)
    blocking = [f for f in findings if not f.ok and (dry_run or not _is_network(f.check))]
    for finding in findings:
        mark = "ok  " if finding.ok else ("FAIL" if finding in blocking else "warn")
        first, *rest = finding.detail.splitlines() or [""]
        typer.echo(f"  check {mark} {finding.check}: {first}", err=not finding.ok)
        for line in rest:
            typer.echo(f"       {line}", err=True)
    if blocking:
        raise _fail(
            f"{len(blocking)} check(s) failed: {', '.join(f.check for f in blocking)} — fix and retry"
        )
    if dry_run:
        typer.echo(" ".join(argv))
        return
    sys.stdout.flush()
    sys.stderr.flush()
    from node_agent.deployment.warm_start import start_server

    env = supernode_environment(flwr_home)
    # Beside the SuperNode: the process its ClientApp launches fork from, imports done (warm_start).
    warm = start_server(launcher_folder(flwr_home), env) if warm_start else None
    if not restart:
        # Become the SuperNode (same pid): signals from systemd/docker/Ctrl-C reach Flower directly;
        # the warm server sees its parent go with it.
        os.execve(argv[0], argv, env)
    from node_agent.deployment.keepalive import keep_running, stop_child

    try:
        code = keep_running(argv, env, say=lambda line: typer.echo(line, err=True))
    finally:
        if warm is not None:
            stop_child(warm)
    raise typer.Exit(code=code)


@app.command("keygen")
def keygen(
    site: Annotated[str, typer.Option(help="This partner's site id, e.g. france_travail.")],
    keys: Annotated[Path, typer.Option("--keys", help="This node's own folder (created, 0700).")],
    overwrite: Annotated[bool, typer.Option(help="Replace this node's existing keys.")] = False,
) -> None:
    """Generate this node's own key pairs at home; export only their public halves for registration."""
    from trust_broker.provision.party import generate_node_keys

    try:
        made = generate_node_keys(keys, site, overwrite=overwrite)
    except (ValueError, FileExistsError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"keys of node {site} in {made.folder} (private, 0600: they never leave this machine)")
    typer.echo(f"send to the trusted third party and the Region: {made.public_dir}/ (public keys only)")
    for path in made.exports:
        typer.echo(f"  {path}")
    typer.echo(f"review the site's own policy: {made.folder / 'site-policy.yaml'} (the node reads no other)")


linkage = typer.Typer(
    help="The linkage key, made among the nodes: never held by the broker or the Region.",
    no_args_is_help=True,
)
app.add_typer(linkage, name="linkage-key")


@linkage.command("new")
def linkage_new(keys: Annotated[Path, typer.Option("--keys", help="This node's own folder.")]) -> None:
    """Create the federation's linkage key here (one node does this once), then seal it for the others."""
    from trust_broker.provision.linkage import LINKAGE_KEY_FILE, create_linkage_key

    try:
        path = create_linkage_key(keys / LINKAGE_KEY_FILE)
    except FileExistsError as exc:
        raise _fail(str(exc)) from None
    typer.echo(
        f"linkage key created: {path} (0600). Seal it for each other node: `r2dde node linkage-key seal`"
    )


@linkage.command("seal")
def linkage_seal(
    keys: Annotated[Path, typer.Option("--keys", help="This node's own folder (holding linkage.key).")],
    to: Annotated[Path, typer.Option("--to", help="The other node's exported exchange.pub.")],
    out: Annotated[Path, typer.Option("--out", help="The sealed file to send to that node.")],
) -> None:
    """Seal the linkage key for one other node: only that node can open the file, whoever carries it."""
    from trust_broker.provision.linkage import LINKAGE_KEY_FILE, LinkageSealError, seal_linkage_key

    try:
        seal_linkage_key(keys / LINKAGE_KEY_FILE, to, out)
    except (OSError, LinkageSealError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"sealed for the holder of {to}: {out} (safe to send by any channel)")


@linkage.command("open")
def linkage_open(
    keys: Annotated[Path, typer.Option("--keys", help="This node's own folder (holding exchange.key).")],
    sealed: Annotated[Path, typer.Option("--sealed", help="The sealed file another node sent.")],
) -> None:
    """Open the linkage key another node sealed for this one; write it as linkage.key (0600)."""
    from trust_broker.provision.linkage import LINKAGE_KEY_FILE, LinkageSealError, open_sealed_linkage_key
    from trust_broker.provision.party import EXCHANGE_KEY

    try:
        path = open_sealed_linkage_key(sealed, keys / EXCHANGE_KEY, keys / LINKAGE_KEY_FILE)
    except (LinkageSealError, FileExistsError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"linkage key written: {path} (0600)")


def _is_network(check: str) -> bool:
    from node_agent.deployment.checks import CHECKS

    return any(c.name == check and c.network for c in CHECKS)


@app.command("approve-app")
def approve_app(
    fab: Annotated[Path, typer.Option(help="The app bundle (.fab) this partner reviewed.")],
    keys: Annotated[Path, typer.Option("--keys", help="This node's own folder.")],
) -> None:
    """Add a reviewed app bundle's code digest to this node's allow-list: only listed apps run here."""
    from node_agent.deployment.approved_app import APPROVED_APPS_FILE, AppNotApproved, code_digest

    keys_dir = keys
    try:
        digest = code_digest(fab.read_bytes())
    except (OSError, AppNotApproved) as exc:
        typer.secho(f"error: {fab}: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from None
    allow_list = keys_dir / APPROVED_APPS_FILE
    listed = allow_list.read_text(encoding="utf-8") if allow_list.exists() else ""
    if digest not in listed:
        allow_list.write_text(listed + f"{digest}  # {fab.name}\n", encoding="utf-8")
    typer.echo(f"{digest} approved in {allow_list}")


if __name__ == "__main__":  # pragma: no cover - `python -m node_agent.cli` before the root CLI mounts it
    app()
