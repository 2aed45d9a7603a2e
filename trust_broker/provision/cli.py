"""``r2dde provision``: write every participant's keys and the nodes' linkage key into a folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from trust_broker.provision.keys import provision
from trust_broker.provision.tls import write_tls_material

app = typer.Typer(help="Create the keys of a deployment (broker, coordinator, nodes, auditor, admin).")


def provision_command(
    out: Annotated[Path, typer.Option("--out", help="folder to create (0700)")],
    sites: Annotated[str, typer.Option("--sites", help="comma-separated site ids, e.g. france_travail,apec")],
    overwrite: Annotated[
        bool, typer.Option(help="replace the keys of an already provisioned folder")
    ] = False,
    superlink_host: Annotated[
        list[str] | None,
        typer.Option(help="DNS name or IP the nodes dial for the SuperLink (repeatable; localhost always)"),
    ] = None,
) -> None:
    """Write Ed25519 keys for every participant, the linkage key for the nodes, and the public registry."""
    console = Console()
    site_ids = [s.strip() for s in sites.split(",") if s.strip()]
    try:
        folder = provision(out, site_ids, overwrite=overwrite)
        tls = write_tls_material(folder.root, folder.sites, superlink_host or ())
    except (ValueError, FileExistsError) as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(code=2) from exc
    console.print(f"provisioned {folder.root} for sites: {', '.join(folder.sites)}")
    console.print(f"  broker key nodes pin:   {folder.broker_public_key_path}")
    console.print(f"  participants registry:  {folder.participants_path}")
    for site in folder.sites:
        console.print(f"  node {site:<20} {folder.node_dir(site)} (node.key, linkage.key)")
    console.print(f"  SuperLink certificate:  {tls.server_certificate} (hosts: {', '.join(tls.hosts)})")
    console.print(f"  CA every party pins:    {tls.ca_certificate}")
    for site, key in tls.supernodes.items():
        console.print(f"  SuperNode key of {site:<12} {key.private_key} (public: {key.public_key})")
    console.print(
        "The linkage key is shared by the nodes only: never copy it to the broker or the coordinator."
    )


app.callback(invoke_without_command=True)(provision_command)
