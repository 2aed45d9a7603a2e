"""Broker throughput: reserve+commit pairs per second and pair latency with 20 concurrent nodes.

A real broker process (`trust_broker.cli serve`) listens on 127.0.0.1 and 20 nodes, each on a
keep-alive connection, loop signed reserve → commit for a fixed time. Two load generators
(``--client``), each against its own fresh broker process and database:

* ``lean`` (first): ``loadgen.py`` in a separate process, 20 coroutines in one event loop, with
  raw HTTP/1.1 and a hand-built RFC 9421 signature. It costs a fraction of the server's CPU, so
  its row is the broker's capacity (as wrk or k6 would measure it).
* ``broker-client``: 20 threads in this process, each the project's ``BrokerClient`` (httpx and
  ``http_message_signatures``). At ~2.4 ms of CPU per pair it competes with the server for the same
  cores, so its row is what the project's own client achieves, load generator included.

Each row has the server's CPU share (1.0 = one core) and the load generator's. Runs on SQLite and,
when a URL is given (``--postgres-url`` or $R2DDE_TEST_POSTGRES_URL), on PostgreSQL in a
throw-away schema. Prints a table and saves JSON in benchmarks/results/.

    .venv/bin/python benchmarks/broker/bench_reserve_commit.py --seconds 15
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from policies import StudyRequest  # noqa: E402
from trust_broker.client import BrokerClient, BrokerError  # noqa: E402
from trust_broker.provision import provision  # noqa: E402
from trust_broker.roles import Role  # noqa: E402
from trust_broker.store.db import throwaway_schema  # noqa: E402

LOADGEN = Path(__file__).resolve().with_name("loadgen.py")
sys.path.insert(0, str(LOADGEN.parent))
from loadgen import MEASURE_STARTED, MEASURE_STOPPED, latency_summary  # noqa: E402

SITES = ("france_travail", "apec", "missions_locales")
CLIENT_MODES = ("lean", "broker-client")
WARMUP_PAIRS = 3
DELTA = 1e-8
# A cheap mechanism so that tens of thousands of rounds stay far below the caps: the benchmark
# measures the broker, not the refusal path.
MECHANISM = {
    "kind": "subsampled_gaussian",
    "noise_multiplier": 5.0,
    "sample_rate": 0.001,
    "steps": 1,
    "delta": DELTA,
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def broker_process(db_url: str, keys: Path, sign_heads_every: int, workers: int = 1):  # noqa: ANN201
    port = _free_port()
    code = "from trust_broker.cli import app; app()"
    command = [sys.executable, "-c", code, "serve", "--keys", str(keys), "--db", db_url, "--port", str(port)]
    command += [
        "--log-level",
        "warning",
        "--sign-heads-every",
        str(sign_heads_every),
        "--workers",
        str(workers),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"broker exited: {process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("broker did not start in 60 s") from None
                time.sleep(0.1)
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _cpu_seconds(pid: int) -> float:
    """User+system CPU of a process and its children so far (Linux /proc), to show who is saturated."""
    total = 0.0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for one in pids:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def request_study(url: str, keys: Path) -> str:
    """A granted study over every site (the coordinator's request); returns its id."""
    study_id = f"bench-{uuid.uuid4().hex[:8]}"
    with BrokerClient.from_folder(keys, Role.REGION, base_url=url) as region:
        region.request_study(
            StudyRequest(
                study_id=study_id,
                purpose_id="autodiagnostic_mobilite",
                task="employment_outcome",
                dataset="parcours",
                fields=("age_band", "sex"),
                sites=SITES,
                rounds=1000,
                target_epsilon=2.0,
                delta=DELTA,
                coordinator="coordinator",
                requested_by="coordinator",
            )
        )
    return study_id


def run_lean(
    url: str,
    keys: Path,
    study_id: str,
    clients: int,
    seconds: float,
    server_pid: int,
    out: Path,
    rate: float | None = None,
) -> dict[str, Any]:
    """``loadgen.py`` in its own process; the server's CPU is sampled when it starts and stops measuring."""
    command = [sys.executable, str(LOADGEN), "--url", url, "--keys", str(keys), "--study-id", study_id]
    command += ["--sites", *SITES, "--clients", str(clients), "--seconds", str(seconds)]
    command += ["--warmup-pairs", str(WARMUP_PAIRS), "--mechanism", json.dumps(MECHANISM), "--out", str(out)]
    command += ["--rate", str(rate)] if rate else []
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    marks: dict[str, tuple[float, float]] = {}
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) as process:
        try:
            for line in process.stdout:  # type: ignore[union-attr]
                if line.strip() in (MEASURE_STARTED, MEASURE_STOPPED):
                    marks[line.strip()] = (time.perf_counter(), _cpu_seconds(server_pid))
                else:
                    print(line, end="")
            if process.wait(timeout=60) != 0 or len(marks) != 2:
                raise RuntimeError(f"loadgen failed (exit {process.returncode}); see its stderr above")
        finally:
            if process.poll() is None:
                process.kill()
    lean: dict[str, Any] = json.loads(out.read_text())
    (began, server_cpu), (ended, server_cpu_end) = marks[MEASURE_STARTED], marks[MEASURE_STOPPED]
    row = {
        name: lean[name] for name in ("pairs", "seconds", "pairs_per_second", "p50_ms", "p95_ms", "p99_ms")
    }
    row["server_cpu_share"] = round((server_cpu_end - server_cpu) / (ended - began), 2)
    row["client_cpu_share"] = lean["client_cpu_share"]  # the loadgen process alone
    row["load_average_1m"] = round(os.getloadavg()[0], 2)
    row.update({name: lean[name] for name in ("errors", "first_errors", "warmup_errors", "event_loop")})
    return row


def run_broker_client(
    url: str, keys: Path, study_id: str, clients: int, seconds: float, server_pid: int
) -> dict[str, Any]:
    """``clients`` threads in this process, each a ``BrokerClient`` (httpx + http_message_signatures)."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    start_barrier = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def worker(index: int) -> None:
        site = SITES[index % len(SITES)]
        with BrokerClient.from_folder(keys, Role.NODE, site, base_url=url, timeout=30) as node:

            def pair(request_id: str) -> None:
                reserved = node.reserve(
                    request_id=request_id,
                    study_id=study_id,
                    dataset="parcours",
                    mechanism=MECHANISM,
                    examples=1000,
                )
                node.commit(reserved.reservation_id, MECHANISM)

            for warm in range(WARMUP_PAIRS):  # open the connection, warm the server's caches
                pair(f"w{index}-{warm}")
            start_barrier.wait()
            n = 0
            while time.perf_counter() < stop_at[0]:
                t0 = time.perf_counter()
                try:
                    pair(f"c{index}-{n}")
                except BrokerError as exc:
                    errors.append(f"{exc.rule}: {exc.detail}"[:200])
                    continue
                finally:
                    n += 1
                latencies[index].append(time.perf_counter() - t0)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.perf_counter() + seconds + 1e9  # set properly once everyone is ready
    start_barrier.wait()
    began = time.perf_counter()
    server_cpu, client_cpu = _cpu_seconds(server_pid), time.process_time()
    stop_at[0] = began + seconds
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    server_cpu, client_cpu = _cpu_seconds(server_pid) - server_cpu, time.process_time() - client_cpu
    return {
        **latency_summary([x for per in latencies for x in per], elapsed),
        "server_cpu_share": round(server_cpu / elapsed, 2),  # 1.0 = one core busy
        "client_cpu_share": round(client_cpu / elapsed, 2),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "errors": len(errors),
        "first_errors": errors[:3],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--postgres-url", default=os.environ.get("R2DDE_TEST_POSTGRES_URL"))
    parser.add_argument("--sign-heads-every", type=int, nargs="+", default=[1])
    parser.add_argument("--workers", type=int, nargs="+", default=[1], help="server processes (PostgreSQL)")
    parser.add_argument(
        "--client",
        nargs="+",
        choices=CLIENT_MODES,
        default=list(CLIENT_MODES),
        help="load generators, one row each: lean (loadgen.py, the broker's capacity), broker-client",
    )
    parser.add_argument(
        "--rate",
        type=float,
        nargs="*",
        default=[],
        help="also run the lean generator open loop at these offered pairs/s (latency counted from when "
        "each pair was due)",
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "broker_reserve_commit.json"
    )
    args = parser.parse_args()

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="r2dde-bench-") as tmp:
        keys = provision(Path(tmp) / "keys", SITES).root
        backends: list[tuple[str, Any]] = [("sqlite", None)]
        if args.postgres_url:
            backends.append(("postgresql", args.postgres_url))
        else:
            print("PostgreSQL skipped: no --postgres-url nor R2DDE_TEST_POSTGRES_URL")
        for name, base in backends:
            runs = [
                (every, w, client, rate)
                for every in args.sign_heads_every
                for w in args.workers
                if name != "sqlite" or w == 1
                for client in dict.fromkeys(args.client)
                for rate in ([None, *args.rate] if client == "lean" else [None])
            ]
            # Every row starts from an empty ledger: a reserve composes its account's whole history.
            for every, workers, client, rate in runs:
                if name == "sqlite":
                    db_url = f"sqlite:///{Path(tmp) / f'bench-{every}-{client}.db'}"
                    context = contextmanager(lambda u=db_url: iter([u]))()
                else:
                    context = throwaway_schema(base, "r2dde_bench")
                with context as db_url, broker_process(db_url, keys, every, workers) as (url, pid):
                    row = {
                        "database": name,
                        "sign_heads_every": every,
                        "workers": workers,
                        "client": client,
                        "clients": args.clients,
                        "offered": rate or "closed",
                    }
                    study_id = request_study(url, keys)
                    if client == "lean":
                        out = Path(tmp) / f"lean-{len(results)}.json"
                        row.update(run_lean(url, keys, study_id, args.clients, args.seconds, pid, out, rate))
                    else:
                        row.update(run_broker_client(url, keys, study_id, args.clients, args.seconds, pid))
                    results.append(row)
                    print(json.dumps(row))
    columns = (
        "database",
        "sign_heads_every",
        "workers",
        "client",
        "offered",
        "pairs_per_second",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "server_cpu_share",
        "client_cpu_share",
        "errors",
    )
    widths = [max([len(name)] + [len(str(row[name])) for row in results]) for name in columns]
    print(" ".join(f"{name:>{width}}" for name, width in zip(columns, widths, strict=True)))
    for row in results:
        print(" ".join(f"{row[name]!s:>{width}}" for name, width in zip(columns, widths, strict=True)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "broker reserve+commit pairs",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "seconds_per_run": args.seconds,
        "results": results,
    }
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
