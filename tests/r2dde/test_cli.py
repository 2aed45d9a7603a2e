"""The `r2dde` command line feels native (issue 12, item 8): help without heavy imports, one option name
per concept across commands (old names still accepted, hidden), every sub-command reachable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from typer.testing import CliRunner

from r2dde.cli import COMMANDS, app, load_command

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("flwr", "torch", "fastapi", "sqlalchemy", "pandas", "opacus", "presidio_analyzer", "httpx")


def _imported_after(args: list[str]) -> set[str]:
    code = (
        "import json, sys\n"
        "from typer.testing import CliRunner\n"
        "from r2dde.cli import app\n"
        f"result = CliRunner().invoke(app, {args!r})\n"
        "assert result.exit_code == 0, result.output\n"
        "print(json.dumps(sorted(m for m in sys.modules if '.' not in m)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "FLWR_TELEMETRY_ENABLED": "0"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["node", "--help"],
        ["node", "start", "--help"],
        ["coordinator", "run-study", "--help"],
        ["broker", "serve", "--help"],
        ["audit", "--help"],
        ["anonymize", "--help"],
        ["provision", "--help"],
    ],
)
def test_help_imports_none_of_the_heavy_libraries(args: list[str]) -> None:
    """`r2dde --help` took about 10 s: every package, Flower and torch were imported to print it."""
    assert not _imported_after(args) & set(HEAVY)


def _all_commands() -> list[tuple[str, click.Command]]:
    found = []

    def walk(prefix: str, command: click.Command) -> None:
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(f"{prefix} {name}", sub)
        else:
            found.append((prefix, command))

    for name in COMMANDS:
        walk(name, load_command(name))
    return found


def test_one_visible_option_name_per_concept() -> None:
    visible = {
        (where, opt)
        for where, command in _all_commands()
        for param in command.params
        if isinstance(param, click.Option) and not param.hidden
        for opt in param.opts
    }
    names = {opt for _, opt in visible}
    assert not names & {"--keys-dir", "--db", "--key-file"}, sorted(visible)
    assert {"--keys", "--database", "--linkage-key"} <= names


def test_every_listed_command_loads_and_the_root_lists_them_all() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output
        assert isinstance(load_command(name), click.Command)


def test_constants_repeated_to_keep_help_light_agree_with_their_sources() -> None:
    import coordinator.cli as coordinator_cli
    import node_agent.cli as node_cli
    import trust_broker.cli as broker_cli
    from coordinator.deployment.study import USE_CASE_1
    from coordinator.deployment.superlink import DEFAULT_SUPERLINK_PORT
    from node_agent.deployment.supernode import DEFAULT_RUNTIME_PORT
    from trust_broker.store.db import DEFAULT_DB_URL

    assert node_cli.DEFAULT_RUNTIME_PORT == DEFAULT_RUNTIME_PORT
    assert coordinator_cli.DEFAULT_SUPERLINK_PORT == DEFAULT_SUPERLINK_PORT
    assert coordinator_cli.USE_CASE_1 == USE_CASE_1
    assert broker_cli.DEFAULT_DB_URL == DEFAULT_DB_URL
