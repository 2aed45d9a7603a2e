"""A node's refusal to take part, with the rule that refused — sent back instead of an update.

Two kinds, told apart so that nobody reads a broken file as a policy refusal: the site *declined*
(grant, policy, budget: someone's rule said no) or it has a *data error* (its own file did not pass
the schema). Each has two texts: the full one for the partner's own log (cell values, local paths),
and the one sent to the Region (rule and place only; local paths reduced to file names), which
travels as a ``contracts.records.Decline``. ``answer_or_decline`` is the one place every message
handler turns an exception into that reply.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from contracts.decline import Decline, DeclineKind
from contracts.instructions import InstructionError

if TYPE_CHECKING:
    from flwr.app import Context, Message, RecordDict

    from .settings import NodeSettings

#: Flower's logger: its console handler is what the SuperNode's operator sees.
log = logging.getLogger("flwr").getChild("r2dde.node")

_LOCAL_PATH = re.compile(r"(?<![\w:/.-])(?:[A-Za-z]:)?[\w.-]*(?:[\\/][^\s\\/:'\"()]+){2,}[\\/]?")


def without_local_paths(text: str) -> str:
    """``/srv/ft/keys/node.key`` → ``node.key``: the partner's folders are not the Region's business."""
    return _LOCAL_PATH.sub(lambda m: m.group(0).rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1], text)


class NodeDeclined(Exception):
    """Raised anywhere in the node's round; becomes an error reply naming the site and the rule."""

    kind: DeclineKind = "declined"

    def __init__(self, rule: str, detail: str, public: str | None = None) -> None:
        super().__init__(f"{rule}: {detail}")
        self.rule = rule
        self.detail = detail
        self.public = public

    def decline(self, site: str) -> Decline:
        """What the Region reads: no cell value, no local path, on one line."""
        text = without_local_paths(self.public if self.public is not None else self.detail)
        return Decline(site, self.kind, self.rule, " ".join(text.split()))

    def log_locally(self, site: str) -> None:
        """Every refusal is seen where it happens, with everything the partner needs to fix it."""
        log.warning("site %s %s — rule %s: %s", site, self.kind, self.rule, self.detail)


class NodeDataError(NodeDeclined):
    """The site's own data did not pass the schema: a data error to fix at home, not a refusal."""

    kind: DeclineKind = "data error"


class NodeFailed(NodeDeclined):
    """Something broke at the node (a bug, an outage): neither a refusal nor the partner's data."""

    kind: DeclineKind = "failed"


def answer_or_decline(
    msg: Message,
    context: Context,
    answer: Callable[[NodeSettings], RecordDict],
    bad_message: tuple[type[Exception], ...] = (),
) -> Message:
    """Every message handler's reply: ``answer(settings)``'s records, or the site's ``Decline``.

    A rule's refusal names its rule; bad node settings, instructions or ``bad_message`` errors are
    ``node.config``; anything else is ``node.internal``, with the details in the node's log only.
    """
    from flwr.app import Message

    from .settings import NodeSettingsError, resolve

    site = str(context.node_config.get("site", f"partition {context.node_config.get('partition-id', '?')}"))
    refusals: tuple[type[Exception], ...] = (NodeDeclined, NodeSettingsError, InstructionError, *bad_message)
    try:
        settings = resolve(context.node_config)
        site = settings.site
        return Message(answer(settings), reply_to=msg)
    except refusals as exc:
        declined = exc if isinstance(exc, NodeDeclined) else NodeDeclined("node.config", str(exc))
        declined.log_locally(site)  # the partner sees every refusal in its own log, with its rule
    except Exception:  # a bug or an outage: the details stay in the node's log, not in the Region's
        log.exception("site %s: unexpected error in this message", site)
        declined = NodeFailed(
            "node.internal", "an unexpected error at the node; the node's log has the details"
        )
    return Message(declined.decline(site).to_error(), reply_to=msg)
