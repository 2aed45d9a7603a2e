"""`r2dde`: one command line; each sub-command lives with the package that owns it.

Sub-commands are imported only when they run (or when their own ``--help`` is asked for): the root
help lists them from the table below, so `r2dde --help` costs typer alone, not Flower, torch or
FastAPI (it took about 10 s when every package was imported up front).
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import click
import typer
from typer.core import TyperGroup

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")

#: name -> (module, attribute, help). The attribute is a Typer app (a group) or a command function.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "simulate": (
        "simulations.cli",
        "simulate",
        "Synthesize partner data, run one study across the sites, write its report and audit.",
    ),
    "provision": (
        "trust_broker.provision.cli",
        "provision_command",
        "Write Ed25519 keys for every participant, the linkage key for the nodes, and the public registry.",
    ),
    "broker": ("trust_broker.cli", "app", "The trust broker service."),
    "audit": ("trust_broker.audit.cli", "app", "Auditors: export, verify and report on the broker's books."),
    "anonymize": (
        "node_agent.anonymize_cli",
        "app",
        "A partner's data officer: pseudonymize tables, scrub text.",
    ),
    "node": ("node_agent.cli", "app", "A partner's node (Flower SuperNode + node agent)."),
    "coordinator": ("coordinator.cli", "app", "The Region's side (SuperLink + coordinator)."),
    "autodiag": (
        "autodiag.cli",
        "app",
        "The autodiagnostic de mobilité service (job seekers, counselors).",
    ),
    "query": (
        "simulations.query_cli",
        "query",
        "The Region's analysts: a DP statistics query file → grant → run → report.",
    ),
}


def load_command(name: str) -> click.Command:
    """Import one sub-command's package and turn it into its click command."""
    module, attribute, help_text = COMMANDS[name]
    target = getattr(importlib.import_module(module), attribute)
    if isinstance(target, typer.Typer):
        target._add_completion = False  # the root offers completion; sub-apps mounted by hand must not
        command = typer.main.get_command(target)
    else:
        single = typer.Typer(add_completion=False)
        single.command(name, help=None)(target)
        command = typer.main.get_command(single)
    command.name = name
    if isinstance(command, click.Group) and not command.help:
        command.help = help_text
    return command


class _LazyCommand(click.Command):
    """Stands for a sub-command in the root's listing; becomes the real one when it runs."""

    def __init__(self, name: str, help_text: str) -> None:
        super().__init__(name, help=help_text, short_help=help_text)
        self._real: click.Command | None = None

    def real(self) -> click.Command:
        if self._real is None:
            assert self.name is not None
            self._real = load_command(self.name)
        return self._real

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        return self.real().make_context(info_name, args, parent=parent, **extra)


class LazyGroup(TyperGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        return _LazyCommand(cmd_name, COMMANDS[cmd_name][2])


app = typer.Typer(
    name="r2dde",
    cls=LazyGroup,
    help="R2DDE virtuel — federated, privacy-preserving studies on PACA's employment and training data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """R2DDE virtuel — federated, privacy-preserving studies on PACA's employment and training data."""
