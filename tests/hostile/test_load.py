"""Load: many clicks and many users at once, through cpsrvd's page host (a CGI per request, as
the user), against Pebble.

- 20 Issue clicks by one user for the same website, all at once, while the daemon's renewal
  cycle renews another website of the same user: one order and one certificate for the website,
  one for the renewal, the other clicks told that a task is running, the record whole.
- 200 Home requests at once across 50 accounts: every one answered 200 with exactly its own
  account's websites.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from cryptography import x509

from tests.daemon.conftest import Bed
from tests.fixtures.plugin_pages import PageClient, enable_plugin_feature, install_cpanel_page
from tests.fixtures.sandbox import HttpReply, RunningSandbox, run_cli
from tests.hostile.conftest import pebble_posts

CLICKS = 20
USERS = 50
HOME_REQUESTS = 200


def lock_is_held(path: Path) -> bool:
    """True when another process holds the flock on `path` (probed without waiting)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_twenty_clicks_while_a_renewal_runs_make_one_order(bed: Bed) -> None:
    sandbox = bed.sandbox
    install_cpanel_page(sandbox)
    enable_plugin_feature(sandbox)
    sandbox.add_user("clicker", "clicker.test", addons=["clicked.test"])
    bed.issue("clicker", "clicker.test")
    bed.set("renewal_days", "30")  # Pebble's 20-day certificate is due now
    nvdata = bed.home("clicker") / ".cpanel/nvdata"
    old = json.loads((nvdata / "letsencrypt-cpanel").read_text())["certificates"]
    client = PageClient.login(sandbox, "clicker")
    token = client.csrf_token()
    orders = pebble_posts(bed.pebble, "/order-plz")
    finalized = pebble_posts(bed.pebble, "/finalize-order/")

    daemon = bed.popen("--once")
    deadline = time.monotonic() + 60
    while not lock_is_held(nvdata / "letsencrypt-cpanel.lock"):
        assert daemon.poll() is None and time.monotonic() < deadline, "no renewal was seen"
        time.sleep(0.005)
    start = threading.Barrier(CLICKS)
    fields = {"action": "issue", "vhost": "clicked.test", "name": "clicked.test"}

    def click(_: int) -> HttpReply:
        start.wait()
        return client.post(fields, json_api=True, csrf=token)

    with ThreadPoolExecutor(CLICKS) as pool:
        replies = list(pool.map(click, range(CLICKS)))
    _out, err = daemon.communicate(timeout=120)
    assert daemon.returncode == 0, err

    statuses = sorted(r.status for r in replies)
    assert statuses == [200] + [409] * (CLICKS - 1), [(r.status, r.body[:200]) for r in replies]
    busy = next(r for r in replies if r.status == 409).json()["errors"][0]
    assert "being issued or changed right now" in busy
    # One order for the clicked website, one for the renewal, nothing else.
    assert pebble_posts(bed.pebble, "/order-plz") == orders + 2
    assert pebble_posts(bed.pebble, "/finalize-order/") == finalized + 2
    record = json.loads((nvdata / "letsencrypt-cpanel").read_text())
    certs = record["certificates"]
    assert sorted(certs) == ["clicked.test", "clicker.test"]
    assert certs["clicker.test"]["cert_pem"] != old["clicker.test"]["cert_pem"], "renewed"
    for vhost, entry in certs.items():
        assert entry["state"] == "installed", (vhost, entry["state"])
        served = sandbox.fetch_site_cert(vhost)
        assert served == x509.load_pem_x509_certificate(entry["cert_pem"].encode())
    assert not [p for p in nvdata.iterdir() if ".tmp-" in p.name]


def websites_of(root: Path, prefix: str) -> dict[str, set[str]]:
    """Each user's websites as cPanel's userdatadomains says (cpanel-api.md §4): the main domain,
    each addon domain, and each subdomain that is not an addon's own (field 4 of an addon)."""
    entries: list[tuple[str, str, str, str]] = []
    for line in (root / "etc/userdatadomains").read_text().splitlines():
        domain, _, rest = line.partition(": ")
        fields = rest.split("==")
        if len(fields) > 3 and fields[0].startswith(prefix):
            entries.append((domain, fields[0], fields[2], fields[3]))
    backing = {parent for _, _, kind, parent in entries if kind == "addon"}
    sites: dict[str, set[str]] = {}
    for domain, user, kind, _ in entries:
        if kind in ("main", "addon") or (kind == "sub" and domain not in backing):
            sites.setdefault(user, set()).add(domain)
    return sites


def test_two_hundred_home_requests_across_fifty_users(cpanel_page: RunningSandbox) -> None:
    sandbox = cpanel_page
    prefix = "hxld"
    run_cli("populate", str(sandbox.root), "--users", str(USERS), "--vhosts", str(USERS * 2),
            "--certs", "--prefix", prefix)  # fmt: skip
    owners: dict[str, list[str]] = {}
    for line in (sandbox.root / "etc/userdomains").read_text().splitlines():
        domain, _, user = line.partition(": ")
        if user.startswith(prefix):
            owners.setdefault(user, []).append(domain)
    assert len(owners) == USERS
    websites = websites_of(sandbox.root, prefix)
    assert set(websites) == set(owners)
    clients = {user: PageClient.login(sandbox, user) for user in owners}
    jobs = [user for user in sorted(owners) for _ in range(HOME_REQUESTS // USERS)]
    start = threading.Barrier(len(jobs))

    def home(user: str) -> tuple[str, HttpReply]:
        start.wait()
        return user, clients[user].get(json_api=True)

    began = time.monotonic()
    with ThreadPoolExecutor(len(jobs)) as pool:
        answers = list(pool.map(home, jobs))
    took = time.monotonic() - began
    all_domains = {d for domains in owners.values() for d in domains}
    for user, reply in answers:
        assert reply.status == 200, (user, reply.status, reply.body[:300])
        rows: list[dict[str, Any]] = reply.json()["data"]["virtual_hosts"]
        shown = {name for row in rows for name in [row["vhost"], *row.get("names", [])]}
        mine = set(owners[user])
        assert {row["vhost"] for row in rows} == websites[user], user
        assert not (shown & (all_domains - mine)), (user, shown & (all_domains - mine))
    print(f"{len(answers)} Home requests across {USERS} users answered in {took:.1f} s")
