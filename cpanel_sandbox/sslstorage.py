"""Users' SSL storage and installed Apache and service certificates (cpanel-api.md §4).

- per user: `~/ssl/keys/<key_id>.key`, `~/ssl/certs/<cert_id>.crt`, index `~/ssl/ssl.db` (JSON);
- installed on a vhost: `var/cpanel/ssl/apache_tls/<servername>/combined` (key, cert, chain);
- services: `var/cpanel/ssl/{cpanel,exim,dovecot,ftp}/…` (S1 Cpanel/SSLCerts.pm).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cpanel_sandbox import accounts, certs, layout

if TYPE_CHECKING:
    from cpanel_sandbox.uapi import Result

# ssl.db is read, changed and written back; the servers call in from many threads.
_DB_LOCK = threading.RLock()


def service_pem_path(root: Path) -> Path:
    """cpsrvd's certificate+key file (var/cpanel/ssl/cpanel/cpanel.pem): both in one file."""
    return layout.ssl_dir(root) / "cpanel" / "cpanel.pem"


def key_block(text: str) -> str:
    start = text.find("-----BEGIN ")
    while start != -1:
        end_marker = text.find("-----END ", start)
        end = text.find("-----", end_marker + 9) + 5 if end_marker != -1 else -1
        block = text[start:end] if end > start else ""
        if "PRIVATE KEY-----" in block.split("\n", 1)[0]:
            return block.strip() + "\n"
        start = text.find("-----BEGIN ", max(end, start + 1))
    return ""


# ---- installed on vhosts ------------------------------------------------------------------


def installed_combined(root: Path, servername: str) -> str | None:
    path = layout.apache_tls_dir(root, servername) / "combined"
    return layout.read_text(path) or None


def installed_for_name(root: Path, name: str) -> tuple[str, str] | None:
    """(certificate chain PEM: leaf first, key PEM) installed on the SSL vhost serving `name`,
    or None (the HTTPS site server then falls back to the service certificate)."""
    name = name.lower().rstrip(".")
    for vhost in accounts.site_vhosts(root):
        if name not in vhost.names:
            continue
        combined = installed_combined(root, vhost.servername)
        if combined:
            key, chain = key_block(combined), "".join(certs.split_certs(combined))
            if key and chain:
                return chain, key
    return None


def install(root: Path, user: str, servername: str, key: str, crt: str, cabundle: str) -> None:
    """Put key, certificate and chain on the vhost, as the `ssl` adminbin's ADD does."""
    folder = layout.apache_tls_dir(root, servername)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    chain = "".join(certs.split_certs(cabundle))
    combined = key.strip() + "\n" + crt.strip() + "\n" + chain
    layout.write_file(folder / "combined", combined, mode=0o600)
    layout.write_file(folder / "certificates", crt.strip() + "\n" + chain, mode=0o644)
    data = accounts.vhost_data(root, user, servername) or {}
    data.update({"port": 443, "sslengine": "on"})
    data["sslcertificatefile"] = str(folder / "combined")
    userdata = layout.userdata_dir(root, user) / f"{servername}_SSL"
    layout.write_file(userdata, layout.dump_yaml(data), mode=0o640, gid=_gid(root, user))


def uninstall(root: Path, user: str, servername: str) -> bool:
    folder = layout.apache_tls_dir(root, servername)
    existed = (folder / "combined").exists()
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        (layout.userdata_dir(root, user) / f"{servername}_SSL").unlink()
    return existed


def installed_servernames(root: Path, user: str) -> list[str]:
    return [
        s for s in accounts.vhost_servernames(root, user) if installed_combined(root, s) is not None
    ]


# ---- the user's storage ---------------------------------------------------------------------


def _gid(root: Path, user: str) -> int:
    entry = accounts.passwd_entry(root, user)
    return entry.gid if entry else -1


def _ssl_home(root: Path, user: str) -> tuple[Path, int, int]:
    entry = accounts.passwd_entry(root, user)
    if entry is None:
        raise layout.ApiError(f"The user “{user}” does not exist.")
    base = entry.home / "ssl"
    # Root writes here for the user (cPanel drops privileges instead): a link planted by the
    # user must not steer root's writes elsewhere.
    for path in (base, base / "keys", base / "certs", base / "ssl.db"):
        if path.is_symlink():
            raise layout.ApiError(f"“{path}” is a symbolic link.")
    return base, entry.uid, entry.gid


def _mkdir(path: Path, uid: int, gid: int) -> None:
    if path.is_symlink():
        raise layout.ApiError(f"“{path}” is a symbolic link.")
    if not path.is_dir():
        # Each missing folder (e.g. ~/ssl before ~/ssl/keys) belongs to the user, as on cPanel.
        if not path.parent.is_dir():
            _mkdir(path.parent, uid, gid)
        path.mkdir(mode=0o700, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(path, uid, gid)


def read_db(root: Path, user: str) -> dict[str, dict[str, Any]]:
    base, _, _ = _ssl_home(root, user)
    try:
        data = json.loads((base / "ssl.db").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    return {kind: dict(data.get(kind) or {}) for kind in ("key", "certificate", "csr")}


def _write_db(root: Path, user: str, db: dict[str, dict[str, Any]]) -> None:
    base, uid, gid = _ssl_home(root, user)
    _mkdir(base, uid, gid)
    text = json.dumps({"version": 3, **db}, indent=1, sort_keys=True)
    layout.write_file(base / "ssl.db", text, mode=0o600, uid=uid, gid=gid)


def save_key(root: Path, user: str, key_text: str, friendly_name: str) -> dict[str, Any]:
    """Store a key if not already there; returns its record (with `id`)."""
    with _DB_LOCK:
        key = certs.load_key(key_text)
        kid = certs.key_id(key.public_key())
        db = read_db(root, user)
        if kid not in db["key"]:
            base, uid, gid = _ssl_home(root, user)
            _mkdir(base / "keys", uid, gid)
            layout.write_file(
                base / "keys" / f"{kid}.key", certs.key_pem(key), mode=0o600, uid=uid, gid=gid
            )
            record = {"friendly_name": friendly_name, "created": int(time.time())}
            record.update(certs.public_key_facts(key.public_key()))
            db["key"][kid] = record
            _write_db(root, user, db)
        return {"id": kid, **db["key"][kid]}


def save_cert(root: Path, user: str, cert_text: str, friendly_name: str) -> dict[str, Any]:
    with _DB_LOCK:
        cert = certs.load_cert(cert_text)
        cid = certs.cert_id(cert)
        db = read_db(root, user)
        if cid not in db["certificate"]:
            base, uid, gid = _ssl_home(root, user)
            _mkdir(base / "certs", uid, gid)
            pem = certs.cert_pem(cert)
            layout.write_file(base / "certs" / f"{cid}.crt", pem, mode=0o644, uid=uid, gid=gid)
            facts = certs.cert_facts(cert)
            facts.pop("id")
            db["certificate"][cid] = {
                "friendly_name": friendly_name,
                "created": int(time.time()),
                **facts,
            }
            _write_db(root, user, db)
        return {"id": cid, **db["certificate"][cid]}


def stored_key_for(root: Path, user: str, cert_text: str) -> str | None:
    """The PEM of the stored key matching a certificate's public key."""
    cert = certs.load_cert(cert_text)
    kid = certs.key_id(cert.public_key())
    if kid not in read_db(root, user)["key"]:
        return None
    base, _, _ = _ssl_home(root, user)
    return layout.read_text(base / "keys" / f"{kid}.key") or None


def list_records(root: Path, user: str, kind: str) -> list[dict[str, Any]]:
    return [{"id": i, **rec} for i, rec in sorted(read_db(root, user)[kind].items())]


def delete_records(root: Path, user: str, kind: str, **search: str) -> list[dict[str, Any]]:
    """Remove the first record matching id or friendly_name; [] when nothing matches."""
    with _DB_LOCK:
        db = read_db(root, user)
        for rid, rec in sorted(db[kind].items()):
            if search.get("id") == rid or search.get("friendly_name") == rec.get("friendly_name"):
                del db[kind][rid]
                _write_db(root, user, db)
                base, _, _ = _ssl_home(root, user)
                path = (
                    base
                    / ("keys" if kind == "key" else "certs")
                    / (f"{rid}.key" if kind == "key" else f"{rid}.crt")
                )
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                return [{"id": rid, **rec}]
        return []


# ---- UAPI SSL:: functions (§2) ----------------------------------------------------------------


def installed_host(root: Path, user: str, servername: str) -> dict[str, Any] | None:
    """One installed_hosts entry (S2 fields, S1 extras docroot/domains/fqdns/mail_sni_status)."""
    combined = installed_combined(root, servername)
    data = accounts.vhost_data(root, user, servername)
    blocks = certs.split_certs(combined or "")
    if not blocks or data is None:
        return None
    main = accounts.main_data(root, user)
    return {
        "servername": servername,
        "ip": str(data.get("ip") or layout.SANDBOX_IP),
        "docroot": str(data.get("documentroot") or ""),
        "domains": accounts.vhost_domains(main, servername),
        "fqdns": sorted(accounts.vhost_names(main, servername, data)),
        "is_primary_on_ip": 0,
        "needs_sni": 1,
        "mail_sni_status": 1,
        "certificate_text": blocks[0],
        "certificate": certs.facts_for_pem(blocks[0]),
    }


def installed_hosts(root: Path, user: str, args: layout.Args, result: Result) -> None:
    hosts = [installed_host(root, user, s) for s in installed_servernames(root, user)]
    result.data = [h for h in hosts if h]
    result.metadata = {"transformed": 1}


def install_ssl(root: Path, user: str, args: layout.Args, result: Result) -> None:
    """S1 Cpanel/API/SSL.pm install_ssl + _install, with the ssl adminbin's ADD done in place."""
    cert_text = args.get("cert") or ""
    if not cert_text.strip():
        raise layout.ApiError("No 'cert' argument specified.")
    try:
        cert = certs.load_cert(cert_text)
    except certs.BadPEM as exc:
        raise layout.ApiError(
            f"The system could not parse the certificate because of an error: {exc}"
        ) from exc
    cert_names = certs.cert_domains(cert)
    domain = (args.get("domain") or (cert_names[0] if cert_names else "")).lower()
    domain = domain.removeprefix("www.")  # S1 _install strips a leading www.
    key_text = args.get("key") or ""
    if key_text.strip():
        try:
            key = certs.load_key(key_text)
        except certs.BadPEM as exc:
            raise layout.ApiError(
                f"The system could not parse the key because of an error: {exc}"
            ) from exc
        if not certs.same_public_key(cert, key):
            raise layout.ApiError("Certificate and key do not match.")
        key_text = certs.key_pem(key)
    else:
        key_text = stored_key_for(root, user, cert_text) or ""
        if not key_text:
            raise layout.ApiError("No key in your account matches the given certificate.")
    if not accounts.DOMAIN_RE.match(domain.removeprefix("*.")):
        raise layout.ApiError("Invalid host specified. Unable to continue.")
    key_rec = save_key(root, user, key_text, domain)
    cert_rec = save_cert(root, user, cert_text, domain)
    servername = accounts.vhost_for_name(root, user, domain)
    if servername is None:
        raise layout.ApiError(
            f"The certificate could not be installed on the domain “{domain}”.",
            f"The domain “{domain}” does not belong to the account “{user}”.",
        )
    action = "update" if installed_combined(root, servername) else "install"
    chain = "".join(certs.split_certs(args.get("cabundle") or ""))
    chain += "".join(certs.split_certs(cert_text)[1:])
    install(root, user, servername, key_text, certs.cert_pem(cert), chain)
    data = accounts.vhost_data(root, user, servername) or {}
    names = [servername, *str(data.get("serveralias") or "").split()]
    ip = str(data.get("ip") or layout.SANDBOX_IP)
    status = (
        f"The SSL certificate is now installed onto the domain “{domain}” using the IP address "
        f"“{ip}”. Apache is restarting in the background."
    )
    result.data = {
        "action": action,
        "cert_id": cert_rec["id"],
        "key_id": key_rec["id"],
        "domain": domain,
        "servername": servername,
        "user": user,
        "ip": ip,
        "aliases": names[1:],
        "working_domains": [n for n in names if certs.covers(cert_names, n)],
        "warning_domains": [n for n in names if not certs.covers(cert_names, n)],
        "extra_certificate_domains": [
            c for c in cert_names if not any(certs.covers([c], n) for n in names)
        ],
        "status": 1,
        "statusmsg": status,
        "message": status,
        "html": f"<br /><b>{status}</b>",
    }
    result.message(f"The certificate was successfully installed on the domain “{domain}”.")


def delete_ssl(root: Path, user: str, args: layout.Args, result: Result) -> None:
    domain = (args.get("domain") or accounts.cpuser(root, user).get("DNS", "")).lower()
    servername = accounts.vhost_for_name(root, user, domain)
    if servername is None or not uninstall(root, user, servername):
        why = "The domain does not have an SSL virtual host." if servername else "Unknown domain."
        raise layout.ApiError(f"Failed to remove SSL host for “{domain}”: {why}")
    result.message("The SSL host was successfully removed.")


def list_certs(root: Path, user: str, args: layout.Args, result: Result) -> None:
    domains = accounts.all_domains(root, user)
    www = [f"www.{d}" for d in domains]
    records = list_records(root, user, "certificate")
    for rec in records:
        rec["domain_is_configured"] = int(
            any(certs.covers(rec.get("domains") or [], n) for n in domains + www)
        )
    result.data = records


def list_keys(root: Path, user: str, args: layout.Args, result: Result) -> None:
    result.data = list_records(root, user, "key")


def _search(args: layout.Args) -> dict[str, str]:
    """S1 _get_search_args: id (no `/`, `|`, leading `.`) or friendly_name."""
    rid, name = args.get("id") or "", args.get("friendly_name") or ""
    if rid:
        if "/" in rid or "|" in rid or rid.startswith("."):
            raise layout.ApiError("The “id” parameter is invalid.")
        return {"id": rid}
    if name:
        return {"friendly_name": name}
    raise layout.ApiError("You must specify either the “id” or “friendly_name”.")


def delete_cert(root: Path, user: str, args: layout.Args, result: Result) -> None:
    deleted = delete_records(root, user, "certificate", **_search(args))
    result.data = deleted or None  # nothing to delete is not an error (S1 _delete)


def delete_key(root: Path, user: str, args: layout.Args, result: Result) -> None:
    deleted = delete_records(root, user, "key", **_search(args))
    result.data = deleted or None
