"""Lean load generator for the broker: signed reserve → commit pairs from one event loop, like wrk or k6.

``bench_reserve_commit.py`` runs it as a separate process. Its 20 ``BrokerClient`` threads spend
about 2.4 ms of CPU per pair (half a core at 200 pairs/s: httpx, and ``http_message_signatures``'
structured-field serialization), on the same cores as the server, so they measure the load generator
as much as the broker. Here every virtual client is a coroutine with its own keep-alive HTTP/1.1
connection (asyncio streams, uvloop when importable): requests are written as bytes, answers parsed
no further than the status line, Content-Length and the JSON body, and the RFC 9421 signature base
is built by hand for the fixed shape the broker expects (``sign_request``), then signed with
Ed25519.

Each client is the node of ``sites[i % len(sites)]`` and loops reserve → commit for ``--seconds``
after ``--warmup-pairs`` warm-up pairs and a common start: with no think time (closed loop), or,
with ``--rate``, on a fixed schedule of that many pairs/s in all (open loop; a pair's latency
counts from when it was due). The JSON written to
``--out`` has the pair rate, latency percentiles, errors (every non-2xx answer) and the generator's
own CPU share. The lines ``MEASURE_STARTED`` and ``MEASURE_STOPPED`` on stdout frame the measured
window, so a parent can sample the server's CPU over the same interval.

    .venv/bin/python benchmarks/broker/loadgen.py --url http://127.0.0.1:8443 --keys KEYS \\
        --study-id STUDY --sites france_travail apec missions_locales --seconds 10 --out /tmp/lg.json
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import secrets
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from trust_broker.auth.messages import COVERED_COMPONENTS, SIGNATURE_LABEL, SIGNATURE_TAG  # noqa: E402
from trust_broker.provision.keys import ProvisionedFolder, load_private_key  # noqa: E402
from trust_broker.roles import Role  # noqa: E402

MEASURE_STARTED = "loadgen: measuring"
MEASURE_STOPPED = "loadgen: stopped"
RESERVE_PATH = "/v1/budget/reserve"
COMMIT_PATH = "/v1/budget/commit"
# The benchmark's mechanism; bench_reserve_commit.py passes its own with --mechanism.
MECHANISM: dict[str, Any] = {
    "kind": "subsampled_gaussian",
    "noise_multiplier": 5.0,
    "sample_rate": 0.001,
    "steps": 1,
    "delta": 1e-8,
}
FIRST_ERRORS = 5


# -- RFC 9421 signing, by hand -------------------------------------------------------------------
def _sf_string(value: str) -> str:
    """A Structured Field String (RFC 8941 §3.3.3): printable ASCII, with ``"`` and ``\\`` escaped."""
    if not (value.isascii() and value.isprintable()):
        raise ValueError(f"{value!r} cannot be a structured-field string")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def content_digest(body: bytes) -> str:
    """RFC 9530 ``Content-Digest`` with sha-256 (a Structured Field Dictionary with one byte sequence)."""
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii") + ":"


def signature_base(
    *, method: str, path: str, query: str, digest: str | None, created: int, kid: str, nonce: str
) -> tuple[str, str]:
    """The RFC 9421 §2.5 signature base and its ``@signature-params`` for the broker's fixed shape.

    Covers ``@method @path @query`` (``messages.COVERED_COMPONENTS``) and ``content-digest`` when
    the request has a body, with ``created``, ``keyid``, ``alg``, ``nonce`` and ``tag`` in the order
    ``http_message_signatures`` writes them. ``path`` and ``query`` are as sent on the wire (the
    verifier signs a fixed origin, so the authority is not covered); an empty query is ``?``.
    """
    values = {"@method": method.upper(), "@path": path or "/", "@query": "?" + query}
    lines = [f'"{name}": {values[name]}' for name in COVERED_COMPONENTS]
    names = [f'"{name}"' for name in COVERED_COMPONENTS]
    if digest is not None:
        lines.append(f'"content-digest": {digest}')
        names.append('"content-digest"')
    params = (
        f'({" ".join(names)});created={created};keyid={_sf_string(kid)};alg="ed25519"'
        f";nonce={_sf_string(nonce)};tag={_sf_string(SIGNATURE_TAG)}"
    )
    lines.append(f'"@signature-params": {params}')
    return "\n".join(lines), params


def sign_request(
    private_key: Ed25519PrivateKey,
    kid: str,
    *,
    method: str,
    path: str,
    body: bytes | None,
    query: str = "",
    created: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The headers ``SignedRequestAuth`` would add: Content-Digest (bodies), Signature-Input, Signature.

    ``body`` is None for a request without content (the digest is then neither sent nor covered);
    ``created`` defaults to now and ``nonce`` to a fresh random one, as in the project's client.
    """
    digest = content_digest(body) if body is not None else None
    base, params = signature_base(
        method=method,
        path=path,
        query=query,
        digest=digest,
        created=int(time.time()) if created is None else created,
        kid=kid,
        nonce=secrets.token_urlsafe(18) if nonce is None else nonce,
    )
    signature = base64.b64encode(private_key.sign(base.encode("ascii"))).decode("ascii")
    headers = {"Content-Digest": digest} if digest is not None else {}
    headers["Signature-Input"] = f"{SIGNATURE_LABEL}={params}"
    headers["Signature"] = f"{SIGNATURE_LABEL}=:{signature}:"
    return headers


def node_identity(keys: Path, site: str) -> tuple[str, Ed25519PrivateKey]:
    """A site's node kid and private key, found as ``BrokerClient.from_folder`` finds them."""
    folder = ProvisionedFolder(root=Path(keys))
    return folder.kid_for(Role.NODE, site), load_private_key(folder.private_key_path(Role.NODE, site))


def json_body(data: dict[str, Any]) -> bytes:
    """JSON encoded as httpx encodes ``json=`` (what ``BrokerClient`` sends)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


# -- HTTP/1.1 over asyncio streams ---------------------------------------------------------------
class BrokerRefused(Exception):
    """A non-2xx answer (``rule: detail``) or an answer the generator cannot use."""


@dataclass
class VirtualNode:
    """One keep-alive connection acting as the node of ``site``."""

    host: str
    port: int
    site: str
    kid: str
    private_key: Ed25519PrivateKey
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
            self.reader = self.writer = None

    async def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Send one signed POST and return the JSON answer; ``BrokerRefused`` for a non-2xx status."""
        if self.writer is None:
            await self.connect()
        assert self.reader is not None and self.writer is not None
        body = json_body(payload)
        signed = sign_request(self.private_key, self.kid, method="POST", path=path, body=body)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            + "".join(f"{name}: {value}\r\n" for name, value in signed.items())
            + "\r\n"
        )
        self.writer.write(head.encode("ascii") + body)
        try:
            answer_head = await self.reader.readuntil(b"\r\n\r\n")
            status = int(answer_head[9:12])
            lowered = answer_head.lower()
            at = lowered.find(b"\r\ncontent-length:")
            if at < 0:
                raise BrokerRefused("loadgen.http: answer without Content-Length")
            end = lowered.index(b"\r\n", at + 2)
            content = await self.reader.readexactly(int(lowered[at + 17 : end]))
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError) as exc:
            await self.close()
            raise BrokerRefused(f"loadgen.transport: {type(exc).__name__} {exc}") from exc
        if b"\r\nconnection: close" in lowered:
            await self.close()
        try:
            data = json.loads(content) if content else {}
        except ValueError:
            data = {}
        if not 200 <= status < 300:
            data = data if isinstance(data, dict) else {}
            raise BrokerRefused(f"{data.get('rule', f'http.{status}')}: {data.get('detail', '')}")
        if not isinstance(data, dict):
            raise BrokerRefused("loadgen.bad_answer: not a JSON object")
        return data

    async def pair(self, request_id: str, study_id: str, dataset: str, mechanism: dict[str, Any]) -> None:
        """Reserve then commit, with the bodies ``BrokerClient.reserve``/``commit`` send."""
        reservation = await self.post(
            RESERVE_PATH,
            {
                "request_id": request_id,
                "study_id": study_id,
                "dataset": dataset,
                "mechanism": mechanism,
                "examples": 1000,
            },
        )
        if "reservation_id" not in reservation:
            raise BrokerRefused("loadgen.bad_answer: reserve answered without reservation_id")
        await self.post(
            COMMIT_PATH, {"reservation_id": reservation["reservation_id"], "mechanism": mechanism}
        )


# -- the run -------------------------------------------------------------------------------------
@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    warmup_errors: int = 0
    first_errors: list[str] = field(default_factory=list)

    def error(self, message: str, *, warmup: bool = False) -> None:
        if warmup:
            self.warmup_errors += 1
        else:
            self.errors += 1
        if len(self.first_errors) < FIRST_ERRORS:
            self.first_errors.append(message[:200])


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency_summary(latencies: list[float], elapsed: float) -> dict[str, Any]:
    """Pairs, rate and latency percentiles of one measured window (seconds in, ms out)."""
    return {
        "pairs": len(latencies),
        "seconds": round(elapsed, 2),
        "pairs_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
        "p95_ms": round(1000 * _percentile(latencies, 0.95), 1) if latencies else None,
        "p99_ms": round(1000 * _percentile(latencies, 0.99), 1) if latencies else None,
    }


async def run(
    *,
    url: str,
    keys: Path,
    study_id: str,
    sites: Sequence[str],
    clients: int = 20,
    seconds: float = 15.0,
    warmup_pairs: int = 3,
    dataset: str = "parcours",
    mechanism: dict[str, Any] | None = None,
    timeout: float = 60.0,
    rate: float | None = None,
) -> dict[str, Any]:
    """Run the load and return the result row (see the module docstring).

    Closed loop by default (each client sends its next pair when the last one is answered). With
    ``rate`` (pairs/s in all), open loop: client i's pairs are due on a fixed schedule, staggered
    between clients, and a pair's latency counts from when it was due, so a broker falling behind
    shows as latency instead of silently lowering the offered load.
    """
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"{url}: only http://host:port is supported")
    host, port = parts.hostname, parts.port or 80
    mechanism = dict(MECHANISM if mechanism is None else mechanism)
    identities = {site: node_identity(keys, site) for site in dict.fromkeys(sites)}
    chosen = [sites[i % len(sites)] for i in range(clients)]  # client i is the node of this site
    nodes = [VirtualNode(host, port, site, *identities[site]) for site in chosen]
    tally = Tally()
    loop = asyncio.get_running_loop()
    tag = f"{study_id}.lg"  # request ids are idempotency keys per node: never reuse another run's

    async def warm(index: int, node: VirtualNode) -> None:
        await node.connect()
        for n in range(warmup_pairs):
            try:
                await node.pair(f"{tag}.w{index}.{n}", study_id, dataset, mechanism)
            except BrokerRefused as exc:
                tally.error(str(exc), warmup=True)

    async def measure(index: int, node: VirtualNode, stop_at: float) -> None:
        n = 0
        interval = clients / rate if rate else 0.0
        due = loop.time() + index * interval / clients
        while loop.time() < stop_at:
            if rate:
                if due > loop.time():
                    await asyncio.sleep(due - loop.time())
                if due >= stop_at:
                    break
                t0, due = due, due + interval
            else:
                t0 = loop.time()
            try:
                await node.pair(f"{tag}.c{index}.{n}", study_id, dataset, mechanism)
            except BrokerRefused as exc:
                tally.error(str(exc))
                continue
            finally:
                n += 1
            tally.latencies.append(loop.time() - t0)

    try:
        async with asyncio.timeout(timeout + seconds):
            await asyncio.gather(*(warm(i, node) for i, node in enumerate(nodes)))
            print(MEASURE_STARTED, flush=True)
            began, cpu = time.perf_counter(), time.process_time()
            stop_at = loop.time() + seconds
            await asyncio.gather(*(measure(i, node, stop_at) for i, node in enumerate(nodes)))
            elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
            print(MEASURE_STOPPED, flush=True)
    finally:
        await asyncio.gather(*(node.close() for node in nodes), return_exceptions=True)
    return {
        "offered_pairs_per_second": rate,  # None: closed loop
        **latency_summary(tally.latencies, elapsed),
        "client_cpu_share": round(cpu / elapsed, 2),  # this process only; 1.0 = one core busy
        "errors": tally.errors,
        "warmup_errors": tally.warmup_errors,
        "first_errors": tally.first_errors,
    }


def run_in_loop(**kwargs: Any) -> tuple[dict[str, Any], str]:
    """``run`` on uvloop when it is installed (else asyncio's loop); returns the row and the loop's name."""
    try:
        import uvloop
    except ImportError:
        factory, name = None, "asyncio"
    else:
        factory, name = uvloop.new_event_loop, "uvloop"
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(run(**kwargs)), name


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True, help="http://127.0.0.1:PORT")
    parser.add_argument("--keys", type=Path, required=True, help="folder written by trust_broker.provision")
    parser.add_argument("--study-id", required=True, help="a granted study listing the sites")
    parser.add_argument("--sites", nargs="+", required=True)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup-pairs", type=int, default=3)
    parser.add_argument("--dataset", default="parcours")
    parser.add_argument("--mechanism", type=json.loads, default=None, help="JSON; default: MECHANISM")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rate", type=float, default=None, help="open loop: pairs/s offered in all")
    args = parser.parse_args(argv)

    row, loop_name = run_in_loop(
        url=args.url,
        keys=args.keys,
        study_id=args.study_id,
        sites=args.sites,
        clients=args.clients,
        seconds=args.seconds,
        warmup_pairs=args.warmup_pairs,
        dataset=args.dataset,
        mechanism=args.mechanism,
        rate=args.rate,
    )
    row = {"clients": args.clients, "event_loop": loop_name, **row}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(row, indent=2) + "\n")


if __name__ == "__main__":
    main()
