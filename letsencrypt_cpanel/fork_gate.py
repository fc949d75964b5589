"""A worker is never forked while another of root's threads is inside OpenSSL.

Why: OpenSSL keeps process-wide locks (its random generator's, its algorithm caches') that a
thread holds while Python has let go of the GIL: in `ssl.SSLContext()`, a TLS handshake, a key
being made. A fork copies such a lock held, without the thread that would release it, and the
worker's first TLS connection then waits on it forever. Seen in CI as an AutoSSL worker that hung
until its 300 s deadline while seven other threads were asking WHM for sessions; reproduced by
forking beside threads doing handshakes (about one child in a thousand hangs in SSL_CTX_new ->
RAND_bytes -> CRYPTO_THREAD_write_lock).

So root's TLS calls (WHM, cPanel, SMTP) run inside `openssl_in_use()`, and `run_as_user` forks
inside `forking()`: a fork waits until the TLS calls under way have ended, and new ones wait
until the fork is done (forks are preferred, so a busy pool of threads cannot starve them). The
key made ahead of time (keys.py) is settled before each fork instead.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _Gate:
    """Many TLS users at a time, or one fork; a waiting fork lets no new TLS user in."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._users = 0
        self._forking = False
        self._mine = threading.local()  # this thread's depth of openssl_in_use

    @contextmanager
    def openssl_in_use(self) -> Iterator[None]:
        depth = getattr(self._mine, "depth", 0)
        if depth:  # already in: waiting for a fork that waits for us would never end
            self._mine.depth = depth + 1
            try:
                yield
            finally:
                self._mine.depth = depth
            return
        with self._changed:
            while self._forking:
                self._changed.wait()
            self._users += 1
        self._mine.depth = 1
        try:
            yield
        finally:
            self._mine.depth = 0
            with self._changed:
                self._users -= 1
                if self._users == 0:
                    self._changed.notify_all()

    @contextmanager
    def forking(self) -> Iterator[None]:
        if getattr(self._mine, "depth", 0):
            raise RuntimeError("a fork inside a TLS call would wait for itself")
        with self._changed:
            while self._forking:
                self._changed.wait()
            self._forking = True
            try:
                while self._users:
                    self._changed.wait()
            except BaseException:
                self._forking = False
                self._changed.notify_all()
                raise
        try:
            yield
        finally:
            with self._changed:
                self._forking = False
                self._changed.notify_all()


_gate = _Gate()
# The child has only the forking thread, and the gate's state says "forking": start it afresh
# (a job's own TLS calls must not wait for a fork that, in the child, never ends).
os.register_at_fork(after_in_child=_gate._reset)

openssl_in_use = _gate.openssl_in_use
forking = _gate.forking
