"""What both sides sign: method, path, query, and the body through its Content-Digest (RFC 9530)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any

SIGNATURE_TAG = "r2dde-broker"
SIGNATURE_LABEL = "r2dde"
COVERED_COMPONENTS: tuple[str, ...] = ("@method", "@path", "@query")
# The authority is not covered: behind a reverse proxy the broker cannot know the host the
# client saw. Method, path, query and the body digest are what the authorization depends on.
# A signature is accepted while its ``created`` is within ± MAX_CLOCK_SKEW_SECONDS of the broker's
# clock: the verifier adds the skew to the age, so the age allowed beyond it is 0 (before issue 11 both
# were 300 s, and a signature 600 s old passed).
MAX_CLOCK_SKEW_SECONDS = 300
MAX_AGE_SECONDS = 0
SIGNATURE_BASE_URL = "http://broker"


class ReadOnlyHeaders:
    """Header view the verifier reads; it keeps repeated lines as the wire had them."""

    def __init__(self, raw: Iterable[tuple[str, str]]) -> None:
        self._raw = list(raw)

    def items(self) -> Iterable[tuple[str, str]]:
        return list(self._raw)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(name for name, _ in self._raw))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(field.lower() == name.lower() for field, _ in self._raw)

    def __setitem__(self, name: str, value: str) -> None:
        raise TypeError("incoming headers are read-only")

    def __delitem__(self, name: str) -> None:
        raise TypeError("incoming headers are read-only")


@dataclass
class MessageView:
    """The request as ``http_message_signatures`` reads it: method, absolute URL, headers."""

    method: str
    url: str
    headers: MutableMapping[str, str] | Any


def url_for_signature(raw_path: str, query: str) -> str:
    """Both ends sign the same URL: a fixed origin plus the path and query as sent on the wire."""
    return SIGNATURE_BASE_URL + (raw_path or "/") + (f"?{query}" if query else "")
