"""No secret where another local user (or a log reader) could see it.

While `le-cp` issues, renews and the cPanel page issues (each as root -> WHM -> worker as the
user, or as the user's CGI), a sampler thread reads every process's `/proc/PID/cmdline` and
`/proc/PID/environ` over and over, and snapshots the sandbox's session files (to learn the session
secrets that existed). Afterwards, none of the secrets that existed during the run may appear in
any sample: not the WHM API token, not a private key (the plugin's domain and account keys, any
PEM private key at all), not a cPanel session's login secret or cookie, not the page's CSRF HMAC
key. Nor in the sandbox's log, `le-cp`'s output, or the page's answers.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from letsencrypt_cpanel.web.csrf import HMAC_KEY_FILE
from tests.fixtures.lecp import LeCp
from tests.fixtures.plugin_pages import PageClient
from tests.fixtures.sandbox import RunningSandbox

# cpsrvd starts the page's CGI with the user's request in its environment (HTTP_COOKIE with the
# session cookie, cp_security_token): that is cPanel's doing, readable by the user and root only
# (/proc/PID/environ is 0400). Those environments are searched for every other secret.
CGI_MARK = b"CPANEL_CONNECT_SOCKET="
PEM_BODY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----\n(.*?)\n-----END", re.S)


@dataclass
class Sampler:
    """Reads /proc/*/cmdline and /proc/*/environ (and session files) until stopped."""

    sessions_dir: Path
    texts: set[bytes] = field(default_factory=set)
    cgi_environments: set[bytes] = field(default_factory=set)
    sessions: dict[str, dict[str, object]] = field(default_factory=dict)
    rounds: int = 0
    pids: set[int] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self._stop.is_set():
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit():
                    continue
                for part in ("cmdline", "environ"):
                    try:
                        with open(f"/proc/{entry.name}/{part}", "rb") as fh:
                            data = fh.read()
                    except OSError:
                        continue
                    if data and part == "environ" and CGI_MARK in data:
                        self.cgi_environments.add(data)
                    elif data:
                        self.texts.add(data)
                        self.pids.add(int(entry.name))
            for path in self.sessions_dir.glob("*.json"):
                try:
                    self.sessions[path.name] = json.loads(path.read_text())
                except (OSError, ValueError):
                    continue
            self.rounds += 1
            time.sleep(0.002)

    @classmethod
    def running(cls, sessions_dir: Path) -> Iterator[Sampler]:
        sampler = cls(sessions_dir)
        thread = threading.Thread(target=sampler.run, daemon=True)
        thread.start()
        try:
            yield sampler
        finally:
            sampler._stop.set()
            thread.join(timeout=10)

    def session_secrets(self) -> list[str]:
        out = []
        for data in self.sessions.values():
            for key in ("cookie", "login_secret"):
                value = str(data.get(key) or "")
                if value:
                    out += [value, urllib.parse.unquote(value), urllib.parse.quote_plus(value)]
        return out


def key_fragments(text: str) -> list[str]:
    """A 48-character piece from the middle of every PEM private key in `text`."""
    out = []
    for body in PEM_BODY.findall(text):
        flat = body.replace("\n", "").replace("\\n", "")
        out.append(flat[len(flat) // 2 : len(flat) // 2 + 48])
    return out


def record_keys(sandbox: RunningSandbox, user: str) -> str:
    """Every private key in the user's record (domain and account keys), one text."""
    path = sandbox.root / "home" / user / ".cpanel/nvdata/letsencrypt-cpanel"
    record = json.loads(path.read_text())
    keys = [a["key_pem"] for a in record["accounts"].values()]
    keys += [c["key_pem"] for c in record["certificates"].values()]
    return "\n".join(keys)


def test_no_secret_in_argv_environ_logs_or_answers(
    lecp: LeCp,
    cpanel_page: RunningSandbox,
    account: Callable[..., tuple[str, str]],
) -> None:
    sandbox = cpanel_page
    user, domain = account("hxleak", addons=["hxleak-addon.test"])
    outputs: list[str] = []
    sessions_dir = sandbox.root / "var/cpanel/sessions"
    log = sandbox.root / "var/cpanel/sandbox.log"
    log_start = log.stat().st_size
    samplers = Sampler.running(sessions_dir)
    sampler = next(samplers)
    try:
        for args in (
            ("ssl", "issue", "--user", user, domain),
            ("ssl", "renew", "--user", user, "--force"),
            ("ssl", "list", "--user", user, "--json"),
        ):
            proc = lecp.run(*args)
            assert proc.returncode == 0, proc.stderr
            outputs += [proc.stdout, proc.stderr]
        client = PageClient.login(sandbox, user)
        reply = client.post(
            {"action": "issue", "vhost": "hxleak-addon.test", "name": "hxleak-addon.test"},
            json_api=True,
        )
        assert reply.status == 200, reply.body[:300]
        replies = [reply, client.post({"action": "issue", "vhost": domain, "name": domain})]
        for query in ({"action": "view", "vhost": domain}, {"action": "nonsense"}, None):
            replies += [client.get(query), client.get(query, json_api=True)]
        # Bodies and headers: the links and redirects (URLs) the page hands out included.
        outputs += [r.body.decode() + repr(r.headers) for r in replies]
    finally:
        next(samplers, None)
    assert sampler.rounds > 20 and len(sampler.pids) > 10, "the sampler really sampled"
    assert sampler.sessions, "sessions were made and seen"

    hmac_file = sandbox.root / "home" / user / ".cpanel/nvdata" / HMAC_KEY_FILE
    hmac_key = hmac_file.read_bytes()
    secrets = {
        "the WHM token": [sandbox.whm_token],
        "a session": sampler.session_secrets(),
        "a private key": key_fragments(record_keys(sandbox, user)),
        "the CSRF key": [hmac_key.hex(), hmac_key.decode("latin-1").strip()],
    }
    assert secrets["a private key"] and secrets["a session"]
    samples = [t.decode("latin-1") for t in sampler.texts]
    samples += [t.replace("\0", " ") for t in samples]
    cgi = [t.decode("latin-1").replace("\0", " ") for t in sampler.cgi_environments]
    assert cgi, "the page's CGI was sampled too"
    logged = log.read_bytes()[log_start:].decode("latin-1")
    where = {
        "/proc/*/cmdline or environ": samples,
        "the sandbox log": [logged],
        "answers": outputs,
        "the CGI's environment": cgi,
    }
    for place, texts in where.items():
        blob = "\n".join(texts)
        assert "PRIVATE KEY-----" not in blob, place
        for what, values in secrets.items():
            if place == "the CGI's environment" and what == "a session":
                continue
            for value in values:
                if len(value) >= 16:
                    assert value not in blob, f"{what} appeared in {place}"
