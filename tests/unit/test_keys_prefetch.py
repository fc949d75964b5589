"""A key being made ahead of time (keys.prefetch_private_key) survives a fork: `le-cp ssl issue`
starts it in root and its worker, a fork, takes it. Threads do not cross a fork, so the fork
waits for the key; without that the child would wait for it forever."""

from __future__ import annotations

import os
import signal

from letsencrypt_cpanel import keys


def test_a_fork_waits_for_the_key_being_made_and_the_child_takes_it() -> None:
    keys.prefetch_private_key("rsa:4096")  # long enough to be unfinished at the fork
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: at most 20 s, then it reports a hang by its signal
        try:
            os.close(read_fd)
            signal.alarm(20)
            future = keys._ahead.get("rsa:4096")
            ready = future is not None and future.done()
            pem = keys.generate_private_key("rsa:4096")
            os.write(write_fd, f"{ready} {keys.key_type_of(pem)}".encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    _, status = os.waitpid(pid, 0)
    said = os.read(read_fd, 100).decode()
    os.close(read_fd)
    assert os.waitstatus_to_exitcode(status) == 0, "the child hung waiting for the key"
    assert said == "True rsa:4096"
    keys._ahead.clear()
