"""The SuperExec woken by its SuperNode (node_agent.deployment.superexec_wake), and Flower's loop pinned."""

from __future__ import annotations

import ast
import importlib
import inspect
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from node_agent.deployment import prompt_pull, superexec_wake
from node_agent.deployment.superexec_wake import WakeableSleeps, WakeChannel, WakeError, wake, wake_path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    private = tmp_path / "r2dde-bin"
    private.mkdir(mode=0o700)
    return private


run_superexec = importlib.import_module("flwr.supercore.superexec.run_superexec")
start_client_internal = importlib.import_module("flwr.supernode.start_client_internal")


def _timed_wait(channel: WakeChannel, timeout_s: float) -> tuple[bool, float]:
    began = time.monotonic()
    woken = channel.wait(timeout_s)
    return woken, time.monotonic() - began


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and ast.unparse(n.func) == name]


def _function(module: object, name: str) -> ast.FunctionDef:
    (found,) = [
        node
        for node in ast.walk(ast.parse(inspect.getsource(module)))  # type: ignore[arg-type]
        if isinstance(node, ast.FunctionDef) and node.name == name
    ]
    return found


def test_flowers_superexec_sleeps_once_per_poll_and_nowhere_else() -> None:
    """The shim replaces every sleep of that module: if a Flower upgrade adds one (a retry, a back-off),
    it would end on a wake too. Fail here and review node_agent/deployment/superexec_wake.py."""
    tree = ast.parse(inspect.getsource(run_superexec))
    sleeps = _calls(tree, "time.sleep")
    assert [ast.unparse(call.args[0]) for call in sleeps] == ["task_poll_interval"]
    polling = [
        loop
        for loop in ast.walk(tree)
        if isinstance(loop, ast.While)
        and _calls(loop, "client.AcquireTask")
        and any(n is sleeps[0] for n in ast.walk(loop))
    ]
    assert polling, "the poll's sleep is no longer in the loop that asks for a task"


def test_the_supernode_loop_calls_the_pull_it_can_be_given_and_the_pull_creates_the_task() -> None:
    """The SuperNode's wake rides on ``_pull_and_store_message`` being looked up at each call, and on
    the task being created by then: a wake before its task would find nothing and wait a poll."""
    loop = _function(start_client_internal, "start_client_internal")
    assert len(_calls(loop, "_pull_and_store_message")) == 1
    pull = _function(start_client_internal, "_pull_and_store_message")
    assert len(_calls(pull, "state.create_task")) == 1


def test_a_wake_ends_the_wait_at_once_and_none_lets_it_run_out(folder: Path) -> None:
    channel = WakeChannel(wake_path(folder))
    try:
        woken, waited = _timed_wait(channel, 0.2)
        assert not woken and waited >= 0.2
        assert wake(wake_path(folder))
        woken, waited = _timed_wait(channel, 10.0)
        assert woken and waited < 1.0
    finally:
        channel.close()


def test_a_wake_sent_while_the_superexec_was_asking_is_not_lost_and_each_is_used_once(folder: Path) -> None:
    """The race: the message is stored while the SuperExec's AcquireTask is in flight (not waiting).
    The datagram waits in the socket; the next wait returns at once; each wake is one more ask."""
    channel = WakeChannel(wake_path(folder))
    try:
        for _ in range(2):
            assert wake(wake_path(folder))
        for _ in range(2):
            woken, waited = _timed_wait(channel, 10.0)
            assert woken and waited < 1.0
        woken, waited = _timed_wait(channel, 0.2)
        assert not woken and waited >= 0.2
    finally:
        channel.close()


def test_a_full_queue_never_blocks_the_supernode(folder: Path) -> None:
    """A SuperExec that stopped reading (hung, stopped) must not stop its SuperNode's loop."""
    channel = WakeChannel(wake_path(folder))
    try:
        began = time.monotonic()
        sent = [wake(wake_path(folder)) for _ in range(500)]
        assert time.monotonic() - began < 5.0
        assert sent[0] and not sent[-1]  # the queue filled: the rest were dropped, a wake is pending
    finally:
        channel.close()


def test_a_second_superexec_does_not_take_the_first_ones_socket(folder: Path) -> None:
    """Two nodes on one FLWR_HOME: the second keeps Flower's poll instead of stealing the wakes."""
    first = WakeChannel(wake_path(folder))
    try:
        with pytest.raises(WakeError, match="another SuperExec"):
            WakeChannel(wake_path(folder))
        assert wake(wake_path(folder)) and first.wait(0.0)
    finally:
        first.close()
    WakeChannel(wake_path(folder)).close()  # a socket file with no one behind it is replaced


def test_no_wake_socket_outside_a_private_folder(tmp_path: Path) -> None:
    """Only the node's own user may wake its SuperExec: the socket lives in a 0700 folder of theirs."""
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    with pytest.raises(RuntimeError, match="mode 0700"):
        WakeChannel(wake_path(shared))
    assert not wake(wake_path(shared))


def test_a_wake_with_no_superexec_listening_is_dropped(folder: Path, tmp_path: Path) -> None:
    assert not wake(wake_path(folder))
    assert not wake(wake_path(tmp_path / "no-such-folder"))


def test_the_superexec_loop_polls_every_idle_interval_or_when_woken(folder: Path) -> None:
    channel = WakeChannel(wake_path(folder))
    sleeps = WakeableSleeps(channel, idle_poll_s=0.2)
    try:
        began = time.monotonic()
        sleeps.sleep(0.01)  # Flower's interval: the shim's own replaces it
        assert time.monotonic() - began >= 0.2
        wake(wake_path(folder))
        began = time.monotonic()
        sleeps.sleep(60)
        assert time.monotonic() - began < 1.0
        assert abs(sleeps.time() - time.time()) < 1.0  # the rest of the module is the real one
    finally:
        channel.close()


def test_the_supernode_wakes_its_superexec_only_when_it_stored_a_message(folder: Path) -> None:
    channel = WakeChannel(wake_path(folder))
    pulled: list[int | None] = [None, 7]
    pull = prompt_pull.waking(lambda: pulled.pop(0), wake_path(folder))
    try:
        assert pull() is None
        assert not channel.wait(0.0)
        assert pull() == 7
        assert channel.wait(0.0)
    finally:
        channel.close()


def test_installed_in_flowers_loops(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_superexec, "time", run_superexec.time)  # restored after
    monkeypatch.setattr(start_client_internal, "time", start_client_internal.time)
    monkeypatch.setattr(
        start_client_internal, "_pull_and_store_message", start_client_internal._pull_and_store_message
    )
    monkeypatch.setenv(superexec_wake.WAKE_ENV, str(wake_path(folder)))
    original = start_client_internal._pull_and_store_message
    channel = superexec_wake.install(wake_path(folder))
    try:
        prompt_pull.install()
        assert isinstance(run_superexec.time, WakeableSleeps)
        assert start_client_internal._pull_and_store_message.__wrapped__ is original  # type: ignore[attr-defined]
    finally:
        channel.close()


def test_the_supernode_starts_the_woken_superexec(tmp_path: Path) -> None:
    """The SuperNode runs `flower-superexec` from PATH: the node's, which runs Flower's through the shim."""
    from node_agent.cli import supernode_environment

    env = supernode_environment(tmp_path / "flwr")
    found = shutil.which("flower-superexec", path=env["PATH"])
    folder = (tmp_path / "flwr" / "r2dde-bin").resolve()
    assert found is not None and Path(found).parent == folder
    assert env[superexec_wake.WAKE_ENV] == str(wake_path(folder))
    result = subprocess.run(
        [found, "--help"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--runtime-api-address" in result.stdout
