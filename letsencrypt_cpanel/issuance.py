"""Names -> order -> challenges -> certificate -> record -> install, for one user's vhost.

Runs as the user: in the cPanel CGI directly, or in a worker that root started (impersonate.py).
The whole issue holds the user's lock, so a click and a renewal never order twice or overwrite
each other's record. The certificate is saved in the record the moment it exists (state
`issued`), before cPanel is asked to install it: if the install fails, the next attempt installs
the saved certificate instead of ordering a new one (which would spend the CA's rate limits).

How each certificate is ordered (CA, challenge method, preferred chain) is an `OrderPlan`
(issue_plan.py), remembered in the record for renewals. A CA that requires External Account
Binding gets it from root (eab.py): the HMAC key never enters this process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .acme_client import AcmeAccount, AcmeSession, Binder, connect
from .certificates import find_vhost, host_for, vhost_for_names
from .config import KEY_TYPES, Settings
from .cpanel.models import Vhost
from .cpanel.uapi import UserAPI
from .eab import RootBinder
from .errors import (
    CpanelAPIError,
    Error,
    InstallFailed,
    NameRefused,
)
from .issue_budget import RootBudget
from .issue_plan import (
    AUTO,
    OrderPlan,
    choose_chain,
    replaces_id,
    revocation_code,
)
from .keys import (
    certificate_facts,
    generate_private_key,
    prefetch_private_key,
    split_fullchain,
)
from .names import usable_email
from .order_attempts import obtain_certificate
from .record_format import (
    STATE_INSTALLED,
    STATE_ISSUED,
    AcmeAccountEntry,
    CertificateEntry,
    JSONValue,
)
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
    challenge_method: str = ""
    dry_run: bool = False  # issued from the staging CA; nothing saved or installed

    def summary(self) -> dict[str, JSONValue]:
        return {
            "vhost": self.vhost,
            "names": list[JSONValue](self.names),
            "not_after": self.not_after,
            "cert_id": self.cert_id,
            "reused_saved": self.reused_saved,
            "challenge_method": self.challenge_method,
            "dry_run": self.dry_run,
        }


class Issuer:
    """One user's certificates: issue, reinstall, remove (and revoke). Constructing does no I/O.

    `binder`: how to get an External Account Binding from root (default: root's socket);
    `budget`: where `issue` reserves what its order may spend (default: root's socket)."""

    def __init__(
        self,
        api: UserAPI,
        store: RecordStore,
        settings: Settings,
        *,
        contact_email: str | None = None,
        progress: Progress | None = None,
        binder: Binder | None = None,
        budget: RootBudget | None = None,
    ) -> None:
        self.api = api
        self.store = store
        self.settings = settings
        self.contact_email = usable_email(contact_email)
        self.progress: Progress = progress or (lambda _step: None)
        self.binder: Binder = binder or RootBinder(settings.root_socket)
        self.budget = budget or RootBudget(settings.root_socket)
        self._sessions: dict[str, AcmeSession] = {}

    def issue(
        self,
        raw_names: Sequence[str],
        key_type: str | None = None,
        *,
        challenge: str = AUTO,
        directory: str = "",
        preferred_chain: str | None = None,
        dry_run: bool = False,
    ) -> IssueResult:
        """Issue and install a certificate for `raw_names`, which must all be names of one vhost
        of this user (as cPanel's `domains_data` says; `*.name` for a name of it too).

        `challenge`: "http-01", "dns-01" or AUTO; `directory`: the CA (default: the server's);
        `preferred_chain`: a root's common name (default: the server's setting). `dry_run`:
        order from the staging CA, save only the staging account, install nothing. Raises
        NameRefused before any ACME request; AcmeError/SelfCheckFailed from the CA side;
        InstallFailed when the certificate was issued and saved but cPanel did not install it;
        BudgetDenied (a RateLimited) when root's rate-limit budget has no room for the order.
        """
        kind = key_type or self.settings.default_key_type
        if kind not in KEY_TYPES:
            raise NameRefused(
                "", f"unknown key type {kind!r}; choose one of {', '.join(KEY_TYPES)}"
            )
        chain = self.settings.preferred_chain if preferred_chain is None else preferred_chain
        plan = OrderPlan(
            directory=self.settings.staging_directory
            if dry_run
            else directory or self.settings.acme_directory,
            challenge=challenge,
            preferred_chain=chain,
            dry_run=dry_run,
        )
        # The key is made in a thread while cPanel and the CA are asked (bench/: ~50 ms).
        prefetch_private_key(kind)
        self.progress("checking names")
        vhost, names = vhost_for_names(
            raw_names,
            self.api.domains_data(),
            self.settings.max_names_per_certificate,
            allow_wildcard=True,
        )
        plan.first_method(names)  # a wildcard with http-01 asked is refused before the CA
        with self.store.locked() as txn:
            saved = txn.record.certificates.get(vhost.domain)
            if (
                not dry_run
                and saved is not None
                and self._installable_again(saved, names, kind, plan)
            ):
                self.progress("installing the saved certificate")
                return self.install(txn, saved, reused=True)
            entry = self._budgeted_order(txn, vhost, names, kind, plan)
            if dry_run:
                return IssueResult(
                    vhost.domain,
                    list(entry.names),
                    entry.not_after,
                    "",
                    False,
                    entry.challenge_method,
                    dry_run=True,
                )
            return self.install(txn, entry, reused=False)

    def _budgeted_order(
        self, txn: RecordTxn, vhost: Vhost, names: list[str], kind: str, plan: OrderPlan
    ) -> CertificateEntry:
        """`order`, within root's rate-limit budget (issue_budget.py; a dry run goes to the
        staging CA, which root does not count)."""
        if plan.dry_run:
            return self.order(txn, vhost, names, kind, plan=plan)
        had_account = plan.directory in txn.record.accounts
        ticket = self.budget.reserve(plan.directory, names, new_account=not had_account)
        try:
            entry = self.order(txn, vhost, names, kind, plan=plan)
        except BaseException as exc:
            created = not had_account and plan.directory in txn.record.accounts
            # Anything but our errors (a bug, Ctrl-C) may have come after the CA issued:
            # counted as issued, the safe side.
            ticket.settle(account_created=created, error=exc if isinstance(exc, Error) else None)
            raise
        ticket.settle(account_created=not had_account)
        return entry

    def _installable_again(
        self, saved: CertificateEntry, names: list[str], kind: str, plan: OrderPlan
    ) -> bool:
        return (
            saved.state == STATE_ISSUED
            and sorted(saved.names) == sorted(names)
            and saved.key_type == kind
            and saved.directory == plan.directory
            and saved.not_after - time.time() > _MIN_REMAINING_TO_REINSTALL
        )

    def session(self, txn: RecordTxn, directory: str, *, account: bool = True) -> AcmeSession:
        """A session with `directory`, its account checked or registered (and saved in the
        record when new or changed). Sessions are kept for this Issuer's lifetime."""
        record = txn.record
        known = record.accounts.get(directory)
        session = self._sessions.get(directory)
        if session is None:
            self.progress("contacting the certificate authority")
            session = connect(
                directory,
                ca_bundle=self.settings.acme_ca_bundle or None,
                account=AcmeAccount(directory, known.key_pem, known.url)
                if known and known.key_pem and known.url
                else None,
            )
            self._sessions[directory] = session
        if account and not session.account_checked:
            got = session.ensure_account(self.contact_email, self.binder)
            if known is None or (known.key_pem, known.url) != (got.key_pem, got.url):
                record.accounts[directory] = AcmeAccountEntry(
                    directory=directory,
                    key_pem=got.key_pem,
                    url=got.url,
                    email=self.contact_email or "",
                )
                txn.save()
        return session

    def order(
        self,
        txn: RecordTxn,
        vhost: Vhost,
        names: list[str],
        kind: str,
        key_pem: str = "",
        *,
        plan: OrderPlan | None = None,
    ) -> CertificateEntry:
        """Order a certificate for `names` on `vhost` (with `key_pem`, or a new key of `kind`)
        and save it in the record as `issued`, under the caller's lock. A failure is recorded
        on the vhost's previous entry (attempt time, count, reason) and raised. A dry run's
        entry is returned, not saved."""
        plan = plan or OrderPlan(self.settings.acme_directory)
        record = txn.record
        session = self.session(txn, plan.directory)
        self.progress("making the key")
        key = key_pem or generate_private_key(kind)
        previous = record.certificates.get(vhost.domain)
        replaces = replaces_id(previous, plan, session.offers_renewal_info)
        now = int(time.time())
        try:
            issued, method = obtain_certificate(
                session,
                self.api,
                self.settings,
                vhost,
                names,
                key,
                plan,
                replaces=replaces,
                progress=self.progress,
                home=self.store.home,
            )
        except Error as exc:
            if previous is not None and not plan.dry_run:
                previous.last_attempt = now
                previous.failures += 1
                previous.last_error = str(exc)
                txn.save()
            raise
        fullchain, chains = choose_chain(
            issued.fullchain_pem, issued.alternate_fullchains, plan.preferred_chain
        )
        leaf, chain = split_fullchain(fullchain)
        facts = certificate_facts(leaf)
        entry = CertificateEntry(
            vhost=vhost.domain,
            names=list(names),
            key_pem=key,
            key_type=kind,
            cert_pem=leaf,
            chain_pem=chain,
            not_before=int(facts.not_before.timestamp()),
            not_after=int(facts.not_after.timestamp()),
            challenge_method=method,
            order_url=issued.order_url,
            directory=plan.directory,
            state=STATE_ISSUED,
            issued_at=now,
            last_attempt=now,
            preferred_chain=plan.preferred_chain,
            alternate_chains=chains if len(chains) > 1 else {},
        )
        if plan.dry_run:
            return entry
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
        return IssueResult(
            entry.vhost,
            list(entry.names),
            entry.not_after,
            entry.cert_id,
            reused,
            entry.challenge_method,
        )

    def reinstall(self, vhost_name: str) -> IssueResult:
        """Install the saved certificate of a vhost again (e.g. after someone removed it)."""
        vhost = find_vhost(self.api.domains_data(), vhost_name)
        with self.store.locked() as txn:
            entry = txn.record.certificates.get(vhost.domain)
            if entry is None or not entry.cert_pem:
                raise NotManaged(vhost.domain)
            return self.install(txn, entry, reused=True)

    def remove(self, vhost_name: str, *, revoke: bool = False, reason: str = "unspecified") -> None:
        """Take the plugin's certificate off a vhost, delete it and its key from the user's SSL
        storage, and forget it. A certificate someone else installed there is left alone.

        `revoke`: first revoke it at its CA (RFC 8555 §7.6) with `reason` (an RFC 5280 reason
        name, issue_plan.REVOCATION_REASONS); if the CA refuses, nothing is removed."""
        code = revocation_code(reason) if revoke else 0
        vhost = find_vhost(self.api.domains_data(), vhost_name)
        with self.store.locked() as txn:
            entry = txn.record.certificates.get(vhost.domain)
            if entry is None:
                raise NotManaged(vhost.domain)
            if revoke and entry.cert_pem:
                self.progress("revoking")
                directory = entry.directory or self.settings.acme_directory
                self.session(txn, directory).revoke(entry.cert_pem, code)
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
