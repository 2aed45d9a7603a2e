"""`r2dde`: one command line; each sub-command lives with the package that owns it."""

from __future__ import annotations

import os

import typer

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")

from anonymization.cli import app as anonymize_app  # noqa: E402
from autodiag.cli import app as autodiag_app  # noqa: E402  (light: heavy imports inside the command)
from coordinator.cli import app as coordinator_app  # noqa: E402
from node_agent.cli import app as node_app  # noqa: E402
from simulations.cli import simulate  # noqa: E402
from trust_broker.audit.cli import app as audit_app  # noqa: E402
from trust_broker.cli import app as broker_app  # noqa: E402
from trust_broker.provision.cli import provision_command  # noqa: E402

app = typer.Typer(
    name="r2dde",
    help="R2DDE virtuel — federated, privacy-preserving studies on PACA's employment and training data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("simulate")(simulate)
app.command("provision")(provision_command)
app.add_typer(broker_app, name="broker", help="The trust broker service.")
app.add_typer(audit_app, name="audit", help="Auditors: export, verify and report on the broker's books.")
app.add_typer(
    anonymize_app, name="anonymize", help="A partner's data officer: pseudonymize tables, scrub text."
)
app.add_typer(node_app, name="node", help="A partner's node (Flower SuperNode + node agent).")
app.add_typer(coordinator_app, name="coordinator", help="The Region's side (SuperLink + coordinator).")
app.add_typer(
    autodiag_app, name="autodiag", help="The autodiagnostic de mobilité service (job seekers, counselors)."
)
