"""A node's refusal to take part, with the rule that refused — sent back instead of an update."""

from __future__ import annotations


class NodeDeclined(Exception):
    """Raised anywhere in the node's round; becomes an error reply naming the site and the rule."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(f"{rule}: {detail}")
        self.rule = rule
        self.detail = detail

    def reason(self, site: str) -> str:
        return f"site {site} declined — rule {self.rule}: {self.detail}"
