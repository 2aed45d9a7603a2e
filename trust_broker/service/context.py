"""What every endpoint needs: the store, the loaded policies, the broker's key, the settings."""

from __future__ import annotations

import datetime as dt
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from policies import Purpose, SitePolicy, load_purposes, load_site_policies
from policies.digest import policy_digest
from trust_broker.accounting import LedgerAccountant
from trust_broker.audit.chain import sign_head
from trust_broker.auth.verification import RequestVerifier
from trust_broker.grants import DPBounds, Grant
from trust_broker.provision.keys import BROKER_KID, ProvisionedFolder, encode_public_key
from trust_broker.store.factory import open_store
from trust_broker.store.records import Participant
from trust_broker.store.repository import BrokerStore

MIB = 1024 * 1024


def check_private_files(folder: ProvisionedFolder) -> None:
    """Refuse to start on keys others can read or a participants file others can write.

    Whoever can read ``broker.key`` signs grants and receipts; whoever can write ``participants.json``
    (or replace it: its folder) gets any role at the next start. ``PermissionError`` names the file.
    """
    key = folder.broker_key_path
    mode = stat.S_IMODE(key.stat().st_mode)
    if mode & 0o077:
        raise PermissionError(
            f"{key}: the broker key is readable or writable by others (mode {mode:04o}); chmod 600 it"
        )
    for path in (folder.participants_path, folder.participants_path.parent):
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o022:
            raise PermissionError(
                f"{path}: the participants file or its folder is writable by others (mode {mode:04o}); "
                "anyone who can write it gets a role at the next start"
            )


@dataclass(frozen=True)
class BrokerSettings:
    """Operating limits; defaults are the production ones."""

    grant_ttl: dt.timedelta = dt.timedelta(days=7)
    reservation_ttl: dt.timedelta = dt.timedelta(minutes=30)
    dp_bounds: DPBounds = field(
        default_factory=lambda: DPBounds(
            min_noise_multiplier=0.3, max_grad_norm_min=0.01, max_grad_norm_max=10.0, max_sample_rate=1.0
        )
    )
    max_body_bytes: int = MIB
    max_page: int = 5000
    sign_heads_every: int = 1


@dataclass
class BrokerContext:
    store: BrokerStore
    purposes: dict[str, Purpose]
    site_policies: dict[str, SitePolicy]
    broker_key: Ed25519PrivateKey
    broker_kid: str = BROKER_KID
    settings: BrokerSettings = field(default_factory=BrokerSettings)
    database_name: str = "unknown"
    verifier: RequestVerifier = field(init=False)
    # Issued grants by study id: their claims never change (a revocation changes the study's status,
    # which the store checks in every reservation's transaction).
    issued_grants: dict[str, Grant] = field(default_factory=dict, init=False)
    # Grant decisions of this process, one at a time: each reads what the others hold.
    grant_lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self.verifier = RequestVerifier(self.store.participant, self.store.remember_nonce)

    def close(self) -> None:
        """Stop the ledger's writer and release database connections (the embedded broker and tests
        stop cleanly)."""
        self.store.close()
        engine = getattr(self.store, "engine", None)
        if engine is not None:
            engine.dispose()

    @property
    def broker_public_key(self) -> Ed25519PublicKey:
        return self.broker_key.public_key()

    def policy_digests(self) -> dict[str, str]:
        """Digest of every loaded document, as printed at start and shown by /v1/health."""
        digests = {f"purpose:{k}": policy_digest(v) for k, v in sorted(self.purposes.items())}
        digests.update({f"site:{k}": policy_digest(v) for k, v in sorted(self.site_policies.items())})
        return digests

    @classmethod
    def from_config(
        cls,
        db_url: str,
        keys_dir: Path,
        policies_dir: Path | None = None,
        *,
        settings: BrokerSettings | None = None,
        prepare: bool = True,
    ) -> BrokerContext:
        """Open the database, load the broker key, policies and participants.

        ``prepare`` migrates the schema and registers the participants of ``keys_dir``; worker
        processes of a multi-worker server skip it (their parent did it once).
        """
        settings = settings or BrokerSettings()
        folder = ProvisionedFolder.open(Path(keys_dir))
        check_private_files(folder)
        broker_key = folder.broker_private_key()
        purposes = load_purposes(Path(policies_dir) / "purposes" if policies_dir else None)
        sites = load_site_policies(Path(policies_dir) / "sites" if policies_dir else None)
        accountant = LedgerAccountant()
        accountant.warm_up()  # import the accountant's numeric stack now, not on the first reserve
        store = open_store(
            db_url,
            accountant,
            head_signer=lambda event: sign_head(broker_key, event, BROKER_KID),
            sign_heads_every=settings.sign_heads_every,
            broker_kid=BROKER_KID,
            migrate=prepare,
        )
        for record in folder.participants() if prepare else ():
            store.register_participant(
                Participant(
                    kid=record.kid,
                    role=record.role,
                    site=record.site,
                    public_key=encode_public_key(record.public_key),
                ),
                actor=BROKER_KID,
            )
        return cls(
            store=store,
            purposes=purposes,
            site_policies=sites,
            broker_key=broker_key,
            settings=settings,
            database_name=store.database_name,
        )
