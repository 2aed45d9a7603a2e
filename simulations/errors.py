"""One readable line (or a few) for each failure a simulated study can meet."""

from __future__ import annotations


def describe(exc: BaseException) -> str:
    from coordinator.grant import GrantRequestError
    from trust_broker.client import BrokerError, StudyRefused

    if isinstance(exc, GrantRequestError):
        return str(exc)
    if isinstance(exc, StudyRefused):
        reasons = "\n".join(f"  - rule {r.rule} ({r.subject}): {r.detail}" for r in exc.reasons)
        return f"the trust broker refused the study:\n{reasons}"
    if isinstance(exc, BrokerError):
        return f"trust broker: {exc}"
    if isinstance(exc, (ValueError, OSError, FileExistsError, KeyError)):
        return f"{type(exc).__name__}: {exc}"
    return f"{type(exc).__name__}: {exc} (see the log above for details)"
