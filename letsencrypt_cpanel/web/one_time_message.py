"""The message Home shows once after a redirect ("Issued ...", or what went wrong and why).

Kept 0600 in the user's nvdata folder, not in the URL: a message in a URL could be forged by
a link someone sends the user, and would stay in the browser history.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .nvdata_files import NvdataFolder

MESSAGE_FILE = "letsencrypt-cpanel.page-message"
KINDS = ("success", "error")


@dataclass(frozen=True)
class Message:
    kind: str  # "success" or "error"
    text: str


def leave(folder: NvdataFolder, kind: str, text: str) -> None:
    folder.write(MESSAGE_FILE, json.dumps({"kind": kind, "text": text}).encode("utf-8"))


def take(folder: NvdataFolder) -> Message | None:
    """The message left for this user, removed as it is read."""
    raw = folder.read(MESSAGE_FILE)
    if raw is None:
        return None
    folder.remove(MESSAGE_FILE)
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("kind") not in KINDS:
        return None
    return Message(str(data["kind"]), str(data.get("text") or ""))
