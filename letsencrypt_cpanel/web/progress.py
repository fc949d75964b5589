"""Which step an issue is on, for the page's live progress.

The request that issues writes a small JSON file (0600, in the user's nvdata folder) at every
step the issuance code reports; the page's JavaScript polls `?action=progress`, which reads it.
Without JavaScript nobody polls and the form POST simply waits for the result.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from .nvdata_files import NvdataFolder

PROGRESS_FILE = "letsencrypt-cpanel.progress"
BUSY_LOCK = "letsencrypt-cpanel.page.lock"

# The issuance code's step names (issuance.py, acme_client.py) in the words the page shows.
STEP_TEXTS = {
    "starting": "Starting",
    "checking names": "Checking the names with cPanel",
    "contacting the certificate authority": "Contacting the certificate authority",
    "making the key": "Making the private key",
    "order": "Ordering the certificate",
    "finalizing": "Getting the certificate signed",
    "downloading": "Downloading the certificate",
    "installing": "Installing the certificate on your website",
    "installing the saved certificate": "Installing the saved certificate on your website",
    "revoking": "Revoking the certificate at the certificate authority",
    "the site does not answer http-01: validating through DNS instead": (
        "Your website did not answer the check over HTTP: proving control through its DNS "
        "zone on this server instead"
    ),
    "done": "Done",
    "failed": "Stopped",
}
# A file this old belongs to a request that died; it is not shown as running.
STALE_AFTER = 600


def step_text(step: str) -> str:
    if step.startswith("validating "):
        return f"Proving you control {step.removeprefix('validating ')}"
    return STEP_TEXTS.get(step, step)


class ProgressFile:
    """The progress of this user's issue in flight (one at a time: the page's busy lock)."""

    def __init__(self, folder: NvdataFolder) -> None:
        self.folder = folder
        self.vhost = ""
        self.steps: list[str] = []
        self.started = 0.0

    def start(self, vhost: str) -> None:
        self.vhost, self.steps, self.started = vhost, [], time.time()
        self.step("starting")

    def step(self, step: str) -> None:
        self.steps.append(step)
        self._write(finished=step in ("done", "failed"))

    def _write(self, *, finished: bool) -> None:
        data = {
            "vhost": self.vhost,
            "step": self.steps[-1] if self.steps else "",
            "steps": [step_text(s) for s in self.steps],
            "started": int(self.started),
            "updated": int(time.time()),
            "finished": finished,
            "pid": os.getpid(),
        }
        self.folder.write(PROGRESS_FILE, json.dumps(data).encode("utf-8"))

    def read(self, vhost: str) -> dict[str, Any]:
        """What the page shows for `vhost`: {"running", "step", "text", "steps", "seconds"}."""
        raw = self.folder.read(PROGRESS_FILE)
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {}
        if not isinstance(data, dict) or data.get("vhost") != vhost:
            return {"running": False, "step": "", "text": "", "steps": [], "seconds": 0}
        updated = data.get("updated") if isinstance(data.get("updated"), int) else 0
        started = data.get("started") if isinstance(data.get("started"), int) else 0
        running = (
            not data.get("finished")
            and time.time() - float(updated or 0) < STALE_AFTER
            and _alive(data.get("pid"))
        )
        steps = [s for s in data.get("steps") or [] if isinstance(s, str)]
        step = str(data.get("step") or "")
        return {
            "running": running,
            "step": step,
            "text": step_text(step),
            "steps": steps,
            "seconds": max(0, int(time.time()) - int(started or 0)),
        }


def _alive(pid: object) -> bool:
    """Whether the request that wrote the file still runs (cpsrvd kills a page that runs too
    long; its file then says "working" forever)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # some other process has the number now; the age check still applies
    return True
