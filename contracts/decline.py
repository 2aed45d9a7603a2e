"""A site's refusal to answer a message, sent as a Flower ``Error`` instead of a reply.

Kept apart from the other records (``contracts.records``) because it needs no task's types: every
handler of the node, whatever its message, declines through it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Literal

from flwr.app import Error

#: Error code of a reply in which the site declines (Flower reserves small codes for itself).
DECLINED_CODE = 100

DeclineKind = Literal["declined", "data error", "failed"]


@dataclass(frozen=True)
class Decline:
    """A site's refusal, sent instead of a reply: who, which kind, the rule, and a public detail.

    ``declined``: a rule said no (grant, policy, budget); ``data error``: the site's own file failed
    the schema (rule ``data.schema``); ``failed``: something broke at the node (``node.internal``,
    details in its own log). The detail carries no cell value and no local path (the node's
    ``NodeDeclined.decline`` sees to it); the reason travels as JSON, read back by ``from_error``.
    """

    site: str
    kind: DeclineKind
    rule: str
    detail: str

    def to_error(self) -> Error:
        return Error(code=DECLINED_CODE, reason=json.dumps(asdict(self), ensure_ascii=False))

    @classmethod
    def from_error(cls, error: Error) -> Decline | None:
        """The decline in a node's error reply, or None for an error the node did not write (an
        unreachable node's, written by the SuperLink)."""
        if error.code != DECLINED_CODE:
            return None
        try:
            body = json.loads(error.reason or "")
            decline = cls(str(body["site"]), body["kind"], str(body["rule"]), str(body["detail"]))
        except (ValueError, TypeError, KeyError):
            return None
        return decline if decline.kind in ("declined", "data error", "failed") else None

    @property
    def why(self) -> str:
        """The rule and its detail, as the study report lists them."""
        return f"rule {self.rule}: {self.detail}"

    def sentence(self) -> str:
        """One line for people: ``site apec declined — rule site.purpose: …``."""
        return f"site {self.site} {self.kind} — {self.why}"
