"""How the node changes a loop of Flower 1.42 without a fork of Flower: a Flower module's ``time``
replaced by a stand-in whose ``sleep`` is ours, a function of it wrapped, and a Flower program run
through one of our modules. The modules are taken by ``importlib.import_module`` (``from package
import name`` may give a function of that name, and the patch would miss the module). Each change is
pinned by a test that reads Flower's own source (``tests/node_agent/test_prompt_pull.py``,
``test_superexec_wake.py``): an upgrade that moves what they rely on fails there instead of silently
undoing them.
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class TimeStandIn:
    """The ``time`` module as one Flower module sees it: everything real but what a subclass defines."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def write_module_script(path: Path, module: str, *args: str, env: Mapping[str, str] | None = None) -> Path:
    """``path``: a shell script that runs ``python -m module args… "$@"`` with this interpreter,
    ``env`` set for it; a program Flower starts by name, found first on its PATH."""
    assignments = "".join(f"{name}={shlex.quote(value)} " for name, value in (env or {}).items())
    command = shlex.join([sys.executable, "-m", module, *args])
    path.write_text(f'#!/bin/sh\n{assignments}exec {command} "$@"\n', encoding="utf-8")
    path.chmod(0o755)
    return path
