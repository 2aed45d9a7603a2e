"""The rounds this node trained, per study — the node's own record, so no round is trained twice,
and the only place a round's exact counts (records used, opt-outs applied) are kept.

The coordinator numbers the rounds; nothing stops it from sending round 2 again, or round 9 of a
3-round grant, or the same round in a new Flower run (a new run starts with an empty context).
A replay is not free: the node trains again, and the update it releases composes with the first.
So before it reserves any ε, the node claims the round here and refuses:

* a round it already claimed (``node.round_repeated``), in this run or any earlier one;
* a round outside 1..the rounds the grant allows (``node.round_beyond_grant``);
* a round whose mechanism would take the study's composed ε past its target
  (``node.round_over_budget``) — e.g. instructions whose round count changed mid-study;
* and it fails closed if the record on disk lost rounds its Flower context remembers
  (``node.round_record_lost``).

Where it lives, and why both places: the record is a JSON file under the node's state folder
(``state-dir``, by default ``<data-dir>/.r2dde-node``). Only a file survives what the Flower
context does not: in deployment every message runs in a fresh ClientApp process, the SuperNode
keeps a context per *run* only, and a restarted SuperNode or a new run starts empty. The file is
the authority; the context keeps a copy of the trained rounds so that a record deleted or rolled
back under a running study is noticed rather than trusted. Claims are serialized by an exclusive
``flock`` (two concurrent messages for one round: one trains, the other is refused) and written
atomically (``os.replace``). A claimed round stays claimed when its training fails: the node never
retrains a round, it only releases the reservation of a round that released nothing.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import tempfile
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from pathlib import Path

from .declined import NodeDeclined
from .dp_plan import epsilon_spent

#: Tolerance on the study's ε target: σ is calibrated to within 0.005 of it (dp_plan.plan_study).
EPSILON_SLACK = 1.01


class RoundRecord:
    """One study's rounds at this node, on disk."""

    def __init__(self, directory: Path, study_id: str) -> None:
        self.directory = directory
        name = hashlib.sha256(study_id.encode("utf-8")).hexdigest()[:32]
        self.path = directory / f"rounds-{name}.json"
        self._lock_path = directory / f"rounds-{name}.lock"
        self.study_id = study_id

    @contextmanager
    def _locked(self) -> Iterator[dict[str, object]]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = self._read()
                yield state
                self._write(state)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> dict[str, object]:
        if not self.path.exists():
            return {"study_id": self.study_id, "rounds": {}}
        try:
            state = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise NodeDeclined(
                "node.round_record_lost", f"the node's round record is unreadable: {exc}"
            ) from None
        if not isinstance(state, dict):
            raise NodeDeclined("node.round_record_lost", "the node's round record is not a JSON object")
        if state.get("study_id") != self.study_id:
            raise NodeDeclined("node.round_record_lost", "the node's round record names another study")
        return state

    def _write(self, state: Mapping[str, object]) -> None:
        handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=".rounds-")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(state, out, indent=1, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.path)

    def claim(
        self,
        server_round: int,
        *,
        rounds_granted: int,
        mechanism: Mapping[str, object],
        target_epsilon: float,
        delta: float,
        remembered: list[int],
    ) -> None:
        """Claim `server_round` before any ε is reserved for it; raise NodeDeclined naming the rule."""
        if not 1 <= server_round <= rounds_granted:
            raise NodeDeclined(
                "node.round_beyond_grant", f"round {server_round} is outside rounds 1..{rounds_granted}"
            )
        with self._locked() as state:
            rounds: MutableMapping[str, dict[str, object]] = state["rounds"]  # type: ignore[assignment]
            lost = [r for r in remembered if str(r) not in rounds]
            if lost:
                raise NodeDeclined(
                    "node.round_record_lost",
                    f"rounds {lost} this run trained are missing from the node's record {self.path}",
                )
            if str(server_round) in rounds:
                raise NodeDeclined("node.round_repeated", f"round {server_round} was already trained here")
            if len(rounds) >= rounds_granted:
                raise NodeDeclined(
                    "node.round_beyond_grant", f"{len(rounds)} rounds already trained of {rounds_granted}"
                )
            if target_epsilon != float("inf"):
                after = epsilon_spent([*_history(rounds), _step(mechanism)], delta)
                if after > target_epsilon * EPSILON_SLACK:
                    raise NodeDeclined(
                        "node.round_over_budget",
                        f"round {server_round} would take this study to ε = {after:.3f}, "
                        f"past its target {target_epsilon}",
                    )
            rounds[str(server_round)] = {"mechanism": dict(mechanism), "state": "claimed"}

    def unclaim(self, server_round: int) -> None:
        """Free a claimed round that never started (its reservation was refused): nothing was trained."""
        with self._locked() as state:
            rounds: MutableMapping[str, dict[str, object]] = state["rounds"]  # type: ignore[assignment]
            if rounds.get(str(server_round), {}).get("state") == "claimed":
                del rounds[str(server_round)]

    def settle(self, server_round: int, *, trained: bool) -> list[tuple[float, float, int]]:
        """Mark the round trained (its update is released) or failed; return the trained history."""
        with self._locked() as state:
            rounds: MutableMapping[str, dict[str, object]] = state["rounds"]  # type: ignore[assignment]
            rounds[str(server_round)]["state"] = "trained" if trained else "failed"
            return _history({r: v for r, v in rounds.items() if v["state"] == "trained"})

    def keep_counts(self, server_round: int, counts: Mapping[str, int]) -> str:
        """Keep a trained round's exact counts here, for the partner's DPO; return a commitment to them.

        The counts are not DP: they never leave the node. What may leave is SHA-256(salt ‖ counts)
        with a fresh 256-bit salt kept beside them — it hides them (a bare hash of small integers
        would not: anyone could try every count) and binds the node to them, so that the DPO can
        later open them to an auditor, who checks them against the commitment in the broker's trail.
        """
        salt = secrets.token_hex(32)
        kept = {key: int(value) for key, value in sorted(counts.items())}
        commitment = counts_commitment(salt, kept)
        with self._locked() as state:
            rounds: MutableMapping[str, dict[str, object]] = state["rounds"]  # type: ignore[assignment]
            rounds[str(server_round)]["counts"] = {**kept, "salt": salt, "commitment": commitment}
        return commitment


def counts_commitment(salt: str, counts: Mapping[str, int]) -> str:
    """The commitment :meth:`RoundRecord.keep_counts` publishes (an auditor recomputes it)."""
    body = json.dumps({key: int(value) for key, value in counts.items()}, sort_keys=True)
    return hashlib.sha256(bytes.fromhex(salt) + body.encode("utf-8")).hexdigest()


def _step(mechanism: Mapping[str, object]) -> tuple[float, float, int]:
    return (
        float(mechanism["noise_multiplier"]),  # type: ignore[arg-type]
        float(mechanism["sample_rate"]),  # type: ignore[arg-type]
        int(mechanism["steps"]),  # type: ignore[call-overload]
    )


def _history(rounds: Mapping[str, Mapping[str, object]]) -> list[tuple[float, float, int]]:
    """Every claimed round counts towards the budget, trained or not (a failed round may have drawn noise)."""
    return [_step(r["mechanism"]) for r in rounds.values()]  # type: ignore[arg-type]
