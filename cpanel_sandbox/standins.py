"""The stand-in cPanel server's fixed parts: the skeleton `init` lays down, the service
certificates (cpanel-api.md §4 SSL storage, S1 Cpanel/SSLCerts.pm), and stand-ins for the cPanel
scripts the installer calls (§5), which record what they were asked in sandbox-commands.log.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from cpanel_sandbox import certs, layout, sslstorage

REPO = Path(__file__).resolve().parent.parent
RESTART_SERVICES = ("httpd", "cpsrvd", "chkservd", "exim", "dovecot", "ftpd")
SCRIPTS = {
    "scripts/install_plugin": "install_plugin",
    "scripts/uninstall_plugin": "uninstall_plugin",
    "bin/register_appconfig": "register_appconfig",
    "bin/unregister_appconfig": "unregister_appconfig",
    **{f"scripts/restartsrv_{s}": f"restartsrv_{s}" for s in RESTART_SERVICES},
}
LAUNCHER = """#!{python}
# cpanel_sandbox stand-in: ROOT is four folders up from this file.
import sys
from pathlib import Path

sys.path.insert(0, {repo!r})
from cpanel_sandbox import {module}

raise SystemExit({module}.{call}(Path(__file__).resolve().parents[4], {name!r}, sys.argv[1:]))
"""


def build_skeleton(root: Path, hostname: str = "server.sandbox.test") -> None:
    """Folders and files of an empty cPanel server; existing files are left as they are."""
    for name in ["etc", "home", "var/cpanel/users", "var/cpanel/features", "var/named"]:
        (root / name).mkdir(parents=True, exist_ok=True)
    for folder in [root, root / "home", root / "etc", root / "var", layout.cpanel_var(root)]:
        os.chmod(folder, 0o755)  # noqa: S103 - every uid must traverse a sandbox root
    (layout.cpanel_var(root) / "userdata").mkdir(mode=0o711, exist_ok=True)
    defaults: list[tuple[Path, str, int]] = [
        (layout.hostname_file(root), hostname + "\n", 0o644),
        (layout.passwd_file(root), "root:x:0:0:root:/root:/bin/bash\n", 0o644),
        (layout.group_file(root), "root:x:0:\n", 0o644),
        (layout.userdatadomains_file(root), "", 0o640),  # root-only on cPanel (§4)
        (layout.trueuserdomains_file(root), "", 0o644),
        (layout.userdomains_file(root), "*: nobody\n", 0o644),
        (layout.resellers_file(root), "", 0o644),
        (layout.feature_list_file(root, "default"), "sslinstall=1\nsslmanager=1\n", 0o644),
    ]
    for path, text, mode in defaults:
        if not path.exists():
            layout.write_file(path, text, mode=mode)
    ensure_service_certs(root, layout.read_text(layout.hostname_file(root)).strip())
    install_scripts(root)


# service -> (certificate file, key file or None when the key sits in the certificate file).
SERVICE_FILES: dict[str, tuple[str, str | None]] = {
    "cpanel": ("cpanel/cpanel.pem", None),
    "exim": ("exim/exim.crt", "exim/exim.key"),
    "dovecot": ("dovecot/dovecot.crt", "dovecot/dovecot.key"),
    "ftp": ("ftp/pure-ftpd.pem", None),
}
SERVICE_DESCRIPTIONS = {
    "cpanel": "Calendar, cPanel, WebDisk, Webmail, and WHM Services",
    "exim": "Exim (SMTP) Server",
    "dovecot": "Dovecot Mail Server",
    "ftp": "FTP Server",
}


def ensure_service_certs(root: Path, hostname: str) -> None:
    """Self-signed service certificates for the hostname, where none is installed yet.

    One RSA key serves the four certificates (key generation is what makes `init` slow)."""
    key = None
    for service in SERVICE_FILES:
        if read_service(root, service) is None:
            key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
            names = [hostname, "localhost"]
            crt, key_pem = certs.make_self_signed(hostname, names, ["127.0.0.1"], key=key)
            write_service(root, service, crt, key_pem, "")


def read_service(root: Path, service: str) -> tuple[str, str, str] | None:
    """(certificate, key, cabundle) of a service, or None when missing."""
    crt_name, key_name = SERVICE_FILES[service]
    text = layout.read_text(layout.ssl_dir(root) / crt_name)
    key_text = layout.read_text(layout.ssl_dir(root) / key_name) if key_name else text
    blocks = certs.split_certs(text)
    key = sslstorage.key_block(key_text)
    if not blocks or not key:
        return None
    return blocks[0], key, "".join(blocks[1:])


def write_service(root: Path, service: str, crt: str, key: str, cabundle: str) -> None:
    crt_name, key_name = SERVICE_FILES[service]
    chain = crt.strip() + "\n" + (cabundle.strip() + "\n" if cabundle.strip() else "")
    base = layout.ssl_dir(root)
    (base / crt_name).parent.mkdir(parents=True, exist_ok=True)
    os.chmod((base / crt_name).parent, 0o755)  # noqa: S103 - cPanel's layout; keys stay 0600
    if key_name:
        layout.write_file(base / crt_name, chain, mode=0o644)
        layout.write_file(base / key_name, key.strip() + "\n", mode=0o600)
    else:  # cpanel.pem holds the key too, as cPanel keeps it
        layout.write_file(base / crt_name, key.strip() + "\n" + chain, mode=0o600)
    if service == "cpanel":
        layout.write_file(base / "cpanel/mycpanel.pem", key.strip() + "\n" + chain, mode=0o600)
        layout.write_file(base / "cpanel/mycpanel.cabundle", cabundle, mode=0o644)


def install_scripts(root: Path) -> None:
    """`uapi`, `whmapi1` and the recording stand-ins, each a small launcher into this package."""
    tools = {"bin/uapi": ("tools", "main", "uapi"), "bin/whmapi1": ("tools", "main", "whmapi1")}
    recorders = {path: ("standins", "run", name) for path, name in SCRIPTS.items()}
    for rel, (module, call, name) in {**tools, **recorders}.items():
        path = root / "usr/local/cpanel" / rel
        text = LAUNCHER.format(
            python=sys.executable, repo=str(REPO), module=module, call=call, name=name
        )
        layout.write_file(path, text, mode=0o755)
        for folder in [path.parent, *path.parent.parents]:
            if folder == root:
                break
            os.chmod(folder, 0o755)  # noqa: S103 - every uid runs uapi


def record(root: Path, name: str, argv: Sequence[str]) -> None:
    """Append {"cmd", "argv", "uid"} to sandbox-commands.log, one JSON object a line."""
    line = json.dumps({"cmd": name, "argv": list(argv), "uid": os.getuid()})
    with open(layout.commands_log(root), "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def run(root: Path, name: str, argv: Sequence[str]) -> int:
    """What a stand-in script does: record the call, then answer as cPanel's script would."""
    record(root, name, argv)
    if os.getuid() != 0:
        print(f"{name}: This program must be run as root.", file=sys.stderr)
        return 1
    if name in ("register_appconfig", "unregister_appconfig"):
        return _appconfig(root, name, argv)
    if name in ("install_plugin", "uninstall_plugin"):
        target = Path(argv[0]) if argv else None
        if target is None or not (target / "install.json").is_file():
            print(f"{name}: “install.json” is missing from the plugin.", file=sys.stderr)
            return 1
        print(f"Plugin {'installed' if name == 'install_plugin' else 'uninstalled'}.")
        return 0
    service = name.removeprefix("restartsrv_")
    print(f"Waiting for “{service}” to restart gracefully …waiting for “{service}” to initialize …")
    print(f"{service} restarted successfully.")
    return 0


def _appconfig(root: Path, name: str, argv: Sequence[str]) -> int:
    """register_appconfig validates and copies the file to var/cpanel/apps/<name>.conf (§5)."""
    if not argv:
        print(f"Usage: {name} <file.conf>", file=sys.stderr)
        return 1
    source = Path(argv[0])
    apps = layout.cpanel_var(root) / "apps"
    if name == "unregister_appconfig":
        app = source.stem if source.suffix == ".conf" else source.name
        conf = layout.read_key_values(source) if source.is_file() else {}
        app = conf.get("name", app)
        (apps / f"{app}.conf").unlink(missing_ok=True)
        print(f"{app} unregistered")
        return 0
    if not source.is_file():
        print(f"{name}: The file “{source}” does not exist.", file=sys.stderr)
        return 1
    conf = layout.read_key_values(source)
    app = conf.get("name", source.stem)
    missing = [k for k in ("service", "url") if not conf.get(k)]
    if missing or app.startswith("internal"):
        print(
            f"{name}: {source} is invalid: missing {', '.join(missing) or 'name'}", file=sys.stderr
        )
        return 1
    apps.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, apps / f"{app}.conf")
    print(f"{app} registered")
    return 0
