"""docker/: compose follows the Compose Specification, images follow the install recipe, no secrets."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import click
import jsonschema
import pytest
import typer
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
SITES = ("france_travail", "apec", "missions_locales")
LONG_RUNNING = ("broker", "superlink", *(f"node-{s.replace('_', '-')}" for s in SITES))


def _mount(volume: str) -> tuple[str, str, str]:
    """(source, target, mode) of a short-syntax volume, ``${VAR:-default}`` read as its default."""
    source, target, *mode = re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", volume).split(":")
    return source, target, mode[0] if mode else "rw"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = json.loads((DOCKER / "compose-spec.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_compose_file_validates_against_the_compose_specification(
    compose: dict[str, Any], validator: jsonschema.Draft7Validator
) -> None:
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("services", "superlink", "restart_policy"), "always"),  # not a service key
        (("services", "broker", "ports"), "8443:8443"),  # must be a list
        (("volumes", "bad name!"), {}),  # not a valid volume name
    ],
)
def test_the_schema_rejects_what_compose_would_reject(
    compose: dict[str, Any], validator: jsonschema.Draft7Validator, path: tuple[str, ...], value: object
) -> None:
    broken = copy.deepcopy(compose)
    target = broken
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert list(validator.iter_errors(broken))


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="Debian's docker-compose is not installed")
def test_docker_compose_itself_accepts_the_file() -> None:
    result = subprocess.run(
        ["docker-compose", "-f", str(DOCKER / "compose.yaml"), "--profile", "setup", "--profile", "study",
         "config", "-q"],
        capture_output=True, text=True, timeout=60, check=False,
        # Debian's docker-compose is a Python program of the system's: run it with the system's own
        # environment, not with whatever the test process inherited (a venv's PYTHONPATH breaks it).
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": os.environ.get("HOME", "/root")},
    )
    assert result.returncode == 0, result.stderr


def test_three_partner_nodes_each_see_only_their_own_keys_and_data(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for site in SITES:
        node = services[f"node-{site.replace('_', '-')}"]
        host_paths = {_mount(v)[0] for v in node["volumes"]}
        assert any(p.endswith(f"/keys/nodes/{site}") for p in host_paths)
        assert any(p.endswith(f"/data/{site}") for p in host_paths)
        others = [s for s in SITES if s != site]
        assert not any(p.endswith((f"/nodes/{o}", f"/data/{o}")) for p in host_paths for o in others)
        assert not any(p.endswith(("/keys", "/keys/broker", "/keys/superlink")) for p in host_paths)
        assert node["command"][node["command"].index("--site") + 1] == site
        assert "ports" not in node


def test_keys_and_data_are_mounted_read_only_in_long_running_services(compose: dict[str, Any]) -> None:
    for name in LONG_RUNNING:
        for volume in compose["services"][name]["volumes"]:
            source, _, mode = _mount(volume)
            if "/keys" in source or "data" in source:
                assert mode == "ro", f"{name}: {volume} must be read-only"


def test_only_the_superlink_is_published_and_on_loopback(compose: dict[str, Any]) -> None:
    published = {n: s["ports"] for n, s in compose["services"].items() if "ports" in s}
    assert published == {"superlink": ["127.0.0.1:9093:9093"]}


def test_no_secret_is_inlined_in_compose(compose: dict[str, Any]) -> None:
    text = (DOCKER / "compose.yaml").read_text(encoding="utf-8")
    assert "PRIVATE KEY" not in text and "BEGIN CERTIFICATE" not in text
    for name, service in compose["services"].items():
        for key in service.get("environment", {}):
            assert not re.search(r"(?i)key|secret|password|token", key), f"{name}: {key}"


def _pip_steps(lines: list[str]) -> list[str]:
    """``pip install`` steps normalized: venv prefix, --quiet, -e and extras removed."""
    steps = []
    for line in lines:
        match = re.search(r"(?:^|/|\s)pip install (.+)$", line.strip())
        if not match:
            continue
        words = [w.strip("'\"") for w in match.group(1).split() if w not in {"--quiet", "-q", "-e"}]
        steps.append(" ".join(re.sub(r"\[[^\]]*\]$", "", w) for w in words))
    return steps


def test_image_install_steps_are_the_makefile_recipe() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8").splitlines()
    recipe = _pip_steps(makefile)
    assert recipe == ["--upgrade pip", "torch==2.13.0", "."]  # CPU torch first, then the project
    dockerfile = (DOCKER / "Dockerfile").read_text(encoding="utf-8").splitlines()
    assert _pip_steps([line for line in dockerfile if line.startswith("RUN ")]) == recipe


def test_images_copy_every_package_the_project_installs() -> None:
    """`pip install .` in the image installs the packages it finds: one not copied is silently
    missing, and the image fails at its first import (contracts and autodiag were)."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    packages = {name.rstrip("*") for name in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    dockerfile = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    copied = {src for src, _ in re.findall(r"^COPY\s+(\S+)\s+\./(\S+)$", dockerfile, flags=re.MULTILINE)}
    assert packages and packages <= copied, sorted(packages - copied)


def test_images_copy_no_keys_data_or_state() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    copied = re.findall(r"^COPY\s+(.+?)\s+\S+$", dockerfile, flags=re.MULTILINE)
    assert copied and not any(re.search(r"keys|data|runs|\.pem|\.key|\.db|\.", src.split()[0].lstrip("./"))
                              for src in copied if src not in {"pyproject.toml README.md"})
    ignored = (DOCKER / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    for pattern in ("**/*.key", "**/*.pem", "**/*.csv", "**/*.db", "runs"):
        assert pattern in ignored


def _entrypoints() -> dict[str, list[str]]:
    """ENTRYPOINT of each build target of docker/Dockerfile."""
    text = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    targets = re.findall(r"^FROM \S+ AS (\w+)$(.*?)(?=^FROM |\Z)", text, flags=re.MULTILINE | re.DOTALL)
    return {
        name: json.loads(match.group(1))
        for name, body in targets
        if (match := re.search(r"^ENTRYPOINT (\[.*\])$", body, flags=re.MULTILINE))
    }


def _parse_r2dde(argv: list[str]) -> click.Command:
    """Parse ``argv`` (without ``r2dde``) as the real CLI would, without running anything."""
    from r2dde.cli import app as r2dde_app

    command: click.Command = typer.main.get_command(r2dde_app)
    args = list(argv)
    while True:
        ctx = command.make_context("r2dde", list(args))  # raises on unknown or missing options
        if not isinstance(command, click.Group):
            return command
        name, sub, args = command.resolve_command(ctx, ctx._protected_args + ctx.args)  # noqa: SLF001
        assert sub is not None, name
        command = sub


def test_every_service_command_is_accepted_by_the_r2dde_cli(compose: dict[str, Any]) -> None:
    entrypoints = _entrypoints()
    checked = []
    for name, service in compose["services"].items():
        entrypoint = service.get("entrypoint") or entrypoints[service["build"]["target"]]
        if entrypoint[0] != "r2dde":
            continue
        argv = [*entrypoint[1:], *service.get("command", [])]
        try:
            _parse_r2dde(argv)
        except click.UsageError as exc:
            pytest.fail(f"{name}: `r2dde {' '.join(argv)}` is refused: {exc.format_message()}")
        checked.append(name)
    assert {"broker", "superlink", "provision", "study", *LONG_RUNNING} <= set(checked)
