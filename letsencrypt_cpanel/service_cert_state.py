"""Root's own record for the service (hostname) certificate: `service-cert.json` in the state dir.

Root's ACME account (per directory URL) lives here, never in a user's record: the service
certificate is the server's, not an account's. The last issued certificate and its key are kept
the moment they exist, so a failed install is retried from the saved copy instead of ordering
again (as issuance.py does for users). The file is JSON, 0600, in the 0700 state folder, written
atomically (temp file, fsync, rename).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .config import Settings
from .errors import Error

FILE_NAME = "service-cert.json"


class ServiceStateError(Error):
    """Root's service-certificate record cannot be read or written."""


@dataclass
class RootAccount:
    directory: str
    key_pem: str = field(repr=False)
    url: str


@dataclass
class SavedCertificate:
    names: list[str]
    key_pem: str = field(repr=False)
    cert_pem: str = field(repr=False)
    chain_pem: str = field(repr=False)
    not_before: int
    not_after: int
    directory: str
    issued_at: int


@dataclass
class ServiceCertState:
    accounts: dict[str, RootAccount] = field(default_factory=dict)
    current: SavedCertificate | None = None
    last_attempt: int = 0
    last_result: str = ""
    last_error: str = ""
    failures: int = 0
    failure_mailed_at: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ServiceCertState:
        data: dict[str, Any] = json.loads(text) if text.strip() else {}
        if not isinstance(data, dict):
            raise ValueError("not an object")
        accounts = {
            str(k): RootAccount(**v)
            for k, v in (data.get("accounts") or {}).items()
            if isinstance(v, dict)
        }
        current = data.get("current")
        return cls(
            accounts=accounts,
            current=SavedCertificate(**current) if isinstance(current, dict) else None,
            last_attempt=int(data.get("last_attempt") or 0),
            last_result=str(data.get("last_result") or ""),
            last_error=str(data.get("last_error") or ""),
            failures=int(data.get("failures") or 0),
            failure_mailed_at=int(data.get("failure_mailed_at") or 0),
        )


def state_path(settings: Settings) -> Path:
    return settings.state_dir / FILE_NAME


def load_state(settings: Settings) -> ServiceCertState:
    """The record, or an empty one when there is none. Raises ServiceStateError."""
    path = state_path(settings)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return ServiceCertState()
    except OSError as exc:
        raise ServiceStateError(f"{path} cannot be read: {exc.strerror}") from exc
    with os.fdopen(fd, encoding="utf-8") as fh:
        text = fh.read()
    try:
        return ServiceCertState.from_json(text)
    except (ValueError, TypeError) as exc:
        raise ServiceStateError(f"{path} is damaged ({exc}); move it aside to start anew") from exc


def save_state(settings: Settings, state: ServiceCertState) -> None:
    folder = settings.state_dir
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{FILE_NAME}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(state.to_json())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, state_path(settings))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
