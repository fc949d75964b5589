"""One order's challenges, tried the way the plan says, with dns-01 standing in for http-01.

When http-01 fails before the CA is asked (our self-check, or the token file cannot be
written), the plan leaves the method open, and every name's zone is on this server and is the
one the world asks, the order is retried with dns-01 through the user's zones; the CA spent no
validation on the first try. If the zone's records are not served within a short wait either,
both failures are reported, http-01's first.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .acme_client import AcmeSession, IssuedCertificate
from .challenges import DNS01, HTTP01
from .config import Settings
from .cpanel.models import Vhost
from .cpanel.uapi import UserAPI
from .dns_challenge import CpanelDnsSolver
from .dns_wait import PROPAGATION
from .errors import ChallengeFailed, SelfCheckFailed
from .issue_plan import OrderPlan, build_solver, choose_profile, zones_all_here


def obtain_certificate(
    session: AcmeSession,
    api: UserAPI,
    settings: Settings,
    vhost: Vhost,
    names: list[str],
    key: str,
    plan: OrderPlan,
    *,
    replaces: str,
    progress: Callable[[str], None],
    home: Path | None = None,
) -> tuple[IssuedCertificate, str]:
    """The certificate and the challenge method that got it. Raises what
    `AcmeSession.obtain_certificate` raises."""
    method = plan.first_method(names)

    def attempt(how: str, fallback: bool = False) -> IssuedCertificate:
        solver = build_solver(
            how,
            api,
            settings,
            vhost,
            names,
            fallback=fallback,
            home=home,
            prechecked=plan.prechecked,
        )
        return session.obtain_certificate(
            key,
            names,
            solver,
            deadline=settings.order_deadline,
            progress=progress,
            replaces=replaces,
            profile=choose_profile(settings.acme_profile, session.profiles),
            alternates=True,
        )

    try:
        return attempt(method), method
    except ChallengeFailed as exc:
        # Only failures seen before the CA was asked: a validation the CA failed is not
        # tried again here (it counts against the CA's failed-validation limit).
        before_ca = isinstance(exc, SelfCheckFailed) or exc.kind == "webroot"
        if method != HTTP01 or not plan.may_fall_back or not before_ca:
            raise
        probe = build_solver(DNS01, api, settings, vhost, names)
        if not isinstance(probe, CpanelDnsSolver) or not zones_all_here(probe, names):
            raise
        progress("the site does not answer http-01: validating through DNS instead")
        try:
            return attempt(DNS01, fallback=True), DNS01
        except ChallengeFailed as dns_exc:
            if dns_exc.kind != PROPAGATION:
                raise
            raise SelfCheckFailed(
                exc.domain,
                f"{exc.detail} Validation through this server's DNS zone was tried too, "
                f"and failed: {dns_exc.detail}",
            ) from dns_exc
