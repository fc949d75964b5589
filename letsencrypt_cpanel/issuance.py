"""Names -> order -> challenges -> certificate -> record -> install, for one user's vhost.

Runs as the user: in the cPanel CGI directly, or in a worker that root started (impersonate.py).
The whole issue holds the user's lock, so a click and a renewal never order twice or overwrite
each other's record. The certificate is saved in the record the moment it exists (state
`issued`), before cPanel is asked to install it: if the install fails, the next attempt installs
the saved certificate instead of ordering a new one (which would spend the CA's rate limits).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .acme_client import AcmeAccount, connect
from .certificates import find_vhost, host_for, vhost_for_names
from .challenges import WebrootSolver
from .config import KEY_TYPES, Settings
from .cpanel.models import Vhost
from .cpanel.uapi import UserAPI
from .errors import CpanelAPIError, Error, InstallFailed, NameRefused
from .keys import certificate_facts, generate_private_key
from .names import usable_email
from .record_format import (
    STATE_INSTALLED,
    STATE_ISSUED,
    AcmeAccountEntry,
    CertificateEntry,
    JSONValue,
)
from .selfcheck import SelfCheck
from .store import RecordStore, RecordTxn

Progress = Callable[[str], None]

# A saved certificate with less than this left is not worth installing: order a new one.
_MIN_REMAINING_TO_REINSTALL = 24 * 3600


class NotManaged(Error):
    def __init__(self, vhost: str) -> None:
        self.vhost = vhost
        super().__init__(f"{vhost} has no certificate from this plugin.")


@dataclass(frozen=True)
class IssueResult:
    vhost: str
    names: list[str]
    not_after: int
    cert_id: str
    reused_saved: bool  # the saved certificate was installed; nothing was ordered

    def summary(self) -> dict[str, JSONValue]:
        return {
            "vhost": self.vhost,
            "names": list[JSONValue](self.names),
            "not_after": self.not_after,
            "cert_id": self.cert_id,
            "reused_saved": self.reused_saved,
        }


class Issuer:
    """One user's certificates: issue, reinstall, remove. Constructing does no I/O."""

    def __init__(
        self,
        api: UserAPI,
        store: RecordStore,
        settings: Settings,
        *,
        contact_email: str | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.api = api
        self.store = store
        self.settings = settings
        self.contact_email = usable_email(contact_email)
        self.progress: Progress = progress or (lambda _step: None)

    def issue(self, raw_names: Sequence[str], key_type: str | None = None) -> IssueResult:
        """Issue and install a certificate for `raw_names`, which must all be names of one vhost
        of this user (as cPanel's `domains_data` says). Raises NameRefused before any ACME
        request; AcmeError/SelfCheckFailed from the CA side; InstallFailed when the certificate
        was issued and saved but cPanel did not install it."""
        kind = key_type or self.settings.default_key_type
        if kind not in KEY_TYPES:
            raise NameRefused(
                "", f"unknown key type {kind!r}; choose one of {', '.join(KEY_TYPES)}"
            )
        self.progress("checking names")
        vhost, names = vhost_for_names(
            raw_names, self.api.domains_data(), self.settings.max_names_per_certificate
        )
        with self.store.locked() as txn:
            saved = txn.record.certificates.get(vhost.domain)
            if saved is not None and self._installable_again(saved, names, kind):
                self.progress("installing the saved certificate")
                return self.install(txn, saved, reused=True)
            entry = self.order(txn, vhost, names, kind)
            return self.install(txn, entry, reused=False)

    def _installable_again(self, saved: CertificateEntry, names: list[str], kind: str) -> bool:
        return (
            saved.state == STATE_ISSUED
            and sorted(saved.names) == sorted(names)
            and saved.key_type == kind
            and saved.directory == self.settings.acme_directory
            and saved.not_after - time.time() > _MIN_REMAINING_TO_REINSTALL
        )

    def order(
        self, txn: RecordTxn, vhost: Vhost, names: list[str], kind: str, key_pem: str = ""
    ) -> CertificateEntry:
        """Order a certificate for `names` on `vhost` (with `key_pem`, or a new key of `kind`)
        and save it in the record as `issued`, under the caller's lock. A failure is recorded
        on the vhost's previous entry (attempt time, count, reason) and raised."""
        directory = self.settings.acme_directory
        record = txn.record
        known = record.accounts.get(directory)
        self.progress("contacting the certificate authority")
        session = connect(
            directory,
            ca_bundle=self.settings.acme_ca_bundle or None,
            account=AcmeAccount(directory, known.key_pem, known.url)
            if known and known.key_pem and known.url
            else None,
        )
        account = session.ensure_account(self.contact_email)
        if known is None or (known.key_pem, known.url) != (account.key_pem, account.url):
            record.accounts[directory] = AcmeAccountEntry(
                directory=directory,
                key_pem=account.key_pem,
                url=account.url,
                email=self.contact_email or "",
            )
            txn.save()
        self.progress("making the key")
        key = key_pem or generate_private_key(kind)
        solver = WebrootSolver(
            {name: Path(vhost.docroot) for name in names},
            self_check=SelfCheck(
                resolvers=self.settings.resolvers,
                http_port=self.settings.http_port,
                https_port=self.settings.https_port,
            ),
        )
        previous = record.certificates.get(vhost.domain)
        now = int(time.time())
        try:
            issued = session.obtain_certificate(
                key, names, solver, deadline=self.settings.order_deadline, progress=self.progress
            )
        except Error as exc:
            if previous is not None:
                previous.last_attempt = now
                previous.failures += 1
                previous.last_error = str(exc)
                txn.save()
            raise
        facts = certificate_facts(issued.cert_pem)
        entry = CertificateEntry(
            vhost=vhost.domain,
            names=list(names),
            key_pem=key,
            key_type=kind,
            cert_pem=issued.cert_pem,
            chain_pem=issued.chain_pem,
            not_before=int(facts.not_before.timestamp()),
            not_after=int(facts.not_after.timestamp()),
            challenge_method="http-01",
            order_url=issued.order_url,
            directory=directory,
            state=STATE_ISSUED,
            issued_at=now,
            last_attempt=now,
        )
        if previous is not None:
            # The ids of what this replaces, so a later cycle can prune it from SSL storage.
            earlier = previous.extras.get("superseded_ids")
            kept = [i for i in earlier if isinstance(i, str)] if isinstance(earlier, list) else []
            entry.extras["superseded_ids"] = [
                *kept,
                *[i for i in (previous.cert_id, previous.key_id) if i],
            ]
        record.certificates[vhost.domain] = entry
        # Saved before cPanel is asked: if the install fails, this copy is installed next time.
        txn.save()
        return entry

    def install(self, txn: RecordTxn, entry: CertificateEntry, *, reused: bool) -> IssueResult:
        """Install the entry's certificate on its vhost; state `installed` and cPanel's ids
        saved. Raises InstallFailed (the entry stays `issued`, to be installed next time)."""
        self.progress("installing")
        try:
            result = self.api.install_ssl(
                entry.vhost, entry.cert_pem, entry.key_pem, entry.chain_pem
            )
        except CpanelAPIError as exc:
            entry.failures += 1
            entry.last_attempt = int(time.time())
            entry.last_error = str(exc)
            txn.save()
            raise InstallFailed(
                f"The certificate for {entry.vhost} was issued and saved, but cPanel did not "
                f"install it ({exc}). Try Reinstall: the saved certificate is used, "
                "nothing is ordered again."
            ) from exc
        entry.state = STATE_INSTALLED
        entry.cert_id = result.cert_id
        entry.key_id = result.key_id
        entry.failures = 0
        entry.last_error = ""
        txn.save()
        return IssueResult(entry.vhost, list(entry.names), entry.not_after, entry.cert_id, reused)

    def reinstall(self, vhost_name: str) -> IssueResult:
        """Install the saved certificate of a vhost again (e.g. after someone removed it)."""
        vhost = find_vhost(self.api.domains_data(), vhost_name)
        with self.store.locked() as txn:
            entry = txn.record.certificates.get(vhost.domain)
            if entry is None or not entry.cert_pem:
                raise NotManaged(vhost.domain)
            return self.install(txn, entry, reused=True)

    def remove(self, vhost_name: str) -> None:
        """Take the plugin's certificate off a vhost, delete it and its key from the user's SSL
        storage, and forget it. A certificate someone else installed there is left alone."""
        vhost = find_vhost(self.api.domains_data(), vhost_name)
        with self.store.locked() as txn:
            entry = txn.record.certificates.get(vhost.domain)
            if entry is None:
                raise NotManaged(vhost.domain)
            host = host_for(vhost, self.api.installed_hosts())
            ours = host is not None and (
                (entry.cert_id and host.certificate.id == entry.cert_id)
                or "".join(host.certificate_pem.split()) == "".join(entry.cert_pem.split())
            )
            if ours:
                self.api.delete_ssl(vhost.domain)
            if entry.cert_id:
                self.api.delete_cert(entry.cert_id)
            if entry.key_id and not any(
                e.key_id == entry.key_id
                for k, e in txn.record.certificates.items()
                if k != vhost.domain
            ):
                self.api.delete_key(entry.key_id)
            del txn.record.certificates[vhost.domain]
            txn.save()
