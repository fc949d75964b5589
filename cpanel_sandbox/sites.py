"""The users' websites: what Apache serves on a cPanel server, reduced to what the plugin touches.

HTTP serves each vhost's docroot by the Host header (Pebble fetches http-01 tokens here) with
static files only, and honours `Redirect`/`RedirectMatch` lines of `.htaccess` files (mod_alias),
so a test can build a site whose challenge path redirects elsewhere. HTTPS picks the certificate by
SNI on every handshake from what is installed now, so an `install_ssl` shows at once; names with
nothing installed get cPanel's self-signed service certificate, as Apache's default vhost does.
Accounts are re-read on every request: a user added while the server runs is served at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import json
import mimetypes
import os
import posixpath
import re
import shutil
import socket
import ssl
import sys
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cpanel_sandbox import accounts, layout, sslstorage

HANDSHAKE_TIMEOUT = 10.0
_REDIRECT_STATUS = {"permanent": 301, "temp": 302, "seeother": 303, "gone": 410}


def redact(path: str) -> str:
    """A request path fit for a log line: no query string, no session token."""
    path = path.split("?", 1)[0]
    return re.sub(r"/cpsess\d+", "/cpsess…", path)


class QuietHandlerMixin:
    """Request logging without query strings or session tokens (they may carry secrets)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        handler: Any = self
        method = getattr(handler, "command", None) or "-"
        path = redact(getattr(handler, "path", "") or "-")
        sys.stderr.write(f"{handler.server.name}: {method} {path} {code}\n")

    def log_message(self, format: str, *args: Any) -> None:
        # Error lines quote the raw request line: drop every query string and session token.
        text = re.sub(r"\?[^\s'\"]*", "?…", format % args)
        text = re.sub(r"/cpsess\d+", "/cpsess…", text)
        name = getattr(getattr(self, "server", None), "name", "sandbox")
        sys.stderr.write(f"{name}: {text}\n")


class LoopbackHTTPServer(ThreadingHTTPServer):
    """A threaded server on 127.0.0.1 whose handler threads die with the process."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, port: int, handler: type[BaseHTTPRequestHandler], root: Path, name: str):
        self.root = root
        self.name = name
        super().__init__(("127.0.0.1", port), handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        # BaseHTTPRequestHandler writes the headers, then the body: with Nagle on, the body
        # waits for the client's delayed ACK, 40 ms a reply (bench/ saw five a `le-cp` issue).
        request, address = super().get_request()
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return request, address

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class TLSHTTPServer(LoopbackHTTPServer):
    """HTTPS: the TLS handshake runs in the connection's own thread, never in the accept loop,
    and the context is asked for per connection so a renewed certificate is used at once."""

    def __init__(
        self,
        port: int,
        handler: type[BaseHTTPRequestHandler],
        root: Path,
        name: str,
        context_for_connection: Callable[[], ssl.SSLContext],
    ):
        self.context_for_connection = context_for_connection
        super().__init__(port, handler, root, name)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(HANDSHAKE_TIMEOUT)
        try:
            tls = self.context_for_connection().wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)  # type: ignore[arg-type]
        finally:
            with contextlib.suppress(OSError):
                tls.close()


def server_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def service_pem_path(root: Path) -> Path:
    """cpsrvd's certificate and key, in one file (cpanel-api.md §4 service certs)."""
    return layout.ssl_dir(root) / "cpanel" / "cpanel.pem"


class ServiceCertificate:
    """cpsrvd's certificate+key file, reloaded when it changes, so a new one shows at once."""

    def __init__(self, root: Path):
        self.path = service_pem_path(root)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._context: ssl.SSLContext | None = None

    def context(self) -> ssl.SSLContext:
        st = self.path.stat()
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            if self._context is None or stamp != self._stamp:
                ctx = server_context()
                ctx.load_cert_chain(str(self.path))  # the file holds both key and certificate
                self._context, self._stamp = ctx, stamp
            return self._context


class PemContexts:
    """SSL contexts for PEM strings. The ssl module loads only from files, so the PEM goes
    through a root-only temp folder for the moment of loading; contexts are cached by content."""

    def __init__(self, limit: int = 64):
        self._dir = tempfile.mkdtemp(prefix="cpanel-sandbox-tls-")
        self._cache: OrderedDict[str, ssl.SSLContext] = OrderedDict()
        self._lock = threading.Lock()
        self._limit = limit

    def get(self, chain_pem: str, key_pem: str) -> ssl.SSLContext:
        digest = hashlib.sha256(f"{chain_pem}\0{key_pem}".encode()).hexdigest()
        with self._lock:
            ctx = self._cache.get(digest)
            if ctx is not None:
                self._cache.move_to_end(digest)
                return ctx
            path = Path(self._dir) / f"{digest}.pem"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(key_pem.strip() + "\n" + chain_pem.strip() + "\n")
                ctx = server_context()
                ctx.load_cert_chain(str(path))
            finally:
                path.unlink(missing_ok=True)
            self._cache[digest] = ctx
            if len(self._cache) > self._limit:
                self._cache.popitem(last=False)
            return ctx

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)


class SiteCertificates:
    """Chooses, per TLS handshake, the installed certificate for the SNI name."""

    def __init__(self, root: Path, service: ServiceCertificate):
        self.root = root
        self.service = service
        self.pems = PemContexts()
        self._lock = threading.Lock()
        self._selecting: ssl.SSLContext | None = None
        self._selecting_for: ssl.SSLContext | None = None

    def _pick(self, sslobj: ssl.SSLObject | ssl.SSLSocket, name: str | None, _: Any) -> None:
        try:
            installed = sslstorage.installed_for_name(self.root, name.lower()) if name else None
            sslobj.context = (
                self.pems.get(*installed) if installed is not None else self.service.context()
            )
        # A broken install must not kill the handshake: fall back as Apache's default vhost does.
        except Exception as exc:
            print(f"sites: no certificate for {name!r}: {exc}", file=sys.stderr)
            sslobj.context = self.service.context()

    def context(self) -> ssl.SSLContext:
        # The base context serves clients without SNI; the callback swaps it for SNI names.
        base = self.service.context()
        with self._lock:
            if self._selecting is None or self._selecting_for is not base:
                selecting = server_context()
                selecting.load_cert_chain(str(self.service.path))
                selecting.sni_callback = self._pick
                self._selecting, self._selecting_for = selecting, base
            return self._selecting


def request_args(query: str, body: bytes, content_type: str) -> dict[str, list[str]]:
    """A request's GET query and POST body together, as cpsrvd merges them, in the shape of
    `parse_qs(keep_blank_values=True)`. A JSON object body (Personalization) is flattened."""
    args = parse_qs(query, keep_blank_values=True)
    ctype = content_type.split(";", 1)[0].strip().lower()
    if body and ctype == "application/json":
        with contextlib.suppress(ValueError):
            decoded = json.loads(body)
            if isinstance(decoded, dict):
                for key, value in decoded.items():
                    values = value if isinstance(value, list) else [value]
                    args.setdefault(str(key), []).extend(
                        v if isinstance(v, str) else json.dumps(v) for v in values
                    )
    elif body:
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        for key, values in form.items():
            args.setdefault(key, []).extend(values)
    return args


DEFAULT_DOCROOT = "usr/local/apache/htdocs"


def find_vhost(root: Path, host: str) -> accounts.SiteVhost | None:
    """The user vhost serving `host`; else Apache's default vhost (the hostname's, docroot
    /usr/local/apache/htdocs) when that folder exists, as on a cPanel server."""
    name = host.strip().lower().rstrip(".")
    if name.startswith("["):
        return None
    name = name.rsplit(":", 1)[0] if ":" in name else name
    # The owner first, from cPanel's own domain map (every request used to parse every vhost of
    # every account: with 200 vhosts AutoSSL's thousands of fetches crawled; bench/); the full
    # scan stays for names the map does not lead to.
    owner = _owner_of(root, name)
    for users in ([owner] if owner else [], None):
        for vhost in accounts.site_vhosts(root, users=users):
            if name == vhost.servername.lower() or name in (n.lower() for n in vhost.names):
                return vhost
    default = root / DEFAULT_DOCROOT
    if name and default.is_dir():
        return accounts.SiteVhost(accounts.hostname(root), (name,), default, "nobody")
    return None


def _owner_of(root: Path, name: str) -> str | None:
    """The account /etc/userdomains names for `name` or its parent domains (www., mail., ...)."""
    owners = layout.parsed(layout.userdomains_file(root), "colon-map", layout.parse_colon_map)
    labels = name.split(".")
    for i in range(len(labels) - 1):
        owner = owners.get(".".join(labels[i:]))
        if owner and owner != "nobody":
            return owner
    return None


def _substitute(target: str, match: re.Match[str]) -> str:
    # Apache writes back-references as $1..$9; a literal `$` is not escaped in practice.
    return re.sub(r"\$(\d)", lambda m: match.group(int(m.group(1))) or "", target)


def _parse_redirect(line: str) -> tuple[str, int, str, str | None] | None:
    """(kind, status, pattern, target) of a mod_alias line, or None."""
    parts = line.split()
    if not parts:
        return None
    directive = parts[0].lower()
    kinds = {
        "redirect": ("prefix", None),
        "redirectmatch": ("regex", None),
        "redirectpermanent": ("prefix", 301),
        "redirecttemp": ("prefix", 302),
    }
    if directive not in kinds:
        return None
    kind, status = kinds[directive]
    args = [a.strip("\"'") for a in parts[1:]]
    if status is None:
        status = 302
        if args and (args[0].lower() in _REDIRECT_STATUS or args[0].isdigit()):
            word = args.pop(0).lower()
            status = _REDIRECT_STATUS.get(word) or int(word)
    if not args:
        return None
    target = args[1] if len(args) > 1 else None
    return kind, status, args[0], target


def htaccess_redirect(docroot: Path, url_path: str) -> tuple[int, str | None] | None:
    """(status, Location) when a `.htaccess` on the way from the docroot to `url_path` redirects
    it with mod_alias (`Redirect [status] /path URL`, `RedirectMatch [status] regex URL`)."""
    folders = [docroot]
    for part in [p for p in url_path.split("/") if p][:-1]:
        folders.append(folders[-1] / part)
    for folder in folders:
        try:
            text = (folder / ".htaccess").read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for raw in text.splitlines():
            parsed = _parse_redirect(raw.strip())
            if parsed is None:
                continue
            kind, status, pattern, target = parsed
            if kind == "prefix":
                prefix = pattern.rstrip("/")
                if url_path == pattern or url_path.startswith(prefix + "/") or prefix == "":
                    rest = url_path[len(prefix) :] if prefix else url_path
                    location = None if target is None else target.rstrip("/") + rest
                    if target is not None and rest == "" and target.endswith("/"):
                        location = target
                    return status, location
            else:
                try:
                    match = re.search(pattern, url_path)
                except re.error:
                    continue
                if match:
                    return status, None if target is None else _substitute(target, match)
    return None


class SiteHandler(QuietHandlerMixin, BaseHTTPRequestHandler):
    server: LoopbackHTTPServer
    server_version = "Apache"
    sys_version = ""
    timeout = 30

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def _reply(self, status: int, body: bytes, ctype: str, head: bool, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _not_found(self, head: bool) -> None:
        body = b"<!DOCTYPE html><html><head><title>404 Not Found</title></head><body>"
        body += b"<h1>Not Found</h1><p>The requested URL was not found on this server.</p>"
        body += b"</body></html>\n"
        self._reply(404, body, "text/html; charset=iso-8859-1", head)

    def _serve(self, head: bool) -> None:
        vhost = find_vhost(self.server.root, self.headers.get("Host", ""))
        url_path = unquote(urlsplit(self.path).path) or "/"
        normalized = posixpath.normpath(url_path)
        if vhost is None or not url_path.startswith("/") or "\0" in url_path:
            self._not_found(head)
            return
        if normalized.startswith("//"):
            normalized = "/" + normalized.lstrip("/")
        redirect = htaccess_redirect(vhost.docroot, url_path)
        if redirect is not None:
            status, location = redirect
            headers = {"Location": location} if location else {}
            link = html.escape(location or "")
            page = f'<html><body>Moved: <a href="{link}">here</a></body></html>\n'
            self._reply(status, page.encode(), "text/html; charset=iso-8859-1", head, **headers)
            return
        target = vhost.docroot / normalized.lstrip("/")
        if target.is_dir():
            target = target / "index.html"
        docroot = vhost.docroot.resolve()
        try:
            resolved = target.resolve()
            inside = resolved == docroot or docroot in resolved.parents
            if not inside or not resolved.is_file() or resolved.name == ".htaccess":
                raise FileNotFoundError(target)
            body = resolved.read_bytes()
        except OSError:
            self._not_found(head)
            return
        ctype = mimetypes.guess_type(resolved.name)[0] or "text/plain"
        self._reply(200, body, ctype, head)


def make_site_servers(
    root: Path, http_port: int, https_port: int, service: ServiceCertificate
) -> tuple[LoopbackHTTPServer, TLSHTTPServer, SiteCertificates]:
    """The HTTP and HTTPS servers of the users' sites (not yet serving)."""
    certificates = SiteCertificates(root, service)
    http = LoopbackHTTPServer(http_port, SiteHandler, root, "sites-http")
    try:
        https = TLSHTTPServer(https_port, SiteHandler, root, "sites-https", certificates.context)
    except BaseException:
        http.server_close()
        raise
    return http, https, certificates
