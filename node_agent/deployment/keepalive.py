"""Keep a partner's SuperNode running across a restart of the Region's SuperLink, without the partner.

Flower's SuperNode retries a SuperLink that does not answer, but exits when a restarted SuperLink no
longer knows it (``401 Unauthorized`` once its in-memory state is gone) or when its retry budget runs
out. `r2dde node start` therefore runs it as a child and starts it again after any exit it did not ask
for, waiting longer each time (up to a minute); a SuperLink started with ``--database`` (the default
of `r2dde coordinator start`) keeps its registrations, so the restarted SuperNode is let in again.
Ctrl-C / SIGTERM stop the child and the loop.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from types import FrameType

FIRST_DELAY_S = 2.0
MAX_DELAY_S = 60.0
# A run this long had joined the federation (Flower retries an absent SuperLink itself). 60 s, not 20:
# on a loaded machine a SuperNode whose key the SuperLink refuses took over 20 s to start and be
# refused, and was then restarted forever as if the SuperLink had restarted.
UP_S = 60.0
QUICK_FAILURES = 5


class _Stopped(Exception):
    pass


def keep_running(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    say: Callable[[str], None],
    max_restarts: int | None = None,
    first_delay_s: float = FIRST_DELAY_S,
    max_delay_s: float = MAX_DELAY_S,
    up_s: float = UP_S,
) -> int:
    """Run ``argv`` until a signal asks us to stop or it cannot come back; returns the last exit code."""
    restarts, delay, ever_up, quick = 0, first_delay_s, False, 0
    child: subprocess.Popen[bytes] | None = None

    def stop(signum: int, frame: FrameType | None) -> None:
        raise _Stopped(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while True:
            started = time.monotonic()
            child = subprocess.Popen(list(argv), env=dict(env))
            code = child.wait()
            child = None
            # Any exit we did not ask for counts, 0 included: Flower's SuperNode "terminates gracefully"
            # when a SuperLink restarted without its state no longer knows it.
            lasted = time.monotonic() - started
            if lasted >= up_s:
                ever_up, quick, delay = True, 0, first_delay_s  # it was connected: a new outage
            else:
                quick += 1
            if not ever_up:
                return code  # never joined: a configuration error, Flower's message says which
            if quick > QUICK_FAILURES or (max_restarts is not None and restarts >= max_restarts):
                say(f"the SuperNode exited with code {code}; {restarts} restart(s) done, giving up")
                return code
            say(
                f"the SuperNode exited with code {code} (the SuperLink may have restarted); "
                f"starting it again in {delay:.0f} s"
            )
            time.sleep(delay)
            restarts += 1
            delay = min(max_delay_s, delay * 2)
    except _Stopped as why:
        say(f"stopping the SuperNode ({why})")
        if child is not None:
            stop_child(child)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sys.stdout.flush()


def stop_child(child: subprocess.Popen[bytes], grace_s: float = 20.0) -> None:
    """SIGTERM, then SIGKILL after ``grace_s``; reaped either way."""
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
