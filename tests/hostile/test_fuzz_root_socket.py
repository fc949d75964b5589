"""Root's socket (root_service.py) as a hostile cPanel user speaks to it: any JSON at all in any
field of any request. Root never raises, never answers anything but `{"ok": bool, ...}`, never
grants a reservation for a name that is not the caller's, and the running service still answers
after the worst of it."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import hypothesis
from hypothesis import strategies as st

from letsencrypt_cpanel.budgets import Budgets
from letsencrypt_cpanel.config import Settings
from letsencrypt_cpanel.root_service import READ_TIMEOUT, answer, ask_root, serve_root_socket

DIRECTORY = "https://ca.test/directory"
ALICE = 30101
EXAMPLES = 1000

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.sampled_from(["alice.test", "*.alice.test", "bob.test", "a,b", DIRECTORY, "💥"]),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=20,
)
FIELDS = [
    "op", "names", "directory", "new_account", "reservation", "account_created", "ordered",
    "issued", "failed_names", "rate_limited", "jwk", "url",
]  # fmt: skip
requests_ = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"op": st.sampled_from(["reserve", "settle", "eab_binding", "ping", "hmac_key"])},
        optional={f: json_values for f in FIELDS[1:]},
    ),
)


def make_settings(root: Path) -> Settings:
    etc = root / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "passwd").write_text(f"alice:x:{ALICE}:{ALICE}::/home/alice:/bin/bash\n")
    (etc / "userdomains").write_text("alice.test: alice\nbob.test: bob\n*: nobody\n")
    return Settings(root=root, acme_directory=DIRECTORY)


def test_any_request_gets_a_clean_answer(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)

    @hypothesis.settings(max_examples=EXAMPLES, deadline=None, database=None)
    @hypothesis.given(requests_)
    def one(request: Any) -> None:
        reply = answer(settings, request, ALICE)
        assert isinstance(reply, dict) and isinstance(reply.get("ok"), bool)
        json.dumps(reply)  # always sendable
        if reply["ok"] and reply.get("reservation"):
            names = request["names"]
            assert all(str(n).lower().removeprefix("*.") == "alice.test" for n in names)

    one()
    with Budgets.open(settings) as budgets:  # what the fuzzing reserved is alice's alone
        rows = budgets.conn.execute("SELECT user, names FROM user_reservations").fetchall()
    assert all(user == "alice" and set(names.split(",")) <= {"alice.test", "*.alice.test"}
               for user, names in rows)  # fmt: skip


def test_the_running_service_outlives_hostile_requests(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    path = tmp_path / "root.sock"
    stop = threading.Event()
    ready = threading.Event()
    server = threading.Thread(
        target=serve_root_socket,
        kwargs={"settings": settings, "path": path, "allowed_uids": [0], "stop": stop,
                "ready": ready.set},
    )  # fmt: skip
    server.start()
    try:
        assert ready.wait(10)
        hostile = [
            b'{"op": "settle", "reservation": ' + str(2**70).encode() + b"}\n",
            b'{"op": "reserve", "names": ["' + b"a" * 20000 + b'"]}\n',
            b"\xff\xfe not json\n",
            b"[" * 5000 + b"\n",
            b"",
        ]
        for raw in hostile:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(10)
                sock.connect(str(path))
                sock.sendall(raw)
                sock.shutdown(socket.SHUT_WR)
                reply = sock.recv(65536)
            assert reply == b"" or json.loads(reply)["ok"] is False
        # A caller sending a byte now and then holds the one-at-a-time service for
        # READ_TIMEOUT at most, not for as long as it keeps dripping.
        dripping = threading.Event()

        def drip() -> None:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect(str(path))
                dripping.set()
                with contextlib.suppress(OSError):
                    for _ in range(8):
                        sock.sendall(b" ")
                        time.sleep(1)

        dripper = threading.Thread(target=drip)
        dripper.start()
        assert dripping.wait(10)
        started = time.monotonic()
        assert ask_root(path, {"op": "ping"}, timeout=30) == {"ok": True}
        assert time.monotonic() - started < READ_TIMEOUT + 3
        dripper.join(15)
        deadline = time.monotonic() + 10
        while True:  # still serving
            try:
                assert ask_root(path, {"op": "ping"}) == {"ok": True}
                break
            except Exception:
                assert time.monotonic() < deadline
                time.sleep(0.05)
    finally:
        stop.set()
        server.join(10)
