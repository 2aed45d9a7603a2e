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
    node_keys: Annotated[
        Path | None,
        typer.Option(
            help="folder of the nodes' exported public keys, <site>/node.pub and <site>/supernode.pub "
            "(`r2dde node keygen`); without it one folder holds every key (demos only)"
        ),
    ] = None,
) -> None:
    """Write the broker's, the Region's and the auditor's keys, the public registry and the SuperLink's TLS;
    with --node-keys the nodes keep their own keys and the linkage key is theirs."""
    console = Console(soft_wrap=True)
    site_ids = [s.strip() for s in sites.split(",") if s.strip()]
    try:
        exported = _node_exports(node_keys, site_ids) if node_keys is not None else {}
        folder = provision(
            out, site_ids, overwrite=overwrite, node_public_keys={s: e[0] for s, e in exported.items()}
        )
        tls = write_tls_material(
            folder.root,
            folder.sites,
            superlink_host or (),
            supernode_public_keys={s: e[1] for s, e in exported.items()},
        )
    except (ValueError, FileExistsError) as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(code=2) from exc
    console.print(f"provisioned {folder.root} for sites: {', '.join(folder.sites)}")
    console.print(f"  broker key nodes pin:   {folder.broker_public_key_path}")
    console.print(f"  participants registry:  {folder.participants_path}")
    for site in folder.sites:
        if site in exported:
            console.print(
                f"  node {site:<20} its own keys; send it {folder.node_dir(site)}"
                " (broker.pub, superlink-ca.pem)"
            )
        else:
            console.print(f"  node {site:<20} {folder.node_dir(site)} (node.key, linkage.key)")
    console.print(f"  SuperLink certificate:  {tls.server_certificate} (hosts: {', '.join(tls.hosts)})")
    console.print(f"  CA every party pins:    {tls.ca_certificate}")
    for site, key in tls.supernodes.items():
        if site not in exported:
            console.print(f"  SuperNode key of {site:<12} {key.private_key} (public: {key.public_key})")
    if exported and len(exported) == len(folder.sites):
        console.print("No node key and no linkage key were made here: the nodes hold their own.")
    else:
        console.print(
            "[yellow]Demo mode[/yellow]: this folder holds node keys and the linkage key. Across "
            "institutions each node runs `r2dde node keygen` and you pass --node-keys (README)."
        )


def _node_exports(folder: Path, sites: list[str]) -> dict[str, tuple[Path, Path]]:
    """site -> (node.pub, supernode.pub) from the folder the nodes' public exports were gathered in."""
    found = {}
    for site in sites:
        node_pub, supernode_pub = folder / site / "node.pub", folder / site / "supernode.pub"
        missing = [p for p in (node_pub, supernode_pub) if not p.is_file()]
        if missing:
            raise ValueError(f"{missing[0]}: missing (copy the public/ folder of `r2dde node keygen` there)")
        found[site] = (node_pub, supernode_pub)
    return found


app.callback(invoke_without_command=True)(provision_command)
