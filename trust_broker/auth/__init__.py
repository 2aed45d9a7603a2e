"""RFC 9421 HTTP Message Signatures between participants and the broker (Ed25519, nonces, digests)."""

from trust_broker.auth.signing import SignedRequestAuth
from trust_broker.auth.verification import AuthError, Caller, RequestVerifier

__all__ = ["AuthError", "Caller", "RequestVerifier", "SignedRequestAuth"]
