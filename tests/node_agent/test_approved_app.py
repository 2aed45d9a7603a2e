"""In deployment a node runs only an app bundle its partner approved (issue 10, item 6): the check
runs in the partner's installed code, between Flower pulling the bundle and installing or importing
any of it."""

from __future__ import annotations

import hashlib
import inspect
import io
import os
import py_compile
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from flwr.cli.build import build_fab_from_files
from flwr.cli.install import install_from_fab
from flwr.common.config import get_project_dir
from flwr.supercore.fab import Fab
from flwr.supernode.runtime import run_clientapp
from typer.testing import CliRunner

from node_agent.cli import app as node_cli
from node_agent.deployment.approved_app import (
    AppNotApproved,
    code_digest,
    guarded_install,
    install_guard,
    write_launcher,
)

PYPROJECT = b"""[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "reviewed-app"
version = "1.0.0"

[tool.flwr.app]
publisher = "region"

[tool.flwr.app.components]
serverapp = "app.server:app"
clientapp = "app.client:app"

[tool.flwr.app.config]
num-server-rounds = 3
"""

CLIENT = b"from flwr.clientapp import ClientApp\napp = ClientApp()\n"
ALTERED = CLIENT + b"import pathlib; pathlib.Path('RAN').write_text('raw rows sent')\n"


def _bundle(client: bytes, pyproject: bytes = PYPROJECT) -> bytes:
    files = {"pyproject.toml": pyproject, "app/__init__.py": b"", "app/client.py": client}
    files["app/server.py"] = b""
    return build_fab_from_files(files)[0]


RUN = SimpleNamespace(fab_id="region/reviewed-app", fab_version="1.0.0")


def _pull(fab: bytes, keys_dir: Path, announced: str | None = None):
    """What Flower's pull_task_input returns, for a node whose config names its keys folder; the
    bundle announced under its content's hash unless ``announced`` says otherwise."""
    context = SimpleNamespace(node_config={"site": "apec", "keys-dir": str(keys_dir)})
    announced = announced or hashlib.sha256(fab).hexdigest()
    return lambda client: ("message", context, RUN, Fab(announced, fab, {}))


@pytest.fixture(autouse=True)
def flwr_home(tmp_path, monkeypatch) -> Path:
    """Where Flower installs bundles (FLWR_HOME/apps): this test's own."""
    monkeypatch.setenv("FLWR_HOME", str(tmp_path / "flwr-home"))
    return tmp_path / "flwr-home"


@pytest.fixture
def approved(tmp_path) -> Path:
    keys = tmp_path / "keys"
    keys.mkdir()
    (tmp_path / "reviewed.fab").write_bytes(_bundle(CLIENT))
    result = CliRunner().invoke(
        node_cli, ["approve-app", "--fab", str(tmp_path / "reviewed.fab"), "--keys", str(keys)]
    )
    assert result.exit_code == 0, result.output
    return keys


def _installed(fab: bytes, keys_dir: Path) -> list[bytes]:
    """Flower's pull then install, through the guard; what reached the real installer."""
    installed: list[bytes] = []

    def flowers_install(content: bytes, **kwargs: object) -> Path:
        installed.append(content)
        return install_from_fab(content, **kwargs)

    pull, install = guarded_install(_pull(fab, keys_dir), flowers_install)
    _, _, _, pulled = pull(None)  # the pull always returns: Flower then holds a message to answer
    install(pulled.content, skip_prompt=True)
    return installed


def test_a_bundle_whose_clientapp_was_altered_is_refused_before_it_runs(approved, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _installed(_bundle(CLIENT), approved) == [_bundle(CLIENT)]  # the reviewed app passes
    with pytest.raises(AppNotApproved, match="node.app_digest"):
        _installed(_bundle(ALTERED), approved)
    assert not (tmp_path / "RAN").exists()
    # Pointing the entry point elsewhere is a change too, even with the same files.
    moved = PYPROJECT.replace(b'clientapp = "app.client:app"', b'clientapp = "app.server:app"')
    with pytest.raises(AppNotApproved):
        _installed(_bundle(CLIENT, moved), approved)


def test_a_refused_bundle_is_answered_not_left_waiting(approved):
    """Refusing inside the pull left Flower's run_clientapp without a message to answer (it only
    builds an error reply once the message is pulled): the coordinator waited out its round timeout
    (600 s) and never learnt the rule. The refusal now comes from the install, after the pull."""
    pull, install = guarded_install(_pull(_bundle(ALTERED), approved), lambda content, **_: None)
    message, _, _, fab = pull(None)
    assert message == "message"
    with pytest.raises(AppNotApproved, match="node.app_digest"):
        install(fab.content, skip_prompt=True)


def test_a_bundle_announced_under_another_bundles_hash_is_refused(approved, tmp_path, flwr_home):
    """Flower imports the app from the folder named by the announced hash: announcing the approved
    bundle under the hash of one installed earlier (since withdrawn by the partner) ran the withdrawn
    one, its code never checked by this install."""
    withdrawn = _bundle(ALTERED)
    install_from_fab(withdrawn, skip_prompt=True)  # installed while it was still approved
    stale = get_project_dir(RUN.fab_id, RUN.fab_version, hashlib.sha256(withdrawn).hexdigest())
    assert stale.is_dir()
    reviewed = _bundle(CLIENT)
    pull, install = guarded_install(
        _pull(reviewed, approved, announced=hashlib.sha256(withdrawn).hexdigest()), install_from_fab
    )
    pull(None)
    with pytest.raises(AppNotApproved, match="announced as"):
        install(reviewed, skip_prompt=True)


def test_an_installed_bundle_is_checked_every_time_and_unpacked_once(approved, flwr_home):
    unpacked: list[bytes] = []

    def flowers_install(content: bytes, **kwargs: object) -> Path:
        unpacked.append(content)
        return install_from_fab(content, **kwargs)

    reviewed = _bundle(CLIENT)
    for _ in range(3):
        pull, install = guarded_install(_pull(reviewed, approved), flowers_install)
        pull(None)
        where = install(reviewed, skip_prompt=True)
        assert where == get_project_dir(RUN.fab_id, RUN.fab_version, hashlib.sha256(reviewed).hexdigest())
        assert (where / "app" / "client.py").read_bytes() == CLIENT
    assert len(unpacked) == 1
    # Installed or not, the check comes first.
    with pytest.raises(AppNotApproved, match="node.app_digest"):
        _installed(_bundle(ALTERED), approved)


def test_an_installed_copy_that_is_not_the_bundle_is_replaced_before_anything_is_imported(
    approved, flwr_home
):
    """Flower imports from the folder named by the app, its version and 8 hex digits of the hash,
    and keeps that folder, whatever it holds, once it exists: a copy cut short, another bundle whose
    hash shares those 8 digits (2³² tries to find), code planted there. The guard looks inside."""
    reviewed = _bundle(CLIENT)
    folder = get_project_dir(RUN.fab_id, RUN.fab_version, hashlib.sha256(reviewed).hexdigest())
    (folder / "app").mkdir(parents=True)
    (folder / "pyproject.toml").write_bytes(PYPROJECT)
    (folder / "app" / "client.py").write_bytes(ALTERED)  # what Flower would have imported as is
    unpacked: list[bytes] = []

    def flowers_install(content: bytes, **kwargs: object) -> Path:
        unpacked.append(content)
        return install_from_fab(content, **kwargs)

    pull, install = guarded_install(_pull(reviewed, approved), flowers_install)
    pull(None)
    assert install(reviewed, skip_prompt=True) == folder
    assert (folder / "app" / "client.py").read_bytes() == CLIENT and len(unpacked) == 1
    # An extra module beside the checked ones (on the import path) is not the bundle either.
    (folder / "app" / "json.py").write_bytes(b"raise SystemExit('planted')\n")
    pull(None)
    install(reviewed, skip_prompt=True)
    assert not (folder / "app" / "json.py").exists() and len(unpacked) == 2
    # Bytecode left in __pycache__ is tolerated (never read); a module there could be imported: not.
    cache = folder / "app" / "__pycache__"
    cache.mkdir()
    (cache / f"client.{sys.implementation.cache_tag}.pyc").write_bytes(b"never read")
    pull(None)
    install(reviewed, skip_prompt=True)
    assert len(unpacked) == 2
    (cache / "evil.py").write_bytes(b"raise SystemExit('planted')\n")
    pull(None)
    install(reviewed, skip_prompt=True)
    assert not (cache / "evil.py").exists() and len(unpacked) == 3


def test_a_run_naming_another_app_or_version_is_refused(approved, flwr_home):
    reviewed = _bundle(CLIENT)
    context = SimpleNamespace(node_config={"site": "apec", "keys-dir": str(approved)})
    for fab_id, version in (("region/other-app", "1.0.0"), ("region/reviewed-app", "1.0.0/../../x")):
        run = SimpleNamespace(fab_id=fab_id, fab_version=version)
        fab = Fab(hashlib.sha256(reviewed).hexdigest(), reviewed, {})
        pull, install = guarded_install(
            lambda client, run=run, fab=fab: ("message", context, run, fab), install_from_fab
        )
        pull(None)
        with pytest.raises(AppNotApproved, match="the run names app"):
            install(reviewed, skip_prompt=True)
    assert not (flwr_home / "apps").exists()


def test_the_run_config_the_coordinator_writes_per_study_does_not_change_the_digest():
    other_study = PYPROJECT.replace(b"num-server-rounds = 3", b'num-server-rounds = 5\ngrant = "eyJ"')
    assert code_digest(_bundle(CLIENT)) == code_digest(_bundle(CLIENT, other_study))


def test_a_node_without_an_allow_list_runs_nothing(tmp_path):
    with pytest.raises(AppNotApproved, match="approved-apps.txt is missing"):
        _installed(_bundle(CLIENT), tmp_path)


def test_flowers_clientapp_pulls_then_installs_and_the_guard_sits_between(monkeypatch):
    monkeypatch.setattr(run_clientapp, "pull_task_input", run_clientapp.pull_task_input)
    monkeypatch.setattr(run_clientapp, "install_from_fab", run_clientapp.install_from_fab)
    install_guard()
    assert run_clientapp.install_from_fab.r2dde_guarded
    source = inspect.getsource(run_clientapp.run_clientapp)  # Flower 1.42: the order the guard relies on
    assert (
        source.index("pull_task_input(client)")
        < source.index("install_from_fab(")
        < source.index("load_client_app_fn(")
    )
    # What answers the coordinator when the install refuses: an error reply to the pulled message.
    assert "reply_message = Message(Error(code=e_code, reason=reason), reply_to=message)" in source


def test_the_launcher_runs_flowers_clientapp_through_the_guard(tmp_path):
    launcher = write_launcher(tmp_path / "bin")
    shown = subprocess.run([str(launcher), "--help"], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and "--runtime-api-address" in shown.stdout


def test_the_supernode_finds_the_partners_launcher_first(tmp_path):
    import shutil

    from node_agent.cli import supernode_environment

    env = supernode_environment(tmp_path / "flwr")
    found = shutil.which("flwr-clientapp", path=env["PATH"])
    assert found is not None and Path(found).parent == (tmp_path / "flwr" / "r2dde-bin").resolve()
    assert "node_agent.deployment.approved_app" in Path(found).read_text()


def test_compiled_code_shipped_beside_the_reviewed_source_is_not_the_reviewed_bundle(approved):
    """Python runs a __pycache__ file whose header matches the source's size and time instead of the
    source: a bundle carrying one is another bundle, whatever its .py files say."""
    # Flower's builder leaves such a file out; a zip made by hand need not.
    shipped = io.BytesIO(_bundle(CLIENT))
    with zipfile.ZipFile(shipped, "a") as archive:
        archive.writestr("app/__pycache__/client.cpython-311.pyc", b"\x00" * 16 + b"compiled other code")
    with pytest.raises(AppNotApproved, match="node.app_digest"):
        _installed(shipped.getvalue(), approved)


def test_bytecode_left_in_the_app_folder_never_runs_in_place_of_the_checked_source(tmp_path):
    """Python runs a __pycache__ file whose header matches its source's size and time: one left in
    apps/ by an earlier bundle would run instead of the files the guard compared. The ClientApp
    compiles the modules under FLWR_HOME/apps from their source, and writes no bytecode there."""
    apps = tmp_path / "apps"
    app = apps / "region.reviewed-app.1.0.0.f0d12a3b"
    (app / "package").mkdir(parents=True)
    planted = []
    for module in (app / "checked.py", app / "package" / "__init__.py"):
        module.write_text("VALUE = 'planted'\n")
        cache = module.parent / "__pycache__" / f"{module.stem}.{sys.implementation.cache_tag}.pyc"
        py_compile.compile(str(module), cfile=str(cache))
        stamp = module.stat().st_mtime_ns
        module.write_text("VALUE = 'checked'\n")  # same size; the time set back: the .pyc still matches
        os.utime(module, ns=(stamp, stamp))
        planted.append(cache.read_bytes())
    program = (
        "import sys; sys.path.insert(0, sys.argv[1]); {setup}"
        "import checked, package; print(checked.VALUE, package.VALUE)"
    )
    env = {**os.environ, "FLWR_HOME": str(tmp_path / "flwr-home")}
    env.pop("PYTHONPYCACHEPREFIX", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    plain = [sys.executable, "-c", program.format(setup=""), str(app)]
    assert subprocess.run(plain, capture_output=True, text=True, env=env, check=True).stdout.split() == [
        "planted",
        "planted",
    ]
    guarded = program.format(
        setup="from pathlib import Path; from node_agent.deployment.approved_app import checked_source_only; "
        f"checked_source_only(Path({str(apps)!r})); "
    )
    result = subprocess.run(
        [sys.executable, "-c", guarded, str(app)], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout.split() == ["checked", "checked"]
    caches = sorted(app.rglob("*.pyc"))
    assert [c.read_bytes() for c in caches] == planted  # none rewritten, none added


def test_only_the_bundles_modules_lose_their_bytecode_cache(tmp_path):
    """The rest of the process (torch, Flower, the standard library) keeps Python's own cache: a
    process-wide prefix made every cold ClientApp compile torch again where no bytecode is written."""
    from importlib.machinery import SourceFileLoader

    from node_agent.deployment.approved_app import CheckedSourceLoader, checked_source_only

    saved_hooks, saved_cache = list(sys.path_hooks), dict(sys.path_importer_cache)
    try:
        checked_source_only(tmp_path / "apps")
        assert sys.pycache_prefix is None
        import importlib.util

        spec = importlib.util.find_spec("json.decoder")
        assert spec is not None and type(spec.loader) is SourceFileLoader
        (tmp_path / "apps" / "one").mkdir(parents=True)
        (tmp_path / "apps" / "one" / "bundled_module_xyz.py").write_text("X = 1\n")
        sys.path.insert(0, str(tmp_path / "apps" / "one"))
        spec = importlib.util.find_spec("bundled_module_xyz")
        assert spec is not None and isinstance(spec.loader, CheckedSourceLoader)
    finally:
        sys.path.remove(str(tmp_path / "apps" / "one"))
        sys.path_hooks[:] = saved_hooks
        sys.path_importer_cache.clear()
        sys.path_importer_cache.update(saved_cache)


@pytest.mark.parametrize("name", ["app/../app/client.py", "/etc/app.py", "app//client.py", "app\\client.py"])
def test_a_bundle_whose_file_names_do_not_say_where_they_land_is_refused(approved, name):
    crafted = io.BytesIO(_bundle(CLIENT))
    with zipfile.ZipFile(crafted, "a") as archive:
        archive.writestr(name, b"print('elsewhere')\n")
    with pytest.raises(AppNotApproved, match="odd or repeated file names"):
        _installed(crafted.getvalue(), approved)


def test_a_bundle_with_a_file_twice_is_refused(approved):
    crafted = io.BytesIO(_bundle(CLIENT))
    with zipfile.ZipFile(crafted, "a") as archive, pytest.warns(UserWarning, match="Duplicate name"):
        archive.writestr("app/client.py", ALTERED)  # zip readers disagree on which copy is "the" file
    with pytest.raises(AppNotApproved, match="odd or repeated file names"):
        _installed(crafted.getvalue(), approved)


def test_an_app_version_that_is_a_path_is_refused(approved, tmp_path):
    pathlike = PYPROJECT.replace(b'version = "1.0.0"', b'version = "1/../../x"')
    with pytest.raises(AppNotApproved, match="not a plain name"):
        _installed(_bundle(CLIENT, pathlike), approved)
