"""The fork gate's rules (fork_gate.py): many TLS calls at once or one fork; a waiting fork
lets no new TLS call in; a thread's nested TLS calls never wait for a fork."""

from __future__ import annotations

import threading
import time

from letsencrypt_cpanel import fork_gate
from tests.fixtures.fork_gate_holder import held_elsewhere


def test_tls_calls_share_the_gate() -> None:
    with held_elsewhere(fork_gate.openssl_in_use, 0.3) as released:
        with fork_gate.openssl_in_use():
            assert released() == 0.0  # the other call is still in: no waiting between them


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

    def fork() -> None:
        with fork_gate.forking():
            order.append("fork")

    def late_call() -> None:
        with fork_gate.openssl_in_use():
            order.append("late call")

    forker = threading.Thread(target=fork)
    late = threading.Thread(target=late_call)
    with fork_gate.openssl_in_use():
        forker.start()
        time.sleep(0.1)  # the fork is waiting for this call
        late.start()
        time.sleep(0.1)  # the late call is waiting for the fork
        # Nested in a call already in: never waits for the waiting fork (it would wait forever).
        with fork_gate.openssl_in_use():
            order.append("nested")
    forker.join(5)
    late.join(5)
    assert order == ["nested", "fork", "late call"]
