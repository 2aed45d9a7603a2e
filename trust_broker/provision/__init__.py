"""Key provisioning for a study's participants (broker, coordinator, nodes, auditor, admin)."""

from trust_broker.provision.keys import (
    ParticipantRecord,
    ProvisionedFolder,
    load_participants,
    load_private_key,
    load_public_key,
    provision,
    register_provisioner,
)

__all__ = [
    "ParticipantRecord",
    "ProvisionedFolder",
    "load_participants",
    "load_private_key",
    "load_public_key",
    "provision",
    "register_provisioner",
]
