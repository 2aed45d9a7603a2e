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
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return f"{exc.filename}: no such file"
    if isinstance(exc, OSError):
        return f"{exc.filename or 'a file'}: {exc.strerror or exc}"
    if isinstance(exc, KeyError):
        return f"missing entry {exc.args[0]!s}" if exc.args else "a missing entry"
    if isinstance(exc, ValueError):
        return str(exc)
    # No class name for people (issue 12): what failed, and where the details are.
    return f"an unexpected error stopped the study ({exc})"
