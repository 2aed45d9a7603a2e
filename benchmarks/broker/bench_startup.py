"""Broker start-up: seconds until it accepts connections, and its resident memory then.

Starts ``r2dde broker serve`` (``trust_broker.cli serve``) on a fresh SQLite database and a
provisioned folder, ``--runs`` times, and reports the median time to the first accepted connection
and the process's peak resident set (``VmHWM``). ``--repo`` runs another checkout's code (the
previous commit, as an anchor on a shared machine). Prints and writes
``benchmarks/results/broker_startup.json`` (or ``--out``).

    .venv/bin/python benchmarks/broker/bench_startup.py --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one_start(repo: Path, keys: Path, folder: Path, index: int) -> dict[str, float | bool]:
    port = _free_port()
    db = f"sqlite:///{folder / f'broker-{index}.db'}"
    code = "from trust_broker.cli import app; app()"
    command = [sys.executable, "-c", code, "serve", "--keys", str(keys), "--db", db, "--port", str(port)]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    began = time.perf_counter()
    # cwd = the checkout: ``python -c`` puts the working directory first on sys.path.
    process = subprocess.Popen(command, env=env, cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(process.stderr.read().decode()[-2000:])  # type: ignore[union-attr]
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.02)
        seconds = time.perf_counter() - began
        rss = _peak_rss_mib(process.pid)
        torch = "torch" in Path(f"/proc/{process.pid}/maps").read_text()
        cpu = sum(
            int(x) for x in Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()[11:13]
        )
        return {
            "seconds": seconds,
            "cpu_seconds": cpu / os.sysconf("SC_CLK_TCK"),
            "peak_rss_mib": rss,
            "torch_loaded": torch,
        }
    finally:
        process.terminate()
        process.wait(timeout=15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout whose broker to start")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "broker_startup.json")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from trust_broker.provision import provision

    with tempfile.TemporaryDirectory(prefix="r2dde-startup-") as tmp:
        keys = provision(Path(tmp) / "keys", ("france_travail", "apec", "missions_locales")).root
        runs = [one_start(args.repo.resolve(), keys, Path(tmp), i) for i in range(args.runs)]
    result = {
        "benchmark": "broker_startup",
        "repo": str(args.repo),
        "runs": runs,
        "median_seconds": round(statistics.median(r["seconds"] for r in runs), 2),
        "median_cpu_seconds": round(statistics.median(r["cpu_seconds"] for r in runs), 2),
        "max_peak_rss_mib": round(max(r["peak_rss_mib"] for r in runs), 1),
        "load_average_1m": os.getloadavg()[0],
    }
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
