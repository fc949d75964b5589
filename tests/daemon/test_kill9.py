"""`kill -9` of the daemon at random moments of a busy cycle: every record stays parseable,
nothing is lost, and the next cycle finishes the work. SIGTERM mid-cycle: no new user starts,
the running one finishes and is recorded, nobody is backed off, the next cycle does the rest."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import time

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from letsencrypt_cpanel.config import load_settings
from letsencrypt_cpanel.keys import load_private_key
from letsencrypt_cpanel.record_format import Record
from letsencrypt_cpanel.state import DB_NAME
from tests.daemon.conftest import Bed
from tests.daemon.test_renewal_cycle import spki

KILLS = 20
USERS = ["k1", "k2", "k3", "k4"]


def _record(bed: Bed, user: str) -> Record:
    # The test reads the users' records as root to check them; the product never does.
    return Record.from_json((bed.home(user) / ".cpanel/nvdata/letsencrypt-cpanel").read_bytes())


def test_kill_9_at_random_moments_loses_nothing(bed: Bed) -> None:
    sb = bed.sandbox
    for user in USERS:
        sb.add_user(user, f"{user}.test", email=f"{user}@mail.test")
        bed.issue(user, f"{user}.test", f"www.{user}.test")
    keys = {u: _record(bed, u).certificates[f"{u}.test"].key_pem for u in USERS}
    bed.set("renewal_days", "30")  # every certificate is due at every cycle: always busy
    bed.set("parallel_workers", "2")
    rng = random.Random(int(os.environ.get("KILL9_SEED", time.time())))
    killed_mid_cycle = 0
    for _ in range(KILLS):
        proc = bed.popen("--once")
        time.sleep(rng.uniform(0.05, 1.2))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            killed_mid_cycle += 1
        proc.wait(timeout=30)
        for user in USERS:
            record = _record(bed, user)  # parseable after every kill
            entry = record.certificates[f"{user}.test"]
            assert entry.key_pem == keys[user]  # the key is never lost or changed
            assert entry.cert_pem and entry.names == [f"{user}.test", f"www.{user}.test"]
    assert killed_mid_cycle >= KILLS // 2

    # Workers orphaned by the last kill may still be finishing: the next cycle waits for their
    # locks, then completes everything.
    out = bed.once()
    assert f"{len(USERS)} renewed" in out, out
    settings = load_settings({"LECP_ROOT": str(bed.root)})
    conn = sqlite3.connect(settings.state_dir / DB_NAME)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        conn.close()
    with bed.state() as db:
        assert {(r.user, r.status) for r in db.vhosts()} == {(u, "renewed") for u in USERS}
    for user in USERS:
        entry = _record(bed, user).certificates[f"{user}.test"]
        served = sb.fetch_site_cert(f"www.{user}.test")
        assert served == x509.load_pem_x509_certificate(entry.cert_pem.encode())
        public = load_private_key(entry.key_pem).public_key()
        assert spki(served) == public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        folder = bed.home(user) / ".cpanel/nvdata"
        assert not [p for p in folder.iterdir() if p.name.startswith(".letsencrypt-cpanel.tmp")]


def test_sigterm_mid_cycle_stops_between_users(bed: Bed) -> None:
    sb = bed.sandbox
    users = USERS[:3]
    for user in users:
        sb.add_user(user, f"{user}.test", email=f"{user}@mail.test")
        bed.issue(user, f"{user}.test")
    bed.set("renewal_days", "30")
    bed.set("parallel_workers", "1")
    proc = bed.popen("--foreground")
    try:
        deadline = time.monotonic() + 60
        with bed.state() as db:
            while not db.vhosts() and time.monotonic() < deadline:
                time.sleep(0.05)  # the first user is done: a cycle is under way
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "left for the next cycle" in err and "stopped" in err, err
    with bed.state() as db:
        done = {r.user for r in db.vhosts() if r.status == "renewed"}
        assert 1 <= len(done) < len(users)
        assert not [u for u, s in db.users().items() if s.failures]  # nobody backed off
    for user in users:
        assert _record(bed, user).certificates[f"{user}.test"].cert_pem
    # The next cycle does the rest.
    out = bed.once()
    assert f"{len(users)} renewed" in out, out
