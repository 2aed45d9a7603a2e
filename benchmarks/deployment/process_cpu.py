"""CPU seconds by process role, for every process a benchmark started (read from /proc, Linux only).

Why: a deployed round is slower than a simulated one for reasons no wall clock separates — the
messages' own work, Flower's polling processes, the imports a cold process pays. A thread reads
``/proc/<pid>/stat`` of every descendant of this process once a second and keeps the last reading
of each; a role's CPU is its processes' own user + system time. A process that ends between two
readings is counted through its parent instead: the children a process waited for are in its
``cutime``/``cstime``, so the warm servers' reaped children (one per message) are reported as the
role "message (warm child)", a node SuperExec's as "clientapp launches" and the coordinator's
SuperExec's as "serverapp".
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")

#: (substring of the command line, role), first match wins.
ROLES = (
    ("node_agent.deployment.warm_server", "warm server"),
    ("flwr-clientapp", "clientapp launcher"),
    ("node_agent.deployment.approved_app", "clientapp launcher"),
    ("flwr-serverapp", "serverapp"),
    ("flower-superexec", "superexec"),
    ("flower-supernode", "supernode"),
    ("flower-superlink", "superlink"),
    ("coordinator.cli", "coordinator cli"),
    ("node_agent.cli", "node cli"),
    ("trust_broker", "broker"),
    ("ray::", "ray"),  # Ray's workers
    ("/ray/", "ray"),  # raylet, gcs_server, its dashboard and monitors, run from the ray package
)

#: Processes started per message, counted through the parent that waits for them.
REAPED_BY = {
    "warm server": "message (warm child)",
    "superexec": "clientapp launches",  # in a cold node, the messages themselves
    "superexec (serverapp)": "serverapp",
}


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _role(cmdline: str) -> str:
    for needle, role in ROLES:
        if needle in cmdline:
            return role
    return Path(cmdline.split(" ", 1)[0]).name or "?"


@dataclass
class _Seen:
    role: str
    parent_role: str
    own: float  # utime + stime, seconds
    reaped: float  # cutime + cstime: children this process waited for


@dataclass
class ProcessCpu:
    """Samples this process's descendants until ``stop()``; ``by_role()`` sums the last readings."""

    interval_s: float = 1.0
    seen: dict[tuple[int, int], _Seen] = field(default_factory=dict)  # (pid, start time) → reading
    alive: set[tuple[int, int]] = field(default_factory=set)  # at the last reading
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _own_at_start: float = 0.0

    def start(self) -> ProcessCpu:
        times = os.times()
        self._own_at_start = times.user + times.system
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> dict[str, float]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()
        return self.by_role()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def sample(self) -> None:
        stats = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            # fields[0] is field 3 of proc(5): ppid 4, utime 14, stime 15, cutime 16, cstime 17, start 22
            stats[int(entry.name)] = (int(fields[1]), [int(f) for f in fields[11:15]], int(fields[19]))
        mine = {os.getpid()}
        grew = True
        while grew:  # the descendants of this process, whatever their depth
            grew = False
            for pid, (ppid, _, _) in stats.items():
                if ppid in mine and pid not in mine:
                    mine.add(pid)
                    grew = True
        mine.discard(os.getpid())
        roles = {pid: _role(_cmdline(pid)) for pid in mine}  # read for this run's processes only
        for pid in mine:  # Flower 1.42's SuperExec is one program for both sides: its parent tells
            if roles[pid] == "superexec" and roles.get(stats[pid][0]) == "superlink":
                roles[pid] = "superexec (serverapp)"
        self.alive = set()
        for pid in mine:
            ppid, (utime, stime, cutime, cstime), started = stats[pid]
            parent = roles.get(ppid, "benchmark")
            reading = _Seen(roles[pid], parent, (utime + stime) / TICK, (cutime + cstime) / TICK)
            self.seen[(pid, started)] = reading
            self.alive.add((pid, started))

    def by_role(self) -> dict[str, float]:
        """Seconds of CPU per role; children reaped by a warm server or a SuperExec under their own
        names. A short process seen alive and then reaped is counted once, through its parent."""
        times = os.times()
        totals: dict[str, float] = defaultdict(float)
        totals["benchmark process"] = times.user + times.system - self._own_at_start
        for key, reading in self.seen.items():
            launched = REAPED_BY.get(reading.parent_role)
            if launched is not None and key not in self.alive:
                continue  # ended: its parent's reaped time counts it
            totals[launched or reading.role] += reading.own
            if reading.role in REAPED_BY and reading.parent_role not in REAPED_BY:
                totals[REAPED_BY[reading.role]] += reading.reaped
        return {role: round(seconds, 1) for role, seconds in sorted(totals.items(), key=lambda kv: -kv[1])}


def difference(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    """CPU per role between two ``by_role()`` readings (a run's own, without its start-up)."""
    spent = {role: round(seconds - before.get(role, 0.0), 1) for role, seconds in after.items()}
    return dict(sorted(spent.items(), key=lambda kv: -kv[1]))
