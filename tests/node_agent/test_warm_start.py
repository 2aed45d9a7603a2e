"""The warm ClientApp server (issue 17): one forked process per message, nothing shared between them.

The server runs in its own process (forking inside pytest would copy the test runner), with a
stand-in for Flower's ``flwr-clientapp`` that reports what its process sees: its command line,
folder, environment, streams, the libraries' global random draws and a module-level mark left by
an earlier message. The launcher side runs as the SuperNode would start it: a separate process.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from node_agent.deployment.warm_start import SOCKET_ENV, Request, launch_warm, socket_path

REPO = Path(__file__).resolve().parents[2]

# The stand-in ClientApp: what a message's process sees, on its stdout (the launcher's stream).
SERVER = textwrap.dedent(
    """
    import json, os, sys, time
    import numpy, torch
    from pathlib import Path
    from node_agent.deployment.warm_server import WarmServer

    MARK = []  # a message leaving something behind in a module the server preloaded

    def run():
        command = sys.argv[1]
        if command == "sleep":
            Path(sys.argv[2]).write_text(str(os.getpid()))
            time.sleep(60)
        if command == "fail":
            raise SystemExit(int(sys.argv[2]))
        seen = {
            "argv": sys.argv, "cwd": os.getcwd(), "pid": os.getpid(), "env": os.environ.get("PROBE"),
            "torch": torch.rand(4).tolist(), "numpy": numpy.random.rand(4).tolist(), "mark": list(MARK),
        }
        MARK.append(os.getpid())
        print(json.dumps(seen), flush=True)

    torch.manual_seed(0); numpy.random.seed(0)  # the server's generator state, copied into each child
    WarmServer(Path(sys.argv[1]), run, lambda line: print(line, file=sys.stderr, flush=True)).serve_forever()
    """
)

LAUNCHER = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    from node_agent.deployment.warm_start import Request, launch_warm
    if os.environ.get("AS_UID"):
        os.setuid(int(os.environ["AS_UID"]))  # root drops to another local account
    code = launch_warm(Path(sys.argv[1]), Request(argv=sys.argv[2:], env=dict(os.environ), cwd=os.getcwd()))
    sys.exit(100 if code is None else code)  # 100: nobody took it, the launcher would start cold
    """
)


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), **extra}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    # Deeper than a Unix socket address can name (107 bytes): reached through the folder's handle.
    path = socket_path(tmp_path_factory.mktemp("warm") / ("d" * 100) / "r2dde-bin")
    path.parent.mkdir(mode=0o700, parents=True)
    assert len(os.fsencode(path)) > 107
    process = subprocess.Popen([sys.executable, "-c", SERVER, str(path)], env=_env())
    deadline = time.monotonic() + 60
    while not path.exists():
        assert process.poll() is None, "the warm server exited before listening"
        assert time.monotonic() < deadline, "the warm server did not listen within 60 s"
        time.sleep(0.05)
    yield path, process
    process.terminate()
    process.wait(timeout=20)


def _launch(
    path: Path, *argv: str, cwd: Path | None = None, probe: str = "", uid: int | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", LAUNCHER, str(path), "flwr-clientapp", *argv],
        env=_env(PROBE=probe, **({"AS_UID": str(uid)} if uid is not None else {})),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_launch_runs_in_a_child_with_the_launchers_command_folder_environment_and_streams(
    server: tuple[Path, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    path, process = server
    done = _launch(path, "report", cwd=tmp_path, probe="from-the-launcher")
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["argv"] == ["flwr-clientapp", "report"]
    assert seen["cwd"] == str(tmp_path)
    assert seen["env"] == "from-the-launcher"
    assert seen["pid"] not in (process.pid, os.getpid())


def test_the_childs_exit_code_is_the_launchers(server: tuple[Path, subprocess.Popen[bytes]]) -> None:
    path, _ = server
    assert _launch(path, "fail", "7").returncode == 7


def test_two_messages_share_no_random_state_and_no_memory(
    server: tuple[Path, subprocess.Popen[bytes]],
) -> None:
    """The attack: the server seeded its generators (or imported a library that did); a fork copies
    that state, so without reseeding every message would draw the same 'random' numbers — the same
    Poisson masks, the same noise for anyone who learnt them once."""
    path, _ = server
    first, second = (json.loads(_launch(path, "report").stdout) for _ in range(2))
    assert first["torch"] != second["torch"], "two messages drew torch's global generator from one state"
    assert first["numpy"] != second["numpy"], "two messages drew NumPy's global generator from one state"
    assert second["mark"] == [], "a message ran in the server's memory, not in a process of its own"


def test_the_launcher_stopped_stops_its_message(
    server: tuple[Path, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    path, _ = server
    pid_file = tmp_path / "child.pid"
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(path), "flwr-clientapp", "sleep", str(pid_file)], env=_env()
    )
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child = int(pid_file.read_text())
    launcher.send_signal(signal.SIGKILL)  # killed, it cannot even pass the signal on: the server must
    launcher.wait()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child}").exists() and "Z" not in _state(child):
        assert time.monotonic() < deadline, "the message's process outlived its launcher"
        time.sleep(0.05)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0]
    except (FileNotFoundError, IndexError):
        return "Z"


def test_no_server_means_a_cold_start(tmp_path: Path) -> None:
    assert launch_warm(tmp_path / "absent.sock", Request(argv=["x"], env={}, cwd="/")) is None


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to act as another user")
def test_another_user_cannot_launch(server: tuple[Path, subprocess.Popen[bytes]]) -> None:
    """The socket is 0600 in a 0700 folder: another local account cannot have code run as the node."""
    path, _ = server
    nobody = _launch(path, "report", cwd=Path("/"), uid=65534)
    assert nobody.returncode == 100, nobody.stdout + nobody.stderr
    assert nobody.stdout == ""


def test_the_server_stops_with_its_parent(tmp_path: Path) -> None:
    """`r2dde node start` killed outright: its warm server does not linger (nor keep the socket)."""
    path = socket_path(tmp_path / "r2dde-bin")
    starter = (
        "import os, subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-m', 'node_agent.deployment.warm_server', "
        f"{str(path)!r}, str(os.getpid())]); time.sleep(120)"
    )
    parent = subprocess.Popen([sys.executable, "-c", starter], env=_env())
    deadline = time.monotonic() + 60
    while not path.exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while path.exists():
        assert time.monotonic() < deadline, "the warm server outlived the node that started it"
        time.sleep(0.1)


def test_a_server_whose_starter_is_already_gone_does_not_serve(tmp_path: Path) -> None:
    """The starter died during the server's imports: it must not serve on, orphaned, forever."""
    path = socket_path(tmp_path / "r2dde-bin")
    argv = [sys.executable, "-m", "node_agent.deployment.warm_server", str(path), "1"]
    done = subprocess.run(argv, env=_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "not serving" in done.stderr
    assert not path.exists()


def test_a_socket_folder_others_can_enter_is_refused(tmp_path: Path) -> None:
    from node_agent.deployment.warm_server import _bind
    from node_agent.deployment.warm_start import WarmStartError

    folder = tmp_path / "r2dde-bin"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    with pytest.raises(WarmStartError, match="mode 0700"):
        _bind(folder / "warm.sock")
    assert launch_warm(folder / "warm.sock", Request(argv=["x"], env={}, cwd="/")) is None


def test_the_launcher_script_names_its_socket(tmp_path: Path) -> None:
    from node_agent.deployment.approved_app import write_launcher

    launcher = write_launcher(tmp_path / "r2dde-bin")
    assert f"{SOCKET_ENV}={socket_path(tmp_path / 'r2dde-bin')}" in launcher.read_text()
    assert (tmp_path / "r2dde-bin").stat().st_mode & 0o777 == 0o700


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to act as another user")
@pytest.mark.parametrize("folder_owner", ["the node", "the other user"])
def test_a_server_planted_by_another_user_gets_nothing(folder_owner: str) -> None:
    """Another account serves the socket path (it could write into the folder once, or owns it): the
    launcher must not hand it the Runtime API token in its command line, nor its streams. The first
    case passes the folder check and is stopped by the peer's user id, the second by the folder."""
    folder = Path(tempfile.mkdtemp(prefix="r2dde-planted-"))  # under /tmp: the other account reaches it
    folder.chmod(0o777)  # long enough for the other account to plant its socket
    try:
        heard = _planted_server_hears(folder, give_back=folder_owner == "the node")
    finally:
        shutil.rmtree(folder)
    assert heard == "nothing"


def _planted_server_hears(folder: Path, give_back: bool) -> str:
    path = folder / "warm.sock"
    planted = textwrap.dedent(
        f"""
        import os, socket
        os.setuid(65534)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind({str(path)!r}); os.chmod({str(path)!r}, 0o777); server.listen(1)
        server.settimeout(10)
        try:
            conn, _ = server.accept()
            data, fds, _, _ = socket.recv_fds(conn, 65536, 3)
            said = repr((data, len(fds))) if data or fds else "nothing"
        except OSError:
            said = "nothing"
        print(said)
        """
    )
    thief = subprocess.Popen([sys.executable, "-c", planted], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not path.exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    if give_back:
        folder.chmod(0o700)  # the node's own 0700 folder again, with the other user's socket in it
    else:
        os.chown(folder, 65534, 65534)
    request = Request(argv=["flwr-clientapp", "--token", "secret-token"], env={}, cwd="/")
    assert launch_warm(path, request) is None  # cold start instead
    said, _ = thief.communicate(timeout=30)
    return said.strip()


def test_the_warm_server_runs_the_clientapp_behind_the_bundle_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """What each forked child runs is the guarded ClientApp, the same as a cold launch: swapping in
    Flower's plain ``flwr_clientapp`` (no approved-bundle check) fails here."""
    from flwr.supernode.runtime import run_clientapp

    from node_agent.deployment import warm_server
    from node_agent.deployment.warm_start import WarmStartError

    served: list[object] = []

    class Captured:
        def __init__(self, path: Path, run: object, say: object, parent: int) -> None:
            served.append(run)
            raise WarmStartError("captured")

    monkeypatch.setattr(warm_server, "WarmServer", Captured)
    monkeypatch.setattr(warm_server, "preload", lambda: [])
    assert warm_server.main(["/nonexistent/warm.sock", str(os.getppid())]) == 1
    (run,) = served
    guarded_when_run: list[bool] = []
    monkeypatch.setattr(run_clientapp, "pull_task_input", run_clientapp.pull_task_input)
    monkeypatch.setattr(run_clientapp, "install_from_fab", run_clientapp.install_from_fab)
    monkeypatch.setattr(
        importlib.import_module("flwr.supernode.cli.flwr_clientapp"),  # the module, not its function
        "flwr_clientapp",
        lambda: guarded_when_run.append(getattr(run_clientapp.install_from_fab, "r2dde_guarded", False)),
    )
    run()  # type: ignore[operator]
    assert guarded_when_run == [True]
