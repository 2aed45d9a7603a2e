"""Flower's console logs without colour escapes when they go to a file or a pipe, not a terminal.

Flower 1.42 colours every log line (its console handler is built with ``colored=True`` and no switch),
so a SuperLink's or SuperNode's log file fills with escape codes. Our processes set the handler from
the stream itself; ``python -m tasks.flower_logs flower-superlink …`` runs a Flower console script the
same way (the coordinator and the node start Flower through it). ``NO_COLOR`` turns colours off too.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO


def wants_colour(stream: TextIO | None = None) -> bool:
    stream = stream if stream is not None else sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)()) and "NO_COLOR" not in os.environ


def plain_unless_terminal(stream: TextIO | None = None) -> bool:
    """Set Flower's console handler to colour only on a terminal; returns whether it colours."""
    from flwr.common.logger import update_console_handler

    colour = wants_colour(stream)
    update_console_handler(colored=colour)
    return colour


def wrapped(argv: list[str]) -> list[str]:
    """``[flower-superlink, args…]`` → the same command run with plain logs off a terminal."""
    return [sys.executable, "-m", __name__, *argv]


def main(argv: list[str] | None = None) -> int:
    """Run the Flower console script ``argv[0]`` (a path or a name) with ``argv[1:]``."""
    from importlib.metadata import entry_points

    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: python -m tasks.flower_logs FLOWER-SCRIPT [ARGS…]", file=sys.stderr)
        return 2
    name = os.path.basename(args[0])
    scripts = [e for e in entry_points(group="console_scripts") if e.name == name]
    if not scripts:
        print(f"{name}: no such console script in this environment", file=sys.stderr)
        return 2
    plain_unless_terminal()
    sys.argv = [args[0], *args[1:]]
    result = scripts[0].load()()
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
