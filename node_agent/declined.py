"""A node's refusal to take part, with the rule that refused — sent back instead of an update.

Two kinds, told apart so that nobody reads a broken file as a policy refusal: the site *declined*
(grant, policy, budget: someone's rule said no) or it has a *data error* (its own file did not pass
the schema). Each has two texts: the full one for the partner's own log (cell values, local paths),
and the one sent to the Region (rule and place only; local paths reduced to file names).
"""

from __future__ import annotations

import logging
import re

#: Flower's logger: its console handler is what the SuperNode's operator sees.
log = logging.getLogger("flwr").getChild("r2dde.node")

_LOCAL_PATH = re.compile(r"(?<![\w:/.-])(?:[A-Za-z]:)?[\w.-]*(?:[\\/][^\s\\/:'\"()]+){2,}[\\/]?")


def without_local_paths(text: str) -> str:
    """``/srv/ft/keys/node.key`` → ``node.key``: the partner's folders are not the Region's business."""
    return _LOCAL_PATH.sub(lambda m: m.group(0).rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1], text)


class NodeDeclined(Exception):
    """Raised anywhere in the node's round; becomes an error reply naming the site and the rule."""

    kind = "declined"

    def __init__(self, rule: str, detail: str, public: str | None = None) -> None:
        super().__init__(f"{rule}: {detail}")
        self.rule = rule
        self.detail = detail
        self.public = public

    def reason(self, site: str) -> str:
        """What the Region reads: no cell value, no local path, on one line."""
        text = without_local_paths(self.public if self.public is not None else self.detail)
        return f"site {site} {self.kind} — rule {self.rule}: {' '.join(text.split())}"

    def log_locally(self, site: str) -> None:
        """Every refusal is seen where it happens, with everything the partner needs to fix it."""
        log.warning("site %s %s — rule %s: %s", site, self.kind, self.rule, self.detail)


class NodeDataError(NodeDeclined):
    """The site's own data did not pass the schema: a data error to fix at home, not a refusal."""

    kind = "data error"


class NodeFailed(NodeDeclined):
    """Something broke at the node (a bug, an outage): neither a refusal nor the partner's data."""

    kind = "failed"
