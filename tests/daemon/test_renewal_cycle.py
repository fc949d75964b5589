"""`letsencrypt-cpaneld --once` against Pebble's 20-day certificates: everything due is renewed
(same key, new serial, served at once), and the owners hear about it by mail."""

from __future__ import annotations

import json
import time

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from letsencrypt_cpanel.budgets import DUPLICATES, NEW_ORDERS, Budgets, name_set
from letsencrypt_cpanel.config import load_settings
from tests.daemon.conftest import Bed
from tests.sandbox.pki import TestCA


def spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_once_renews_every_due_certificate_and_mails_the_owners(bed: Bed) -> None:
    sb = bed.sandbox
    sb.add_user("alice", "alice.test", addons=["shop.test"], email="alice@mail.test")
    sb.add_user("bob", "bob.test", email="bob@mail.test")
    sb.add_user("carol", "carol.test")  # no contact address: cPanel says *unknown*
    bed.issue("alice", "alice.test", "www.alice.test")
    bed.issue("alice", "shop.test")
    bed.issue("bob", "bob.test")
    bed.issue("carol", "carol.test")
    sites = ["alice.test", "www.alice.test", "shop.test", "bob.test", "carol.test"]
    before = {name: sb.fetch_site_cert(name) for name in sites}

    # Fresh 20-day certificates are not due under the 1/3 rule; FleetSSL's 30-day countdown is.
    out = bed.once()
    assert "0 renewed" in out
    bed.set("renewal_days", "30")
    out = bed.once()
    assert "4 renewed" in out, out
    # Renewals spend the CA's limits too: counted in root's budgets, for AutoSSL and users.
    with Budgets.open(load_settings({"LECP_ROOT": str(bed.root)})) as budgets:
        now = time.time()
        assert budgets.used(NEW_ORDERS, "alice", now) == 2
        assert budgets.used(DUPLICATES, name_set(["alice.test", "www.alice.test"]), now) == 1
        assert budgets.is_renewal(["bob.test"])

    for name in sites:
        after = sb.fetch_site_cert(name)
        assert after.serial_number != before[name].serial_number, name
        assert spki(after) == spki(before[name]), name

    # The certificates they replace were pruned from the users' SSL storage; the keys stay.
    for user, count in (("alice", 2), ("bob", 1)):
        stored = sb.uapi(sb.login(user), "SSL", "list_certs", {}).json()["data"]
        assert len(stored) == count, stored
        keys = sb.uapi(sb.login(user), "SSL", "list_keys", {}).json()["data"]
        assert len(keys) == count, keys

    alice = bed.mailbox.to("alice@mail.test")
    assert len(alice) == 1
    text = alice[0].get_content()
    assert "renewed" in alice[0]["Subject"]
    assert "alice.test" in text and "shop.test" in text and "valid until" in text
    assert alice[0]["From"] == "daemon@server.test"
    bob = bed.mailbox.to("bob@mail.test")
    assert len(bob) == 1 and "bob.test" in bob[0].get_content()
    assert "alice.test" not in bob[0].get_content()
    assert len(bed.mailbox.messages) == 2  # carol has no address

    with bed.state() as db:
        rows = {(r.user, r.vhost): r for r in db.vhosts()}
    assert {k: r.status for k, r in rows.items()} == {
        ("alice", "alice.test"): "renewed",
        ("alice", "shop.test"): "renewed",
        ("bob", "bob.test"): "renewed",
        ("carol", "carol.test"): "renewed",
    }


def test_success_mail_off_by_the_user_or_server_wide_and_the_hook_runs(bed: Bed) -> None:
    sb = bed.sandbox
    sb.add_user("quiet", "quiet.test", email="quiet@mail.test")
    sb.add_user("loud", "loud.test", email="loud@mail.test")
    bed.issue("quiet", "quiet.test")
    bed.issue("loud", "loud.test")
    # The user's own switch lives in their record, which only their worker reads.
    path = bed.home("quiet") / ".cpanel/nvdata/letsencrypt-cpanel"
    record = json.loads(path.read_text())
    record["disable_mail"] = True
    path.write_text(json.dumps(record))
    seen = bed.root / "hook-saw.json"
    hook = bed.root / "post-renewal-hook"
    hook.write_text(f"#!/bin/sh\ncat > {seen}\n")
    hook.chmod(0o700)
    bed.set("post_renewal_hook", str(hook))
    bed.set("renewal_days", "30")

    out = bed.once()
    assert "2 renewed" in out, out
    assert [rcpts for rcpts, _ in bed.mailbox.messages] == [["loud@mail.test"]]
    summary = json.loads(seen.read_text())
    assert summary["event"] == "renewed"
    assert sorted(r["user"] for r in summary["renewed"]) == ["loud", "quiet"]
    loud = next(r for r in summary["renewed"] if r["user"] == "loud")
    assert loud["vhost"] == "loud.test" and loud["names"] == ["loud.test"]
    assert loud["not_after"] > time.time() + 19 * 86400
    assert "PRIVATE KEY" not in seen.read_text()

    bed.set("send_success_mail", "false")
    hook.chmod(0o722)  # writable by others now: refused, not run
    seen.unlink()
    out = bed.once()
    assert "2 renewed" in out
    assert len(bed.mailbox.messages) == 1
    assert not seen.exists() and "writable by group or others" in out


def test_a_replaced_certificate_is_left_alone_and_reported_once(bed: Bed) -> None:
    sb = bed.sandbox
    sb.add_user("dave", "dave.test", email="dave@mail.test")
    bed.issue("dave", "dave.test")
    bed.set("renewal_days", "30")
    # Dave installs a certificate from another CA through cPanel's own interface.
    leaf = TestCA("Other Commercial CA").leaf(["dave.test"])
    reply = sb.uapi(
        sb.login("dave"),
        "SSL",
        "install_ssl",
        {"domain": "dave.test", "cert": leaf.cert, "key": leaf.key, "cabundle": leaf.chain},
    )
    assert reply.json()["status"] == 1, reply.json()
    out = bed.once()
    assert "dave dave.test: replaced" in out, out
    served = sb.fetch_site_cert("dave.test")
    assert served == x509.load_pem_x509_certificate(leaf.cert.encode())  # not overwritten
    mails = bed.mailbox.to("dave@mail.test")
    assert len(mails) == 1 and "no longer renewed" in mails[0]["Subject"]
    assert "another certificate was installed" in mails[0].get_content()
    with bed.state() as db:
        assert db.vhost("dave", "dave.test").status == "replaced"  # type: ignore[union-attr]
    out = bed.once()
    assert "0 user(s) run" in out, out  # left alone until the weekly sweep looks again
    assert len(bed.mailbox.to("dave@mail.test")) == 1
    # Not even a forced renewal (le-cp, WHM's "even if not due") overwrites it.
    forced = bed.lecp.run("ssl", "renew", "--user", "dave", "--force")
    assert "replaced" in forced.stdout + forced.stderr, forced
    assert sb.fetch_site_cert("dave.test") == x509.load_pem_x509_certificate(leaf.cert.encode())
