"""The post-renewal hook (run only when root's alone) and the two ways mail leaves the server."""

from __future__ import annotations

import json
import os
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from letsencrypt_cpanel import fork_gate
from letsencrypt_cpanel.hooks import HookFailed, HookRefused, check_hook, run_hook
from letsencrypt_cpanel.mail_transport import MailError, SendmailTransport, SmtpTransport
from letsencrypt_cpanel.notify import FAILED, RENEWED, MailItem, compose
from tests.conftest import free_port
from tests.daemon.conftest import Mailbox
from tests.fixtures.fork_gate_holder import held_elsewhere
from tests.fixtures.pebble import _write_listener_certs

SUMMARY: dict[str, Any] = {"event": "renewed", "renewed": [{"user": "u", "vhost": "u.test"}]}


def _script(path: Path, body: str, mode: int = 0o700) -> Path:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(mode)
    return path


@pytest.fixture
def hook_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "hooks"
    folder.mkdir(mode=0o755)
    return folder


def test_hook_gets_the_summary_on_stdin(hook_dir: Path) -> None:
    out = hook_dir / "seen.json"
    hook = _script(hook_dir / "hook", f"cat > {out}; echo done; pwd")
    assert run_hook(str(hook), SUMMARY, timeout=10) == "done\n/"
    assert json.loads(out.read_text()) == SUMMARY


@pytest.mark.parametrize(
    "problem",
    ["group-writable", "other-writable", "not-root", "symlink", "not-executable", "open-folder"],
)
def test_unsafe_hooks_are_refused_and_not_run(hook_dir: Path, problem: str) -> None:
    ran = hook_dir / "ran"
    hook = _script(hook_dir / "hook", f"touch {ran}")
    path = hook
    if problem == "group-writable":
        hook.chmod(0o770)
    elif problem == "other-writable":
        hook.chmod(0o702)
    elif problem == "not-root":
        os.chown(hook, 4242, 4242)
    elif problem == "symlink":
        path = hook_dir / "link"
        path.symlink_to(hook)
    elif problem == "not-executable":
        hook.chmod(0o600)
    else:
        hook_dir.chmod(0o777)
    with pytest.raises(HookRefused):
        run_hook(str(path), SUMMARY, timeout=10)
    assert not ran.exists()


def test_sticky_root_folder_is_accepted_relative_path_is_not(hook_dir: Path) -> None:
    hook_dir.chmod(0o1777)
    hook = _script(hook_dir / "hook", "exit 0")
    assert check_hook(str(hook)) == hook
    with pytest.raises(HookRefused):
        check_hook("hook")


def test_failing_and_hanging_hooks_are_reported(hook_dir: Path) -> None:
    with pytest.raises(HookFailed, match="exit status 3: nope"):
        run_hook(str(_script(hook_dir / "bad", "echo nope; exit 3")), SUMMARY, timeout=10)
    with pytest.raises(HookFailed, match=r"longer than 0\.5 s"):
        run_hook(str(_script(hook_dir / "slow", "sleep 5")), SUMMARY, timeout=0.5)


def _message(to: str = "owner@mail.test", vhost: str = "site.test") -> Any:
    items = [MailItem(vhost, ("site.test", "www.site.test"), 1_800_000_000, "it broke\nBcc: x")]
    return compose(
        FAILED, to=to, sender="d@server.test", user="owner", hostname="server.test", items=items
    )


def test_compose_keeps_untrusted_text_out_of_headers() -> None:
    message = _message(vhost="evil.test\r\nBcc: victim@mail.test")
    assert message["Bcc"] is None
    assert "\n" not in message["Subject"] and "evil.test" in message["Subject"]
    body = message.get_content()
    assert "reason: it broke Bcc: x" in body and "expires on 2027-01-15" in body
    renewed = compose(
        RENEWED, to="a@b.test", sender="d@s.test", user="u", hostname="s.test",
        items=[MailItem("one.test"), MailItem("two.test")],
    )  # fmt: skip
    assert renewed["Subject"] == "[Let's Encrypt SSL] Certificate renewed for one.test and 1 more"


def test_sendmail_gets_the_message_on_stdin_and_no_address_in_argv(tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    fake = _script(tmp_path / "sendmail", f'echo "$@" > {seen}.argv; cat > {seen}.msg')
    SendmailTransport(str(fake)).send(_message())
    assert (tmp_path / "seen.argv").read_text() == "-t -i\n"
    assert "To: owner@mail.test" in (tmp_path / "seen.msg").read_text()
    failing = _script(tmp_path / "failing", "echo no MTA >&2; exit 75")
    with pytest.raises(MailError, match="exit status 75"):
        SendmailTransport(str(failing)).send(_message())


@pytest.fixture
def tls_smtp(tmp_path: Path) -> Iterator[tuple[Controller, Mailbox, str]]:
    ca, cert, key = _write_listener_certs(tmp_path / "smtp-certs")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"mailer",
            b"s3cret-pass",
        )
        return AuthResult(success=ok, handled=False)  # False: aiosmtpd answers 535

    mailbox = Mailbox()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=context,
        require_starttls=True,
        auth_require_tls=True,
        authenticator=authenticator,
    )
    controller.start()
    try:
        yield controller, mailbox, str(ca)
    finally:
        controller.stop()


def test_smtp_starttls_and_auth(tls_smtp: tuple[Controller, Mailbox, str]) -> None:
    controller, mailbox, ca = tls_smtp
    smtp = SmtpTransport(
        "127.0.0.1", controller.port, user="mailer", password="s3cret-pass", ca_bundle=ca
    )
    smtp.send(_message())
    assert [rcpts for rcpts, _ in mailbox.messages] == [["owner@mail.test"]]
    wrong = SmtpTransport(
        "127.0.0.1", controller.port, user="mailer", password="wrong-pass", ca_bundle=ca, timeout=10
    )
    with pytest.raises(MailError) as caught:
        wrong.send(_message())
    assert "wrong-pass" not in str(caught.value) and "mailer" in str(caught.value)
    untrusted = SmtpTransport("127.0.0.1", controller.port, user="mailer", password="x")
    with pytest.raises(MailError, match="could not be reached"):
        untrusted.send(_message())  # the server's certificate is not in the system's store
    assert "s3cret-pass" not in repr(smtp)


def test_smtp_tls_waits_for_a_worker_being_forked(
    tls_smtp: tuple[Controller, Mailbox, str],
) -> None:
    # The daemon mails from one thread while others fork workers (fork_gate.py).
    controller, mailbox, ca = tls_smtp
    smtp = SmtpTransport("127.0.0.1", controller.port, ca_bundle=ca)
    with held_elsewhere(fork_gate.forking, 0.4) as released:
        smtp.send(_message())
        assert time.time() >= released() > 0
    assert len(mailbox.messages) == 1
