"""Root's way of doing something for one user: a WHM user session and a worker as that user.

Root never opens a file in the user's home. It asks WHM for a cPanel session for the user, then
forks a worker that drops to the user's uid (impersonate.py); the worker logs in with the session
(over the pinned loopback TLS), does the job with the same code the cPanel page runs, logs out,
and sends back a JSON summary, which root treats as untrusted. The WHM token is not handed to the
job; the worker is non-dumpable, so the user cannot read what the fork copied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .config import Settings, load_secrets
from .cpanel.https import build_whm_api
from .cpanel.models import Account
from .cpanel.session import user_session
from .cpanel.tls import PinnedTLS, load_pinned_tls
from .cpanel.uapi import UserAPI
from .cpanel.whm import WhmAPI
from .impersonate import JSONValue, run_as_user
from .store import RecordStore
from .system_users import SystemUser, lookup_user, supplementary_gids


@dataclass(frozen=True)
class JobContext:
    """What a job running as the user gets."""

    api: UserAPI
    store: RecordStore
    user: SystemUser
    account: Account
    settings: Settings


Job = Callable[[JobContext], JSONValue]


@dataclass
class RootSide:
    """Root's connections, built once per command or daemon cycle."""

    settings: Settings
    whm: WhmAPI
    tls: PinnedTLS

    @classmethod
    def build(cls, settings: Settings) -> RootSide:
        tls = load_pinned_tls(settings)
        return cls(settings, build_whm_api(settings, load_secrets(settings), tls), tls)

    def run_for_user(self, user: str, job: Job, *, timeout: float | None = None) -> JSONValue:
        """Run `job` as `user` through a fresh cPanel session; return its summary.

        Raises UserRefused (unknown, root or system user), CpanelAPIError (WHM refused the
        session), WorkerError/JobFailed/WorkerTimeout from the worker."""
        settings = self.settings
        system_user = lookup_user(settings, user)
        account = self.whm.accountsummary(user)
        session = self.whm.create_user_session(user, "cpaneld")
        pin = self.tls.cert_pem

        def inside() -> JSONValue:
            with user_session(
                session,
                PinnedTLS.from_pem(pin),
                host=settings.cpanel_host,
                port=settings.cpanel_port,
                timeout=settings.cpanel_timeout,
            ) as api:
                return job(
                    JobContext(api, RecordStore(system_user.home), system_user, account, settings)
                )

        return run_as_user(
            system_user,
            inside,
            timeout=timeout or settings.worker_timeout,
            groups=supplementary_gids(settings, user),
        )
