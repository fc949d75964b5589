"""The post-renewal hook: an executable the admin configures, run as root after a cycle that
renewed something, with a JSON summary on stdin (prior-art §1.6 `hook_post_renewal`).

It runs as root, so it must be root's alone: a regular file owned by root, executable, not
writable by group or others, in folders that only root can change (a sticky folder such as /tmp
is accepted when the entry in it is root's). Anything else is refused, not run. The summary
holds no private key: who, which website, which names, until when.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

from .errors import Error
from .impersonate import JSONValue

MAX_OUTPUT = 4000


class HookRefused(Error):
    """The configured hook is not safe to run as root, or does not exist."""


class HookFailed(Error):
    """The hook ran and failed (exit status, timeout)."""


def _check_owned_by_root(path: Path, st: os.stat_result, what: str) -> None:
    if st.st_uid != 0:
        raise HookRefused(f"The post-renewal hook's {what} {path} is not owned by root.")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise HookRefused(
            f"The post-renewal hook's {what} {path} is writable by group or others (chmod go-w it)."
        )


def check_hook(path_text: str) -> Path:
    """The hook's path when it is safe to run as root; raises HookRefused saying why not."""
    path = Path(path_text)
    if not path.is_absolute():
        raise HookRefused(f"The post-renewal hook {path_text!r} must be an absolute path.")
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise HookRefused(f"The post-renewal hook {path} cannot be found: {exc.strerror}.") from exc
    if stat.S_ISLNK(st.st_mode):
        raise HookRefused(f"The post-renewal hook {path} is a symbolic link; name the file itself.")
    if not stat.S_ISREG(st.st_mode):
        raise HookRefused(f"The post-renewal hook {path} is not a regular file.")
    _check_owned_by_root(path, st, "file")
    if not st.st_mode & stat.S_IXUSR:
        raise HookRefused(f"The post-renewal hook {path} is not executable (chmod u+x it).")
    for folder in path.parents:
        try:
            fst = os.lstat(folder)
        except OSError as exc:
            raise HookRefused(f"The folder {folder} cannot be read: {exc.strerror}.") from exc
        if stat.S_ISLNK(fst.st_mode):
            raise HookRefused(
                f"The post-renewal hook's folder {folder} is a symbolic link; name the real path."
            )
        if fst.st_mode & stat.S_ISVTX and fst.st_uid == 0:
            # Sticky and root's (e.g. /var/tmp): others cannot rename root's entries in it.
            continue
        _check_owned_by_root(folder, fst, "folder")
    return path


def run_hook(path_text: str, summary: dict[str, JSONValue], *, timeout: float) -> str:
    """Run the hook with `summary` as JSON on stdin; return what it printed (bounded).

    Raises HookRefused (not run) or HookFailed. The hook gets a minimal environment, `/` as its
    working folder and no other open files."""
    path = check_hook(path_text)
    data = json.dumps(summary, indent=2, sort_keys=True).encode("utf-8")
    try:
        proc = subprocess.run(
            [str(path)],
            input=data,
            capture_output=True,
            timeout=timeout,
            cwd="/",
            env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
            check=False,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired as exc:
        raise HookFailed(f"The post-renewal hook {path} took longer than {timeout:g} s.") from exc
    except OSError as exc:
        raise HookFailed(f"The post-renewal hook {path} could not start: {exc.strerror}.") from exc
    output = (proc.stdout + proc.stderr).decode("utf-8", "replace").strip()[:MAX_OUTPUT]
    if proc.returncode != 0:
        raise HookFailed(
            f"The post-renewal hook {path} ended with exit status {proc.returncode}: "
            f"{output or 'no output'}"
        )
    return output
