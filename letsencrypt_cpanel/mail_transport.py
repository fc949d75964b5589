"""Getting a composed message out: the local MTA (`sendmail -t -i`) or an SMTP server.

`sendmail -t` takes the recipients from the message's headers and the message on stdin, so no
address ever goes on a command line. SMTP: STARTTLS (or implicit TLS on port 465) verified
against the system's trust store or `smtp_ca_bundle`, then AUTH when a user is configured; the
password comes from the secrets file and never appears in a log or an error.
"""

from __future__ import annotations

import smtplib
import ssl
import subprocess
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Protocol

from .config import Secrets, Settings
from .errors import Error
from .fork_gate import openssl_in_use

SEND_TIMEOUT = 60.0


class MailError(Error):
    """A message could not be handed to the MTA or the SMTP server."""


class MailTransport(Protocol):
    def send(self, message: EmailMessage) -> None:
        """Hand `message` over for delivery, or raise MailError."""


@dataclass(frozen=True)
class SendmailTransport:
    path: str = "/usr/sbin/sendmail"
    timeout: float = SEND_TIMEOUT

    def send(self, message: EmailMessage) -> None:
        try:
            proc = subprocess.run(
                [self.path, "-t", "-i"],
                input=message.as_bytes(),
                capture_output=True,
                timeout=self.timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise MailError(f"The local mail program {self.path} could not be run: {exc}") from exc
        if proc.returncode != 0:
            said = proc.stderr.decode("utf-8", "replace").strip()[:300]
            raise MailError(
                f"The local mail program {self.path} refused the message "
                f"(exit status {proc.returncode}): {said or 'no reason given'}"
            )


@dataclass(frozen=True)
class SmtpTransport:
    host: str
    port: int = 587
    user: str = ""
    password: str = field(default="", repr=False)
    starttls: bool = True
    ca_bundle: str = ""
    timeout: float = SEND_TIMEOUT

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_bundle or None)

    def _deliver(self, smtp: smtplib.SMTP, message: EmailMessage) -> None:
        with smtp:
            smtp.ehlo()
            if self.starttls and self.port != 465:
                smtp.starttls(context=self._tls())
                smtp.ehlo()
            if self.user:
                smtp.login(self.user, self.password)
            smtp.send_message(message)

    def send(self, message: EmailMessage) -> None:
        where = f"{self.host}:{self.port}"
        # The TLS part is one of root's TLS calls (fork_gate.py): no worker is forked meanwhile.
        # STARTTLS: the TCP connection and greeting come first, outside, so an unreachable
        # server never holds the gate; implicit TLS (465) is TLS from the first byte.
        try:
            if self.port == 465:
                with openssl_in_use():
                    tls = smtplib.SMTP_SSL(
                        self.host, self.port, timeout=self.timeout, context=self._tls()
                    )
                    self._deliver(tls, message)
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
                with openssl_in_use():
                    self._deliver(smtp, message)
        except smtplib.SMTPAuthenticationError as exc:
            # The server's answer, not ours: it never holds the password.
            raise MailError(f"The SMTP server {where} refused the login {self.user!r}") from exc
        except smtplib.SMTPException as exc:
            raise MailError(f"The SMTP server {where} refused the message: {exc}") from exc
        except (OSError, ssl.SSLError) as exc:
            raise MailError(f"The SMTP server {where} could not be reached: {exc}") from exc


def build_transport(settings: Settings, secrets: Secrets) -> MailTransport:
    """SMTP when `smtp_host` is set, else the local MTA."""
    if settings.smtp_host:
        return SmtpTransport(
            host=settings.smtp_host,
            port=settings.smtp_port,
            user=settings.smtp_user,
            password=secrets.smtp_password,
            starttls=settings.smtp_starttls,
            ca_bundle=settings.smtp_ca_bundle,
        )
    return SendmailTransport(settings.sendmail_path)
