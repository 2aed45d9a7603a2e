"""The SuperNode's waits, shortened (node_agent.deployment.prompt_pull), and Flower's loop pinned."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
import time

import pytest
from flwr.supernode import start_client_internal

from node_agent.deployment import prompt_pull
from node_agent.deployment.prompt_pull import FLOWER_IDLE_SLEEP_S, FLOWER_LOCAL_WAIT_S, PromptSleeps


def _sleeps(tree: ast.AST) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "time.sleep" and len(node.args) == 1
    ]


def _seconds(call: ast.Call) -> object:
    argument = call.args[0]
    return argument.value if isinstance(argument, ast.Constant) else ast.unparse(argument)


def test_flowers_loop_sleeps_3_s_when_idle_and_half_a_second_in_its_own_state() -> None:
    """If a Flower upgrade moves, renames or adds a sleep, the shortening may silently stop or reach
    a network retry: fail here and review node_agent/deployment/prompt_pull.py."""
    tree = ast.parse(inspect.getsource(start_client_internal))
    assert sorted(_seconds(call) for call in _sleeps(tree)) == [FLOWER_LOCAL_WAIT_S] * 2 + [
        FLOWER_IDLE_SLEEP_S
    ]
    idle_branches = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.If)
        and ast.unparse(node.test) == "run_id is None"
        and [_seconds(call) for call in _sleeps(node)] == [FLOWER_IDLE_SLEEP_S]
    ]
    assert idle_branches, "the 3 s sleep is no longer the loop's 'no message pulled' branch"
    (push,) = [
        node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == "_push_messages"
    ]
    assert [_seconds(call) for call in _sleeps(push)] == [FLOWER_LOCAL_WAIT_S] * 2
    asked = {
        ast.unparse(call.func)
        for loop in ast.walk(push)
        if isinstance(loop, ast.While)
        for call in ast.walk(loop.test)
        if isinstance(call, ast.Call)
    }
    assert asked == {"state.get_messages_legacy", "object_store.get"}  # the node's own state, no network


def test_only_flowers_two_waits_are_shortened(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(start_client_internal, "time", start_client_internal.time)  # restored after
    prompt_pull.install(pull_interval_s=0.05, local_wait_s=0.01)
    shim = start_client_internal.time
    assert isinstance(shim, PromptSleeps)

    def timed(seconds: float) -> float:
        began = time.monotonic()
        shim.sleep(seconds)
        return time.monotonic() - began

    assert timed(FLOWER_IDLE_SLEEP_S) < 1.0
    assert timed(FLOWER_LOCAL_WAIT_S) < 0.4
    assert timed(0.3) >= 0.3
    assert abs(shim.time() - time.time()) < 1.0  # the rest of the module is the real one


def test_the_node_starts_flowers_supernode_through_the_shortened_loop() -> None:
    """The command `r2dde node start` runs loads Flower's SuperNode through this module."""
    result = subprocess.run(
        [sys.executable, "-m", "node_agent.deployment.prompt_pull", "flower-supernode", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--superlink" in result.stdout
