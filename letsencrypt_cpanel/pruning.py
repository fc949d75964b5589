"""Old certificates and keys the plugin left in the user's SSL storage, removed a few at a time.

Runs as the user (in the renewal worker), under the user's lock. Issuance notes the cPanel ids
of what a new certificate replaces in the entry's `superseded_ids`; this removes those that
nothing uses any more (not installed on any vhost, not the current certificate or key of any
entry), and drops from the note the ids that are gone or still in use (a renewal keeps its key,
so the key's id usually is). Anything cPanel refuses stays noted and is tried at the next cycle.
"""

from __future__ import annotations

from .cpanel.uapi import UserAPI
from .errors import CpanelAPIError
from .record_format import JSONValue
from .store import RecordStore

SUPERSEDED = "superseded_ids"
# Deletions per user per cycle: a backlog (e.g. after an upgrade) drains over a few cycles.
DEFAULT_LIMIT = 10


def prune_superseded(api: UserAPI, store: RecordStore, *, limit: int = DEFAULT_LIMIT) -> int:
    """Delete up to `limit` superseded certificates and keys; return how many went.

    Raises RecordError (the record) or CpanelAPIError (listing the storage failed)."""
    with store.locked() as txn:
        noted: dict[str, list[str]] = {}
        for vhost, entry in txn.record.certificates.items():
            value = entry.extras.get(SUPERSEDED)
            if isinstance(value, list):
                noted[vhost] = list(dict.fromkeys(i for i in value if isinstance(i, str)))
        if not any(noted.values()):
            return 0
        in_use = {h.certificate.id for h in api.installed_hosts()}
        for entry in txn.record.certificates.values():
            in_use.update(i for i in (entry.cert_id, entry.key_id) if i)
        certs = {c.id for c in api.list_certs()}
        keys = {k.id for k in api.list_keys()}
        deleted = 0
        for vhost, ids in noted.items():
            remaining: list[str] = []
            for item in ids:
                if item in in_use or (item not in certs and item not in keys):
                    continue  # still used (a renewal keeps its key) or already gone: forget it
                if deleted >= limit:
                    remaining.append(item)
                    continue
                try:
                    if item in certs:
                        api.delete_cert(item)
                    else:
                        api.delete_key(item)
                except CpanelAPIError:
                    remaining.append(item)
                    continue
                deleted += 1
            entry = txn.record.certificates[vhost]
            if remaining:
                entry.extras[SUPERSEDED] = list[JSONValue](remaining)
            else:
                entry.extras.pop(SUPERSEDED, None)
        txn.save()
        return deleted
