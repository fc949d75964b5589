"""The fork gate's rules (fork_gate.py): many TLS calls at once or one fork; a waiting fork
lets no new TLS call in; a thread's nested TLS calls never wait for a fork. Ordered by events
and by the gate's own state, never by how long a thread sleeps (CI machines are slow)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from letsencrypt_cpanel import fork_gate
from tests.fixtures.fork_gate_holder import held_elsewhere


def wait_until(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the gate never got there"
        time.sleep(0.005)


def test_tls_calls_share_the_gate() -> None:
    release = threading.Event()
    inside = threading.Event()

    def call() -> None:
        with fork_gate.openssl_in_use():
            inside.set()
            release.wait(10)

    other = threading.Thread(target=call)
    other.start()
    assert inside.wait(10)
    with fork_gate.openssl_in_use():  # while the other call is still in
        assert not release.is_set()
    release.set()
    other.join(10)


def test_a_fork_waits_for_the_tls_call_under_way() -> None:
    with held_elsewhere(fork_gate.openssl_in_use, 0.3) as released:
        with fork_gate.forking():
            assert released() != 0.0 and time.time() >= released()


def test_a_tls_call_waits_for_the_fork_under_way() -> None:
    with held_elsewhere(fork_gate.forking, 0.3) as released:
        with fork_gate.openssl_in_use():
            assert released() != 0.0 and time.time() >= released()


def test_a_waiting_fork_goes_before_new_tls_calls() -> None:
    order: list[str] = []
    late_waiting = threading.Event()

    def fork() -> None:
        with fork_gate.forking():
            order.append("fork")

    def late_call() -> None:
        late_waiting.set()
        with fork_gate.openssl_in_use():
            order.append("late call")

    forker = threading.Thread(target=fork)
    late = threading.Thread(target=late_call)
    with fork_gate.openssl_in_use():
        forker.start()
        wait_until(lambda: fork_gate._gate._forking)  # the fork waits for this call
        late.start()
        assert late_waiting.wait(10)
        time.sleep(0.05)  # give the late call its chance to (wrongly) get in
        # Nested in a call already in: never waits for the waiting fork (it would wait forever).
        with fork_gate.openssl_in_use():
            order.append("nested")
    forker.join(10)
    late.join(10)
    assert order == ["nested", "fork", "late call"]


def test_a_fork_inside_a_tls_call_is_refused_not_a_deadlock() -> None:
    with fork_gate.openssl_in_use(), pytest.raises(RuntimeError):
        with fork_gate.forking():
            pass
    with fork_gate.forking():  # the gate is still usable
        pass
