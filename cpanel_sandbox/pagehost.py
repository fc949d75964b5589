"""Runs a plugin CGI the way cpsrvd does (cpanel-api.md §5).

cPanel pages run as the logged-in user: a fork/exec that drops to the uid/gid in ROOT/etc/passwd
with no supplementary groups. WHM pages run as root with `REMOTE_USER` set to the WHM user. The
script must be a root-owned regular file, mode 0755, or cpsrvd refuses it. `.live.` scripts of
cPanel pages get a fresh LiveAPI socket in `CPANEL_CONNECT_SOCKET`. The request body goes to
stdin; the CGI's headers (`Status:`, `Location:`, `Content-Type`, others) are parsed and relayed;
a script that runs past the time limit is killed with its whole process group.

`SCRIPT_NAME` is the URL path without the `/cpsessNNNN` prefix (cpsrvd strips it before
dispatch); `cp_security_token` carries the prefix, so `cp_security_token + SCRIPT_NAME` is the
page's own URL. `LECP_ROOT` points the plugin at its files under the sandbox root.
"""

from __future__ import annotations

import contextlib
import html
import os
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path

from cpanel_sandbox import accounts, liveapi

DEFAULT_TIME_LIMIT = 120.0
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Headers cpsrvd does not hand to CGIs: credentials, and `Proxy` (httpoxy).
_HIDDEN_HEADERS = {"authorization", "proxy", "content-type", "content-length"}
# Process groups of the pages running now, so a stopping server leaves none behind.
_running: set[int] = set()
_running_lock = threading.Lock()


@dataclass(frozen=True)
class CgiRequest:
    script: Path  # the file on disk
    script_name: str  # URL path of the script, without the session prefix
    request_uri: str  # the full URL path and query as requested
    method: str
    query: str
    headers: Sequence[tuple[str, str]]
    body: bytes
    remote_user: str
    security_token: str  # "/cpsessNNNNNNNNNN"
    server_name: str
    server_port: int
    remote_addr: str
    remote_port: int
    path_info: str = ""
    run_as_user: bool = True  # False: a WHM page, run as root


@dataclass
class CgiResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def is_cgi(name: str) -> bool:
    return name.endswith(".cgi") or ".live." in name


def locate(base_dir: Path, url_path: str) -> tuple[Path, str] | None:
    """(file, PATH_INFO) for a URL path under a page folder, or None. The first path element
    that is a CGI file is the script and the rest is PATH_INFO; `..` never leaves the folder."""
    parts = [p for p in url_path.split("/") if p]
    if ".." in parts or "\0" in url_path:
        return None
    target = base_dir
    for i, part in enumerate(parts):
        target = target / part
        if is_cgi(part) and target.is_file():
            rest = parts[i + 1 :]
            return target, ("/" + "/".join(rest)) if rest else ""
    if target.is_dir():
        target = target / "index.html"
    return (target, "") if target.is_file() else None


def home_page(base_dir: Path, token: str, user: str, prefix: str = "/frontend/jupiter") -> bytes:
    """A stand-in for cPanel's (or WHM's) home: a link to every plugin page installed."""
    links = []
    for page in sorted(base_dir.glob("*/*.cgi")):
        href = html.escape(f"{token}{prefix}/{page.parent.name}/{page.name}")
        links.append(f'<li><a href="{href}">{html.escape(page.parent.name)}</a></li>')
    title = "cPanel" if prefix.startswith("/frontend") else "WHM"
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><h1>{title}</h1><p>Logged in as {html.escape(user)}.</p>"
        f"<ul id='plugins'>{''.join(links)}</ul></body></html>\n"
    ).encode()


def refusal(script: Path) -> str | None:
    """Why cpsrvd would refuse to run `script`, or None when it may run."""
    try:
        st = os.stat(script)
    except OSError:
        return "not found"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_uid != 0:
        return "not owned by root"
    if stat.S_IMODE(st.st_mode) != 0o755:
        return f"mode {stat.S_IMODE(st.st_mode):04o}, must be 0755"
    return None


def error_response(status: int, text: str) -> CgiResponse:
    phrase = HTTPStatus(status).phrase
    body = f"<html><head><title>{status} {phrase}</title></head><body><h1>{phrase}</h1>"
    body += f"<p>{text}</p></body></html>\n"
    return CgiResponse(status, [("Content-Type", "text/html; charset=utf-8")], body.encode())


def parse_cgi_output(output: bytes) -> CgiResponse:
    """A CGI's stdout as an HTTP response (RFC 3875 §6); malformed output is a 500."""
    cut = [i for i in (output.find(b"\r\n\r\n"), output.find(b"\n\n")) if i >= 0]
    if not cut:
        return error_response(500, "Premature end of script headers.")
    end = min(cut)
    sep = 4 if output[end : end + 4] == b"\r\n\r\n" else 2
    head, body = output[:end], output[end + sep :]
    status = 200
    headers: list[tuple[str, str]] = []
    has_location = has_status = False
    for raw in head.decode("latin-1").splitlines():
        if not raw.strip():
            continue
        name, colon, value = raw.partition(":")
        if not colon or not name.strip() or " " in name.strip():
            return error_response(500, "Malformed header from script.")
        name, value = name.strip(), value.strip()
        if name.lower() == "status":
            code = value.split(" ", 1)[0]
            if not code.isdigit() or not 100 <= int(code) < 600:
                return error_response(500, "Malformed Status header from script.")
            status, has_status = int(code), True
            continue
        if name.lower() == "location":
            has_location = True
        headers.append((name, value))
    if has_location and not has_status:
        status = 302
    return CgiResponse(status, headers, body)


def _environment(
    root: Path, req: CgiRequest, home: str, socket_path: Path | None
) -> dict[str, str]:
    path = SYSTEM_PATH
    cpanel_bin = root / "usr" / "local" / "cpanel" / "bin"
    if cpanel_bin.is_dir():
        path = f"{cpanel_bin}:{path}"
    env = {
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_SOFTWARE": "cpsrvd/11.120.0.16",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_NAME": req.server_name,
        "SERVER_PORT": str(req.server_port),
        "HTTPS": "on",
        "REMOTE_ADDR": req.remote_addr,
        "REMOTE_PORT": str(req.remote_port),
        "REMOTE_USER": req.remote_user,
        "REQUEST_METHOD": req.method,
        "REQUEST_URI": req.request_uri,
        "QUERY_STRING": req.query,
        "SCRIPT_FILENAME": str(req.script),
        "SCRIPT_NAME": req.script_name,
        "PATH_INFO": req.path_info,
        "CONTENT_LENGTH": str(len(req.body)) if req.body else "",
        "CONTENT_TYPE": "",
        "cp_security_token": req.security_token,
        "CPANEL": "1",
        "HOME": home,
        "USER": req.remote_user if req.run_as_user else "root",
        "PATH": path,
        "LECP_ROOT": str(root),
        "LANG": "C.UTF-8",
    }
    for name, value in req.headers:
        lower = name.lower()
        if lower == "content-type":
            env["CONTENT_TYPE"] = value
        if lower in _HIDDEN_HEADERS or not name.replace("-", "").isalnum():
            continue
        key = "HTTP_" + name.upper().replace("-", "_")
        env[key] = f"{env[key]}, {value}" if key in env else value
    if socket_path is not None:
        env["CPANEL_CONNECT_SOCKET"] = str(socket_path)
    return env


@contextlib.contextmanager
def _live_socket(
    root: Path, req: CgiRequest, uid: int, gid: int, folder: Path | None
) -> Iterator[Path | None]:
    if folder is None or ".live." not in req.script.name or not req.run_as_user:
        yield None
        return
    with liveapi.serving(root, req.remote_user, uid, gid, folder) as path:
        yield path


def run_cgi(
    root: Path,
    req: CgiRequest,
    *,
    liveapi_dir: Path | None,
    time_limit: float = DEFAULT_TIME_LIMIT,
) -> CgiResponse:
    """Run the script for one request and return what it answered (see the module docstring)."""
    why = refusal(req.script)
    if why is not None:
        print(f"pagehost: refusing {req.script}: {why}", file=sys.stderr)
        return error_response(403, "The script is not owned by root with mode 0755.")
    if req.run_as_user:
        entry = accounts.passwd_entry(root, req.remote_user)
        if entry is None or entry.uid == 0:
            return error_response(403, "This account cannot run plugin pages.")
        uid, gid, home = entry.uid, entry.gid, str(entry.home)
    else:
        uid, gid, home = 0, 0, "/root"
    with _live_socket(root, req, uid, gid, liveapi_dir) as socket_path:
        env = _environment(root, req, home, socket_path)
        # For cPanel pages: setgroups([]), setgid, setuid in the child between fork and exec.
        drop = req.run_as_user
        try:
            proc = subprocess.Popen(
                [str(req.script)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=str(req.script.parent),
                env=env,
                start_new_session=True,
                umask=0o022,
                user=uid if drop else None,
                group=gid if drop else None,
                extra_groups=[] if drop else None,
            )
        except OSError as exc:
            print(f"pagehost: cannot run {req.script}: {exc}", file=sys.stderr)
            return error_response(500, "The script could not be run.")
        with _running_lock:
            _running.add(proc.pid)
        try:
            out, err = proc.communicate(req.body, timeout=time_limit)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return error_response(504, "The script did not answer in time.")
        finally:
            with _running_lock:
                _running.discard(proc.pid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # whatever it left behind
    if err:
        _log_stderr(root, req.script, err)
    if not out and proc.returncode != 0:
        return error_response(500, f"The script exited with status {proc.returncode}.")
    return parse_cgi_output(out)


def kill_running_pages() -> None:
    """Kill every page still running (the server is stopping)."""
    with _running_lock:
        groups = list(_running)
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


def _log_stderr(root: Path, script: Path, err: bytes) -> None:
    """A CGI's stderr goes to cPanel's error_log, as cpsrvd does."""
    log = root / "usr" / "local" / "cpanel" / "logs" / "error_log"
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as fh:
            fh.write(f"[{script.name}] ".encode() + err.rstrip(b"\n") + b"\n")
    except OSError as exc:
        print(f"pagehost: cannot write {log}: {exc}", file=sys.stderr)
