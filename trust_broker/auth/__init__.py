"""RFC 9421 HTTP Message Signatures between participants and the broker (Ed25519, nonces, digests).

``signing`` is the participants' side (the broker's client); ``verification`` is the service's and
reads the participant store. The package imports neither, so that a node importing the client
does not load the broker's store.
"""
