"""Latency of a diagnosis under 20 concurrent users (goal: p95 < 100 ms on this machine).

Run by hand after `make demo`:
    PYTHONPATH=. .venv/bin/python benchmarks/autodiag/latency.py --study runs/demo

Starts the real service (`r2dde autodiag serve`, one process, as a person would reach it) on a free
loopback port, then 20 closed-loop users on one asyncio event loop (httpx, so the load generator
takes little CPU from the server) POST complete answers to /diagnostic — each a different person:
job title, commune, diploma, months, radius, licence, training drawn with a fixed seed — for
`--seconds`, after a warm-up. Latency is measured from send to the last byte of the page.
Writes benchmarks/results/autodiag_latency.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

from autodiag.catalogue import catalogue
from autodiag.diagnosis import EDUCATION_FR

RESULTS = Path(__file__).resolve().parents[1] / "results" / "autodiag_latency_w{workers}.json"


def people(n: int, seed: int = 7) -> list[dict[str, str]]:
    cat = catalogue()
    rng = random.Random(seed)
    titles = sorted(cat.appellations)
    communes = sorted(cat.communes)
    return [
        {
            "metier_code": rng.choice(titles),
            "commune_code": rng.choice(communes),
            "diplome": rng.choice(list(EDUCATION_FR)),
            "mois": str(rng.randint(0, 36)),
            "rayon": str(rng.choice((0, 10, 20, 30, 50))),
            "permis": rng.choice(("oui", "non")),
            "formation": rng.choice(("oui", "non")),
            **({"precedent_code": rng.choice(titles)} if rng.random() < 0.5 else {}),
        }
        for _ in range(n)
    ]


async def user(client: httpx.AsyncClient, answers, stop_at: float, record: list[float], errors: list[int]):
    i = 0
    while time.monotonic() < stop_at:
        form = answers[i % len(answers)]
        i += 1
        started = time.perf_counter()
        response = await client.post("/diagnostic", data=form)
        elapsed = time.perf_counter() - started
        if response.status_code != 200 or "Votre chance" not in response.text:
            errors.append(response.status_code)
        record.append(elapsed)


async def load(base: str, users: int, seconds: float, warmup: float) -> tuple[list[float], list[int], float]:
    answers = people(500)
    limits = httpx.Limits(max_connections=users, max_keepalive_connections=users)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        await asyncio.gather(
            *(user(client, answers[k::users], time.monotonic() + warmup, [], []) for k in range(users))
        )
        record: list[float] = []
        errors: list[int] = []
        started = time.monotonic()
        await asyncio.gather(
            *(user(client, answers[k::users], started + seconds, record, errors) for k in range(users))
        )
        return record, errors, time.monotonic() - started


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU time of the server process (Linux /proc), whatever else runs on the machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=Path, default=Path("runs/demo"))
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=1, help="service processes (`serve --workers`)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    port = free_port()
    r2dde = str(Path(sys.executable).with_name("r2dde"))
    command = [r2dde, "autodiag", "serve", "--study", str(args.study)]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--workers", str(args.workers)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                sys.exit(f"the service did not start:\n{server.stdout.read()}")
            try:
                if httpx.get(base + "/sante", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                sys.exit("the service did not answer within 60 s")
            time.sleep(0.2)
        load_before = os.getloadavg()[0]
        cpu_before = server_cpu_seconds(server.pid) if args.workers == 1 else math.nan
        record, errors, wall = asyncio.run(load(base, args.users, args.seconds, args.warmup))
        # The warm-up's requests are in the CPU time too: count them by the same rate.
        cpu_spent = server_cpu_seconds(server.pid) - cpu_before if args.workers == 1 else math.nan
        load_after = os.getloadavg()[0]
    finally:
        server.terminate()
        server.wait(timeout=10)
    ms = np.array(record) * 1000
    result = {
        "study": str(args.study),
        "users": args.users,
        "workers": args.workers,
        "seconds": round(wall, 2),
        "diagnoses": len(record),
        "errors": len(errors),
        "per_second": round(len(record) / wall, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "max_ms": round(float(ms.max()), 1),
        "server_cpu_ms_per_diagnosis": None
        if math.isnan(cpu_spent)
        else round(1000 * cpu_spent / (len(record) * (1 + args.warmup / wall)), 2),
        "load_average_before": round(load_before, 2),
        "load_average_after": round(load_after, 2),
        "cpus": os.cpu_count(),
    }
    args.out = args.out or Path(str(RESULTS).format(workers=args.workers))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps(result, indent=2))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
