"""Who has work, decided from root's state and WHM's answers alone; backoff; what gets mailed;
a worker's summary read as untrusted input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from letsencrypt_cpanel.config import Settings
from letsencrypt_cpanel.cpanel.models import Account, CertificateFacts, SslVhost
from letsencrypt_cpanel.errors import WorkerError
from letsencrypt_cpanel.notify import FAILED, LEFT_ALONE, RENEWED, plan_mails
from letsencrypt_cpanel.renewal import parse_report, plan_work
from letsencrypt_cpanel.state import DAY, HOUR, StateDB, UserReport, VhostReport, backoff_delay

NOW = 1_800_000_000
ISSUER = "Test Intermediate R1"


def account(user: str, suspended: bool = False) -> Account:
    return Account(user, f"{user}.test", f"{user}@mail.test", "root", suspended, 1000)


def installed(
    user: str, not_after: int, issuer: str = ISSUER, lifetime: int = 90 * DAY
) -> SslVhost:
    cert = CertificateFacts(
        "id", (f"{user}.test",), f"{user}.test", issuer, "", not_after - lifetime, not_after, False
    )
    return SslVhost(f"{user}.test", user, (f"{user}.test",), "/home", "main", cert)


def report(*outcomes: VhostReport, disable_mail: bool = False) -> UserReport:
    return UserReport(disable_mail, list(outcomes))


def ok(user: str, not_after: int, action: str = "renewed") -> VhostReport:
    return VhostReport(
        f"{user}.test", action, (f"{user}.test",), not_after - 90 * DAY, not_after, ISSUER
    )


@pytest.fixture
def db(tmp_path: Path) -> Iterator[StateDB]:
    with StateDB.open(Settings(root=tmp_path)) as opened:
        yield opened


def test_backoff_grows_hourly_to_a_day() -> None:
    assert [backoff_delay(n) for n in range(8)] == [
        0, HOUR, 2 * HOUR, 4 * HOUR, 8 * HOUR, 16 * HOUR, DAY, DAY,
    ]  # fmt: skip
    assert backoff_delay(10_000) == DAY


def test_first_cycle_sweeps_everyone_but_the_suspended(db: StateDB) -> None:
    accounts = [account("a"), account("b", suspended=True), account("root")]
    work, suspended = plan_work(accounts, [], db, Settings(), NOW, full_sweep=True)
    assert [w.user for w in work] == ["a"] and suspended == ["b"]


def test_between_sweeps_only_users_with_work(db: StateDB) -> None:
    users = ["fresh", "due", "gone", "replaced", "failing", "backoff", "stranger", "other"]
    fresh_until = NOW + 80 * DAY
    for user in ["fresh", "due", "gone"]:
        db.record_report(user, frozenset(), report(ok(user, NOW + 80 * DAY)), NOW - DAY)
    db.record_report("due", frozenset(), report(ok("due", NOW + 10 * DAY)), NOW - DAY)
    db.record_report("replaced", frozenset(), report(ok("replaced", NOW, "replaced")), NOW)
    failed = VhostReport("failing.test", "failed", ("failing.test",), 0, NOW + 5 * DAY, "", "boom")
    db.record_report("failing", frozenset(), report(failed), NOW - 2 * HOUR)  # retry at NOW - 1 h
    db.record_report("backoff", frozenset(), report(failed), NOW - 10)
    db.record_failure("other", "worker timed out", NOW - 10)
    db.add_issuer(ISSUER, NOW)
    ssl = [
        installed("fresh", fresh_until),
        installed("due", NOW + 10 * DAY),
        installed("gone", NOW + 80 * DAY, issuer="Someone Else"),  # another cert now
        installed("stranger", NOW + 5 * DAY),  # ours (known issuer), due, never reported
        installed("other", NOW + 5 * DAY),
    ]
    work, _ = plan_work([account(u) for u in users], ssl, db, Settings(), NOW, full_sweep=False)
    by_user = {w.user: w for w in work}
    assert set(by_user) == {"due", "gone", "failing", "stranger"}
    assert by_user["due"].reasons == ("due.test due",)
    assert "no longer installed" in by_user["gone"].reasons[0]
    assert by_user["failing"].reasons == ("retry failing.test",)


def test_a_vhost_in_backoff_is_skipped_while_others_of_the_user_renew(db: StateDB) -> None:
    failed = VhostReport("b.test", "failed", ("b.test",), 0, NOW + 5 * DAY, "", "boom")
    due = VhostReport("a.test", "renewed", ("a.test",), NOW - 80 * DAY, NOW + 10 * DAY, ISSUER)
    db.record_report("u", frozenset(), report(due, failed), NOW - 10)
    work, _ = plan_work([account("u")], [], db, Settings(), NOW, full_sweep=False)
    assert work[0].skip == frozenset({"b.test"})
    # Skipped vhosts keep their rows; vhosts the record no longer has are dropped.
    db.record_report("u", frozenset({"b.test"}), report(), NOW)
    assert [r.vhost for r in db.vhosts("u")] == ["b.test"]


def test_renewal_days_makes_short_certificates_due(db: StateDB) -> None:
    db.record_report("u", frozenset(), report(ok("u", NOW + 45 * DAY)), NOW - DAY)
    ssl = [installed("u", NOW + 45 * DAY)]
    assert plan_work([account("u")], ssl, db, Settings(), NOW, full_sweep=False)[0] == []
    settings = Settings(renewal_days=60)
    assert plan_work([account("u")], ssl, db, settings, NOW, full_sweep=False)[0] != []


def test_failures_count_up_and_clear(db: StateDB) -> None:
    failed = VhostReport("u.test", "failed", ("u.test",), 0, 0, "", "boom")
    for n in (1, 2, 3):
        db.record_report("u", frozenset(), report(failed), NOW)
        row = db.vhost("u", "u.test")
        assert row is not None and row.failures == n and row.next_attempt == NOW + backoff_delay(n)
    assert db.next_retry(NOW) == NOW + 4 * HOUR
    db.record_report("u", frozenset(), report(ok("u", NOW + 90 * DAY)), NOW)
    row = db.vhost("u", "u.test")
    assert row is not None and (row.failures, row.last_error, row.next_attempt) == (0, "", 0)
    assert [e.action for e in db.history(user="u")] == ["failed"] * 3 + ["renewed"]


def test_mail_plan_respects_switches_and_throttle(db: StateDB) -> None:
    failed = VhostReport("f.test", "failed", ("f.test",), 0, NOW, "", "boom")
    renewed = ok("r", NOW + 90 * DAY)
    replaced = VhostReport("x.test", "replaced", ("x.test",))
    before = {r.vhost: r for r in []}
    db.record_report("u", frozenset(), report(ok("x", NOW)), NOW - DAY)
    before = {r.vhost: r for r in db.vhosts("u")}

    def never(vhost: str, kind: str) -> int:
        return 0

    kinds = [k for k, _ in plan_mails(report(renewed, failed, replaced), before, Settings(),
                                      mailed_at=never, now=NOW)]  # fmt: skip
    assert kinds == [RENEWED, FAILED, LEFT_ALONE]
    quiet = plan_mails(
        report(renewed, failed, disable_mail=True), {}, Settings(), mailed_at=never, now=NOW
    )
    assert [k for k, _ in quiet] == [FAILED]  # the user's switch is about successes only
    recent = plan_mails(
        report(failed), {}, Settings(), mailed_at=lambda v, k: NOW - 47 * HOUR, now=NOW
    )
    assert recent == []
    off = Settings(send_success_mail=False, send_failure_mail=False)
    assert plan_mails(report(renewed, failed), {}, off, mailed_at=never, now=NOW) == []


@pytest.mark.parametrize(
    "summary",
    [
        None,
        [],
        {"outcomes": []},
        {"disable_mail": "no", "outcomes": []},
        {"disable_mail": False, "outcomes": "x"},
        {"disable_mail": False, "outcomes": [{"vhost": "a", "action": "pwned"}]},
        {"disable_mail": False, "outcomes": [{"vhost": "a" * 300, "action": "renewed"}]},
        {"disable_mail": False, "outcomes": [{}] * 5000},
        {"disable_mail": False, "outcomes": [dict(vars(ok("u", 1)), names=["a"], not_after=-1)]},
        {"disable_mail": False, "outcomes": [dict(vars(ok("u", 1)), names=[1])]},
        # Root puts an ARI id in a URL path: nothing but RFC 9773's two base64url parts.
        {"disable_mail": False, "outcomes": [dict(vars(ok("u", 1)), names=[], ari_id="a/b.c")]},
        {"disable_mail": False, "outcomes": [dict(vars(ok("u", 1)), names=[], ari_id="ab?x=1")]},
        {"disable_mail": False, "outcomes": [dict(vars(ok("u", 1)), names=[], ari_recheck=-1)]},
        {"disable_mail": False, "outcomes": [dict(vars(ok("u", 1)), names=[], challenge="<x>")]},
    ],
)
def test_hostile_summaries_are_refused(summary: object) -> None:
    with pytest.raises(WorkerError):
        parse_report(summary)  # type: ignore[arg-type]


def test_a_good_summary_is_read() -> None:
    row = dict(vars(ok("u", NOW)), names=["u.test"], error="")
    parsed = parse_report({"disable_mail": True, "outcomes": [row]})
    assert parsed == report(ok("u", NOW), disable_mail=True)


def test_the_cas_renewal_time_brings_the_user_back_before_the_lifetime_rule(db: StateDB) -> None:
    """ARI (RFC 9773): the worker reports when the CA wants a not-yet-due certificate renewed;
    root, which cannot read the record, visits the user then."""
    early = VhostReport(
        "u.test", "not_due", ("u.test",), NOW - 10 * DAY, NOW + 80 * DAY, ISSUER, "", NOW + HOUR
    )
    db.record_report("u", frozenset(), report(early), NOW - DAY)
    ssl = [installed("u", NOW + 80 * DAY)]
    assert plan_work([account("u")], ssl, db, Settings(), NOW, full_sweep=False)[0] == []
    assert db.next_retry(NOW) == NOW + HOUR  # the daemon wakes for it
    later = NOW + 2 * HOUR
    work, _ = plan_work([account("u")], ssl, db, Settings(), later, full_sweep=False)
    assert [w.reasons for w in work] == [("u.test: its CA asks for renewal now (ARI)",)]
    # A renewal clears it.
    db.record_report("u", frozenset(), report(ok("u", NOW + 170 * DAY)), later)
    renewed = [installed("u", NOW + 170 * DAY)]
    assert plan_work([account("u")], renewed, db, Settings(), later, full_sweep=False)[0] == []


def test_a_worker_reports_the_cas_renewal_time() -> None:
    row: dict[str, object] = {
        "vhost": "u.test",
        "action": "not_due",
        "names": ["u.test"],
        "not_before": NOW - DAY,
        "not_after": NOW,
        "issuer": ISSUER,
        "error": "",
    }

    def parsed() -> int:
        return parse_report({"disable_mail": False, "outcomes": [row]}).outcomes[0].renew_at  # type: ignore[list-item]

    assert parsed() == 0
    row["renew_at"] = NOW - 5
    assert parsed() == NOW - 5
    row["renew_at"] = "soon"
    with pytest.raises(WorkerError):
        parsed()


def test_root_keeps_the_ari_id_of_a_certificate_not_due_only(db: StateDB) -> None:
    waiting = VhostReport(
        "u.test", "not_due", ("u.test",), NOW - DAY, NOW + 80 * DAY, ISSUER, "", NOW + 9 * DAY,
        ari_id="QUtJ.AIdl", ari_recheck=NOW + HOUR,
    )  # fmt: skip
    db.record_report("u", frozenset(), report(waiting), NOW)
    assert db.ari_to_ask(NOW, 10) == []  # not before its Retry-After
    assert db.ari_to_ask(NOW + HOUR, 10) == [("u", "u.test", "QUtJ.AIdl", NOW + 9 * DAY)]
    with db.transaction():
        db.ari_answered("u", "u.test", NOW + HOUR, NOW + 7 * HOUR)
    assert db.ari_to_ask(NOW + 2 * HOUR, 10) == []
    work, _ = plan_work([account("u")], [], db, Settings(), NOW + 2 * HOUR, full_sweep=False)
    assert [w.reasons for w in work] == [("u.test: its CA asks for renewal now (ARI)",)]
    # Renewed: nothing left to ask about until the worker reports the new one.
    db.record_report("u", frozenset(), report(ok("u", NOW + 170 * DAY)), NOW + 2 * HOUR)
    assert db.ari_to_ask(NOW + DAY, 10) == []


def test_one_users_many_certificates_do_not_crowd_out_the_others_ari_checks(
    db: StateDB,
) -> None:
    def waiting(vhost: str, recheck: int) -> VhostReport:
        return VhostReport(
            vhost, "not_due", (vhost,), NOW - DAY, NOW + 80 * DAY, ISSUER, "", NOW + 9 * DAY,
            ari_id="QUtJ.AIdl", ari_recheck=recheck,
        )  # fmt: skip

    many = [waiting(f"m{i}.test", NOW - 100 + i) for i in range(5)]
    db.record_report("many", frozenset(), report(*many), NOW)
    db.record_report("one", frozenset(), report(waiting("one.test", NOW)), NOW)
    asked = db.ari_to_ask(NOW, 10, per_user=2)
    assert [(u, v) for u, v, _i, _t in asked] == [
        ("many", "m0.test"),
        ("many", "m1.test"),
        ("one", "one.test"),
    ]
