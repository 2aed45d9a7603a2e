"""Only an app bundle the partner approved may run at its node (issue 10, item 6).

In deployment Flower's ``flwr-clientapp`` pulls the Region's app bundle (FAB) from the SuperNode,
installs it and imports the ClientApp *from the bundle*: the code that touches the partner's data is
the coordinator's copy, not the partner's installed package. Flower's own defence (a SuperNode's
``--trusted-entities``, checking signatures on the FAB) only runs for bundles carrying a
``valid_license`` verification, i.e. with a licensed SuperLink; the open-source SuperLink sends none.

The closest guarantee without it: the partner's SuperNode launches ``flwr-clientapp`` by name, so
``r2dde node start`` puts a launcher of this module first on its PATH. It runs Flower's own
``flwr-clientapp`` with one change, made in code the partner installed: once the task input
(message, context, bundle) is pulled and *before* the bundle is installed or any of its code is
imported, the bundle's code digest must be in the node's allow-list, ``approved-apps.txt`` in the
node's keys folder (one ``sha256:…`` per line). Otherwise the task fails with rule
``node.app_digest`` and the coordinator gets an error reply.

The digest covers what decides which code runs: every file of the bundle except ``pyproject.toml``
(whose run-config table the coordinator rewrites per study), plus that file's
``[tool.flwr.app.components]`` table (the entry points). See :func:`code_digest`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import sys
import tomllib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib.machinery import SOURCE_SUFFIXES, FileFinder, SourceFileLoader
from pathlib import Path
from types import CodeType
from typing import Any

from node_agent.deployment.flower_shims import write_module_script
from node_agent.deployment.warm_start import SOCKET_ENV, Request, launch_warm, socket_path

#: The partner's allow-list, in the node's keys folder (not in anything the coordinator ships).
APPROVED_APPS_FILE = "approved-apps.txt"
LAUNCHER_NAME = "flwr-clientapp"
RULE = "node.app_digest"


class AppNotApproved(RuntimeError):
    """The bundle the coordinator sent is not one the partner approved (the message says why)."""

    rule = RULE

    def __init__(self, detail: str) -> None:
        super().__init__(f"rule {RULE}: {detail}")


@dataclass(frozen=True)
class Bundle:
    """What an app bundle holds, read once: each file's sha256 (Flower's ``.info/`` manifest aside,
    ``pyproject.toml`` included) and its ``pyproject.toml``."""

    files: dict[str, str]
    project: dict[str, Any]

    @classmethod
    def read(cls, fab: bytes) -> Bundle:
        try:
            archive = zipfile.ZipFile(io.BytesIO(fab))
        except zipfile.BadZipFile as exc:
            raise AppNotApproved(f"the app bundle is not a zip archive: {exc}") from None
        with archive:
            names = archive.namelist()
            odd = [
                n
                for n in names
                if n.startswith("/") or "\\" in n or {"", ".", ".."} & set(n.rstrip("/").split("/"))
            ]
            if odd or len(names) != len(set(names)):
                # Unpacked, such names land elsewhere than they read (or twice): what is checked
                # would not be what is written. Flower's builder makes none.
                raise AppNotApproved(f"the bundle has odd or repeated file names: {(odd or names)[:3]}")
            files = {
                name: hashlib.sha256(archive.read(name)).hexdigest()
                for name in names
                if not name.endswith("/") and not name.startswith(".info/")
            }
            try:
                project = tomllib.loads(archive.read("pyproject.toml").decode("utf-8"))
            except KeyError:
                project = {}
            except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                raise AppNotApproved(f"the bundle's pyproject.toml is unreadable: {exc}") from None
        return cls(files, project)

    def digest(self) -> str:
        """``sha256:`` over the files but ``pyproject.toml`` (path and content hash, sorted) and the
        entry points (the coordinator rewrites the rest of ``pyproject.toml`` per study)."""
        lines = [f"{name}\0{sha}" for name, sha in sorted(self.files.items()) if name != "pyproject.toml"]
        components = self.project.get("tool", {}).get("flwr", {}).get("app", {}).get("components")
        lines.append("components\0" + json.dumps(components, sort_keys=True))
        return "sha256:" + hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()

    def app_id(self) -> tuple[str, str]:
        """Flower's (fab_id, fab_version) for this bundle: ``publisher/name`` and the version, which
        name its install folder (so none may hold a path separator or be ``.``/``..``)."""
        app = self.project.get("tool", {}).get("flwr", {}).get("app", {})
        project = self.project.get("project", {})
        parts = [str(app.get("publisher")), str(project.get("name")), str(project.get("version"))]
        if any(set(part) & {"/", "\\", "\0"} or part in (".", "..") for part in parts):
            raise AppNotApproved(f"the bundle's publisher, name or version is not a plain name: {parts}")
        return f"{parts[0]}/{parts[1]}", parts[2]

    def installed_in(self, folder: Path) -> bool:
        """Whether ``folder`` holds exactly this bundle's files, byte for byte, and nothing more but
        ``.pyc`` files in ``__pycache__`` folders, which the ClientApp never reads
        (:func:`checked_source_only`); any other file there could be imported as a module: what
        Flower will import is then what was checked."""
        found: dict[str, str] = {}
        for path in folder.rglob("*"):
            relative = path.relative_to(folder)
            if path.is_symlink():
                return False  # Flower's own unpacking makes none: a link leads out of the checked files
            bytecode = relative.parent.name == "__pycache__" and relative.suffix == ".pyc"
            if bytecode and relative.as_posix() not in self.files:
                continue  # never read: the ClientApp compiles the bundle's source (checked_source_only)
            if path.is_file():
                found[relative.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
        return found == self.files


def code_digest(fab: bytes) -> str:
    """``sha256:`` over the bundle's files (path and content hash, sorted) and its entry points."""
    return Bundle.read(fab).digest()


def approved_digests(keys_dir: Path) -> set[str]:
    path = keys_dir / APPROVED_APPS_FILE
    if not path.is_file():
        raise AppNotApproved(f"{path} is missing: this node runs no app bundle its partner did not approve")
    digests = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if not text.startswith("sha256:") or len(text) != 7 + 64:
            raise AppNotApproved(f"{path}:{number}: expected sha256:<64 hex digits>, got {text[:80]!r}")
        digests.add(text)
    return digests


def check_bundle(bundle: Bundle, keys_dir: Path) -> str:
    """The bundle's digest if the partner approved it; AppNotApproved otherwise."""
    digest = bundle.digest()
    if digest not in approved_digests(keys_dir):
        raise AppNotApproved(f"app bundle {digest} is not in {keys_dir / APPROVED_APPS_FILE}")
    return digest


PullTaskInput = Callable[[Any], tuple[Any, Any, Any, Any]]
InstallFab = Callable[..., Any]


def _keys_dir(context: Any) -> Path:
    """The keys folder from the node config the partner gave its SuperNode (``keys-dir``), which
    travels in the task's context: the coordinator can neither set nor change it."""
    keys = context.node_config.get("keys-dir") if context is not None else None
    if not keys:
        raise AppNotApproved("the node config names no keys-dir holding approved-apps.txt")
    return Path(str(keys))


def guarded_install(pull: PullTaskInput, install: InstallFab) -> tuple[PullTaskInput, InstallFab]:
    """Flower's ``pull_task_input`` and ``install_from_fab``, the bundle checked in between.

    The pull returns whatever it pulled, and the install refuses a bundle the partner did not approve
    before writing any of it: Flower then holds the message when the refusal is raised, so it answers
    the coordinator with an error reply naming rule ``node.app_digest`` at once. (Refusing inside the
    pull left Flower without a message to answer: the coordinator waited out its round timeout.)

    The check must also hold for what Flower then *imports*: the folder named by the run's app id,
    version and the first 8 hex digits of the hash the bundle was announced with, all chosen by the
    coordinator, and which Flower keeps without looking inside once it exists. So the announced hash
    must be the content's, the run must name the bundle's own app and version, and the folder must
    hold exactly the bundle's files — else it is replaced (a copy cut short, another bundle whose hash
    shares those 8 digits, code planted there) or the bundle refused. A folder that holds them is not
    unpacked again (Flower's own install unpacks the bundle into a temporary folder, then keeps the
    installed copy: a tenth of a warm message's time).
    """
    pulled: list[tuple[Path, Any, Any]] = []  # the keys folder, the run and the bundle of the task

    def pull_and_remember(client: Any) -> tuple[Any, Any, Any, Any]:
        message, context, run, fab = pull(client)
        pulled.append((_keys_dir(context), run, fab))
        return message, context, run, fab

    def install_if_approved(fab_content: bytes, *args: Any, **kwargs: Any) -> Any:
        if not pulled:
            raise AppNotApproved("no task input was pulled before the bundle's installation")
        keys, run, fab = pulled[-1]
        bundle = Bundle.read(fab_content)
        check_bundle(bundle, keys)
        content_hash = hashlib.sha256(fab_content).hexdigest()
        if fab.hash_str != content_hash:
            raise AppNotApproved(
                f"the bundle was announced as {str(fab.hash_str)[:16]}…, its content is {content_hash[:16]}…"
            )
        if (run.fab_id, run.fab_version) != bundle.app_id():
            raise AppNotApproved(
                f"the run names app {run.fab_id} {run.fab_version}, the bundle is {bundle.app_id()}"
            )
        from flwr.common.config import get_project_dir

        installed = get_project_dir(run.fab_id, run.fab_version, content_hash)
        if installed.resolve().parent != apps_folder().resolve():
            raise AppNotApproved(f"the app's install folder {installed} is outside {apps_folder()}")
        if installed.is_dir() and not bundle.installed_in(installed):
            shutil.rmtree(installed)
        if not installed.is_dir():
            install(fab_content, *args, **kwargs)
        if not bundle.installed_in(installed):
            shutil.rmtree(installed, ignore_errors=True)  # never imported: the next message starts afresh
            raise AppNotApproved(f"{installed} does not hold exactly the approved bundle's files")
        return installed

    return pull_and_remember, install_if_approved


def install_guard() -> None:
    """Wrap Flower 1.42's ``run_clientapp.pull_task_input`` and ``install_from_fab`` (looked up by
    name at each call; ``tests/node_agent/test_approved_app.py`` pins their order)."""
    from flwr.supernode.runtime import run_clientapp

    installer = getattr(run_clientapp, "install_from_fab")  # noqa: B009 - not in Flower's __all__
    if not getattr(installer, "r2dde_guarded", False):
        pull, install = guarded_install(run_clientapp.pull_task_input, installer)
        install.r2dde_guarded = True  # type: ignore[attr-defined]
        # The wrappers have Flower's call shapes but are typed with Any (Flower's types stay unloaded).
        run_clientapp.pull_task_input = pull  # type: ignore[assignment]
        setattr(run_clientapp, "install_from_fab", install)  # noqa: B010


def write_launcher(folder: Path) -> Path:
    """``<folder>/flwr-clientapp``: runs this module with the node's own interpreter (the partner's
    installed packages; the bundle is not on the path before it has passed the check), handing the
    launch to the node's warm server when one listens (:mod:`node_agent.deployment.warm_start`)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)  # it may hold the warm server's socket
    return write_module_script(
        folder / LAUNCHER_NAME,
        "node_agent.deployment.approved_app",
        env={SOCKET_ENV: str(socket_path(folder))},
    )


class CheckedSourceLoader(SourceFileLoader):
    """A module of an installed bundle, compiled from its source, the file the guard compared:
    never from bytecode found beside it, and none written there (Python runs a ``__pycache__`` file
    whose header matches its source's size and time instead of the source, so one left in ``apps/``
    by an earlier bundle would run in place of the checked code). Compiling all the project's
    modules took 0.12 s of CPU (measured by hand); a message compiles those it imports."""

    def get_code(self, fullname: str) -> CodeType:
        return self.source_to_code(self.get_data(self.path), self.path)


def checked_source_only(apps: Path) -> None:
    """In this process, modules found under ``apps`` load from their ``.py`` source only
    (:class:`CheckedSourceLoader`); every other import, torch's and Flower's too, keeps Python's own
    bytecode cache. A process-wide ``sys.pycache_prefix`` did the same for the bundle, but sent every
    other import to an empty cache: a cold ClientApp process compiled torch again at each message
    (2.4× the CPU of a 10-node cold round) wherever ``PYTHONDONTWRITEBYTECODE`` is set, as in our
    container image."""
    roots = {Path(os.path.abspath(apps)), apps.resolve()}

    def bundle_folder(entry: str) -> FileFinder:
        if not (isinstance(entry, str) and entry):
            raise ImportError("not a folder")  # the next hook's, as before
        spellings = {Path(os.path.abspath(entry))}
        with contextlib.suppress(OSError, RuntimeError, ValueError):  # a loop of links, a NUL byte
            spellings.add(Path(entry).resolve())
        if not any(s.is_relative_to(root) for s in spellings for root in roots):
            raise ImportError("not an installed bundle's folder")
        return FileFinder(entry, (CheckedSourceLoader, SOURCE_SUFFIXES))

    sys.path_hooks.insert(0, bundle_folder)
    sys.path_importer_cache.clear()


def apps_folder() -> Path:
    """Where Flower installs app bundles: ``FLWR_HOME/apps``."""
    from flwr.common.constant import APP_DIR
    from flwr.supercore.utils import get_flwr_home

    return get_flwr_home() / APP_DIR


def run_clientapp_here() -> None:
    """Flower's ``flwr-clientapp`` in this process, behind the approved-bundle check."""
    checked_source_only(apps_folder())
    install_guard()
    from flwr.supernode.cli.flwr_clientapp import flwr_clientapp

    flwr_clientapp()


def main() -> None:
    """A warm start when the node's warm server takes the launch, a cold one otherwise."""
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    warm_socket = os.environ.get(SOCKET_ENV)
    try:
        cwd = os.getcwd()
    except OSError:  # a working folder removed under us: the cold path says what it makes of it
        warm_socket = None
    if warm_socket:
        code = launch_warm(Path(warm_socket), Request(argv=list(sys.argv), env=dict(os.environ), cwd=cwd))
        if code is not None:
            sys.exit(code)
    run_clientapp_here()


if __name__ == "__main__":
    main()
