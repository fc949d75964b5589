"""Settings: read once at an edge, then passed down (no module deep inside reads os.environ).

Every fixed path lives under a root prefix taken from `LECP_ROOT` (default `/`), so the tests, the
demo and a real server run the same code. The public config (`/etc/letsencrypt-cpanel.conf`, JSON,
0644) holds nothing secret: the cPanel page, running as a user, reads it. Secrets (the WHM token,
an EAB HMAC key, the SMTP password) live in `/etc/letsencrypt-cpanel.secrets` (JSON, 0600, root).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError, NameRefused
from .names import normalize_name, usable_email

CONFIG_PATH = "/etc/letsencrypt-cpanel.conf"
SECRETS_PATH = "/etc/letsencrypt-cpanel.secrets"
STATE_DIR = "/var/lib/letsencrypt-cpanel"
DAEMON_PID_PATH = "/var/run/letsencrypt-cpanel.pid"
DAEMON_LOG_PATH = "/var/log/letsencrypt-cpanel.log"
# Root's socket for what user-side code must ask root for (root_service.py).
ROOT_SOCKET_PATH = "/var/run/letsencrypt-cpanel.sock"
# The EAB HMAC key, alone in a root-only file: root processes that fork user workers read the
# secrets file, and what they read, every worker would carry in its memory (eab.py).
EAB_KEY_PATH = "/etc/letsencrypt-cpanel.eab-hmac-key"

LETSENCRYPT_PRODUCTION = "https://acme-v02.api.letsencrypt.org/directory"
LETSENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"

KEY_TYPES = ("rsa:2048", "rsa:4096", "ecdsa:p-256", "ecdsa:p-384")
SECRET_KEYS = frozenset({"whm_token", "eab_hmac_key", "smtp_password"})


@dataclass(frozen=True)
class Settings:
    """Everything configurable. Field defaults are the values on a fresh install."""

    root: Path = Path("/")
    acme_directory: str = LETSENCRYPT_PRODUCTION
    # A PEM bundle trusted for the ACME directory ("" = the system's trust store).
    acme_ca_bundle: str = ""
    contact_email_for_account: bool = False
    cpanel_host: str = "127.0.0.1"
    cpanel_port: int = 2083
    whm_port: int = 2087
    whm_user: str = "root"
    # Port the self-check fetches http-01 tokens on; the CA always uses 80 on a real server.
    http_port: int = 80
    # Where a redirect of the challenge path to https:// lands (the CA follows it to 443).
    https_port: int = 443
    # Resolvers for the self-check and dns-01, "ip" or "ip:port"; empty = the system's.
    resolvers: tuple[str, ...] = ()
    default_key_type: str = "rsa:2048"
    # Renew when less than this fraction of the certificate's lifetime is left (1/3: 30 of 90 days).
    renewal_fraction: float = 1 / 3
    worker_timeout: float = 300.0
    # How long one call to cPanel or WHM may take (connect, answer, whole body).
    cpanel_timeout: float = 60.0
    # How long one order may take from answering challenges to the certificate.
    order_deadline: float = 90.0
    max_names_per_certificate: int = 100
    eab_kid: str = ""
    # The CA the EAB key id belongs to ("" = acme_directory): root signs bindings only for it.
    eab_directory: str = ""
    # Dry runs ("Test", `le-cp ssl issue --dry-run`) issue here and install nothing.
    staging_directory: str = LETSENCRYPT_STAGING
    # A profile from the directory's `meta.profiles` ("" = the CA's default).
    acme_profile: str = ""
    # The chain whose root has this common name, when the CA offers several ("" = its default).
    preferred_chain: str = ""
    # How long dns-01 waits for the zone's servers to answer with a new TXT record.
    dns_propagation_timeout: float = 120.0
    # -- the daemon (renewal.py, notify.py, hooks.py) --
    # Hours between two renewal cycles (SIGUSR1 starts one at once).
    renewal_interval_hours: float = 12.0
    # Days between two sweeps of every account (accounts restored or transferred in).
    full_sweep_days: float = 7.0
    # Users renewed at the same time, each in a worker of its own.
    parallel_workers: int = 4
    # Installs wait at most about this long (seconds) under cPanel's no-restart flag for one
    # Apache restart together; 0 = a restart after every batch of parallel_workers users.
    apache_restart_batch_seconds: float = 60.0
    # Also renew when fewer than this many days are left (FleetSSL's renewal_countdown_days);
    # 0 = the lifetime fraction alone decides.
    renewal_days: int = 0
    # Mail: "" = the local MTA (`sendmail_path -t -i`); else this SMTP server (password: secrets).
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_starttls: bool = True
    # A PEM bundle trusted for the SMTP server's certificate ("" = the system's trust store).
    smtp_ca_bundle: str = ""
    sendmail_path: str = "/usr/sbin/sendmail"
    # The From: address ("" = letsencrypt-cpanel@ the server's hostname).
    mail_from: str = ""
    send_success_mail: bool = True
    send_failure_mail: bool = True
    # An executable run as root after a cycle that renewed something; JSON summary on stdin.
    post_renewal_hook: str = ""
    hook_timeout: float = 60.0
    # -- server-wide automation (service_certs.py, autossl.py, budgets.py) --
    # The service (hostname) certificate: WHM's hostname plus these names, by http-01 from
    # this docroot (Apache's default vhost; root's, not a user's). Off on a fresh install, as
    # FleetSSL's `hostcert`: replacing cpsrvd's certificate is the admin's call.
    hostcert_enabled: bool = False
    hostcert_extra_names: tuple[str, ...] = ()
    hostcert_docroot: str = "/usr/local/apache/htdocs"
    # Where admin mail goes ("" = root@ the server's hostname).
    admin_email: str = ""
    # The plugin's AutoSSL: secure every vhost without a valid certificate, each cycle.
    autossl_enabled: bool = False
    # Names AutoSSL never requests, shell-style patterns (fnmatch), e.g. "*.staging.example.com".
    autossl_exclude: tuple[str, ...] = ()
    # Also put cPanel's proxy subdomains (cpanel., webmail., ...) on the certificate.
    autossl_proxy_subdomains: bool = True
    # Keep cPanel's own AutoSSL off the vhosts this plugin manages (WHM
    # add_autossl_user_excluded_domains), so the two never replace each other's certificates.
    cpanel_autossl_exclude_managed: bool = False
    # A certificate from another provider is replaced only in its last days (FleetSSL's
    # autossl_expiry_replacement_cutoff): a provider that manages it renews it before that.
    autossl_foreign_cutoff_days: int = 2
    # This server's addresses: a name resolving elsewhere is not sent to the CA
    # (empty = whatever the hostname resolves to, plus loopback).
    server_addresses: tuple[str, ...] = ()
    # Rate-limit budgets (Let's Encrypt's limits by default; per ACME directory).
    budget_new_accounts: int = 10  # per IP address
    budget_new_accounts_hours: float = 3.0
    budget_new_orders: int = 300  # per account
    budget_new_orders_hours: float = 3.0
    budget_certs_per_domain: int = 50  # per registered domain
    budget_certs_per_domain_days: float = 7.0
    budget_duplicates: int = 5  # per exact set of names
    budget_duplicates_days: float = 7.0
    budget_failed_validations: int = 5  # per account and name
    budget_failed_validations_hours: float = 1.0

    def path(self, absolute: str) -> Path:
        """Map a fixed absolute path (e.g. `/etc/passwd`) under the root prefix."""
        return self.root / absolute.lstrip("/")

    @property
    def config_file(self) -> Path:
        return self.path(CONFIG_PATH)

    @property
    def secrets_file(self) -> Path:
        return self.path(SECRETS_PATH)

    @property
    def state_dir(self) -> Path:
        return self.path(STATE_DIR)

    @property
    def daemon_pid_file(self) -> Path:
        """The daemon's pid file (written when it runs detached, under SysVinit)."""
        return self.path(DAEMON_PID_PATH)

    @property
    def daemon_log_file(self) -> Path:
        return self.path(DAEMON_LOG_PATH)

    @property
    def root_socket(self) -> Path:
        return self.path(ROOT_SOCKET_PATH)

    @property
    def eab_key_file(self) -> Path:
        return self.path(EAB_KEY_PATH)

    @property
    def cpanel_service_pem(self) -> Path:
        """cPanel's own service certificate and key, in one file (root-only)."""
        return self.path("/var/cpanel/ssl/cpanel/cpanel.pem")


@dataclass(frozen=True)
class Secrets:
    whm_token: str = field(default="", repr=False)
    eab_hmac_key: str = field(default="", repr=False)
    smtp_password: str = field(default="", repr=False)


_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name != "root"}


def _coerce(name: str, value: Any) -> Any:
    default = getattr(Settings, name)
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, tuple):
            if isinstance(value, str):
                return tuple(v.strip() for v in value.split(",") if v.strip())
            return tuple(str(v) for v in value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}: {value!r} is not a valid value") from exc


def validate(name: str, value: Any) -> Any:
    """Return `value` coerced to the type of setting `name`, or raise ConfigError saying why."""
    if name not in _FIELDS:
        known = ", ".join(sorted([*_FIELDS, *SECRET_KEYS]))
        raise ConfigError(f"unknown setting {name!r}; known settings: {known}")
    coerced = _coerce(name, value)
    if name == "default_key_type" and coerced not in KEY_TYPES:
        raise ConfigError(f"default_key_type must be one of {', '.join(KEY_TYPES)}")
    if (
        name in ("cpanel_port", "whm_port", "http_port", "https_port", "smtp_port")
        and not 0 < coerced < 65536
    ):
        raise ConfigError(f"{name} must be a port number (1-65535)")
    if name == "renewal_fraction" and not 0 < coerced < 1:
        raise ConfigError("renewal_fraction must be between 0 and 1")
    positive = (
        "renewal_interval_hours",
        "full_sweep_days",
        "hook_timeout",
        "worker_timeout",
        "dns_propagation_timeout",
    )
    if name in positive and not coerced > 0:
        raise ConfigError(f"{name} must be a positive number")
    if name == "cpanel_timeout" and not 1 <= coerced <= 600:
        raise ConfigError("cpanel_timeout must be between 1 and 600 seconds")
    if name == "apache_restart_batch_seconds" and not 0 <= coerced <= 3600:
        raise ConfigError("apache_restart_batch_seconds must be between 0 and 3600")
    if name == "parallel_workers" and not 1 <= coerced <= 64:
        raise ConfigError("parallel_workers must be between 1 and 64")
    if name == "renewal_days" and not 0 <= coerced <= 365:
        raise ConfigError("renewal_days must be between 0 and 365")
    paths = ("post_renewal_hook", "sendmail_path", "smtp_ca_bundle")
    if name in paths and coerced and not str(coerced).startswith("/"):
        raise ConfigError(f"{name} must be an absolute path")
    urls = ("acme_directory", "staging_directory", "eab_directory")
    optional = name == "eab_directory" and not coerced
    if name in urls and not optional and not str(coerced).startswith(("https://", "http://")):
        raise ConfigError(f"{name} must be an https:// URL")
    if name == "acme_profile" and coerced and not str(coerced).replace("-", "").isalnum():
        raise ConfigError("acme_profile must be a profile name the CA lists (letters, digits, -)")
    return coerced


def validate_change(name: str, value: Any) -> Any:
    """What a change must meet (`le-cp config set`, the WHM page, every caller of `set_value`):
    `validate`, the stricter rules below, and the checks against this server at the time.

    `validate` alone decides whether a config file loads, and stays as lenient as it was: a
    value an older version stored (the WHM page once took a wildcard extra name) or a hook
    deleted since must not stop the daemon and the pages; the job that uses it reports it."""
    coerced = _check_new_value(name, validate(name, value))
    if name == "post_renewal_hook" and coerced:
        from .hooks import HookRefused, check_hook

        try:
            check_hook(str(coerced))
        except HookRefused as exc:
            raise ConfigError(
                f"post_renewal_hook: {exc} Give the path of an executable file owned by root and "
                "writable by root alone, or an empty value for no hook."
            ) from exc
    return coerced


def _check_new_value(name: str, coerced: Any) -> Any:
    """The format rules for a new value; returns it normalized (host names), or raises."""
    if name == "acme_ca_bundle" and coerced and not str(coerced).startswith("/"):
        raise ConfigError("acme_ca_bundle must be an absolute path (or empty)")
    urls = ("acme_directory", "staging_directory", "eab_directory")
    if name in urls and (coerced or name != "eab_directory"):
        _check_directory_url(name, str(coerced))
    if name in ("mail_from", "admin_email") and coerced and usable_email(coerced) != coerced:
        raise ConfigError(
            f"{name}: {coerced!r} is not an e-mail address; give one address, e.g. "
            "ssl@example.com, or leave it empty for the default"
        )
    if name == "hostcert_extra_names":
        return _host_names(coerced)
    if name == "resolvers":
        for spec in coerced:
            _check_resolver(spec)
    if name == "autossl_exclude":
        for pattern in coerced:
            if any(c.isspace() for c in pattern):
                raise ConfigError(
                    f"autossl_exclude: {pattern!r} holds a space; give name patterns separated "
                    "by commas, e.g. *.staging.example.com,dev.*"
                )
    return coerced


# A CA on this machine (a test CA, a local proxy) may be reached over plain http.
_LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


def _check_directory_url(name: str, url: str) -> None:
    """ACME runs over https (RFC 8555 §6.1); plain http only to a CA on this machine."""
    try:
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname or ""
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # e.g. a port out of range, an unclosed [v6 address
        scheme, host, port_ok = "", "", False
    secure = scheme == "https" or (scheme == "http" and host in _LOOPBACK_HOSTS)
    if not (secure and host and port_ok) or any(c.isspace() for c in url):
        raise ConfigError(
            f"{name}: {url!r} is not accepted; it must be an https:// URL (RFC 8555 §6.1), e.g. "
            f"{LETSENCRYPT_PRODUCTION} (http:// only for a CA on 127.0.0.1 or localhost)"
        )


def _host_names(names: tuple[str, ...]) -> tuple[str, ...]:
    """The service certificate's extra names, normalized; refused as service_certs would refuse
    them at issue time (it is proven by http-01, so no wildcard)."""
    out: dict[str, None] = {}
    for raw in names:
        try:
            out.setdefault(normalize_name(raw), None)
        except NameRefused as exc:
            raise ConfigError(
                f"hostcert_extra_names: {raw!r} is not a host name for the service certificate "
                f"({exc.reason}); give host names separated by commas, e.g. mail.example.com "
                "(no wildcards: the certificate is proven by http-01)"
            ) from exc
    return tuple(out)


def _check_resolver(spec: str) -> None:
    """A resolver is an IP address, optionally with a port: "ip", "ip:port", "[v6]:port"."""
    try:
        ipaddress.ip_address(spec)
        return
    except ValueError:
        pass
    try:
        parts = urlsplit("//" + spec)
        ipaddress.ip_address(parts.hostname or "")
        if not parts.port:
            raise ValueError(spec)
    except ValueError as exc:
        raise ConfigError(
            f"resolvers: {spec!r} is not a resolver's address; give IP addresses, optionally "
            "with a port, separated by commas, e.g. 1.1.1.1,8.8.8.8:53,[2606:4700::1111]:53"
        ) from exc


def root_from_env(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("LECP_ROOT") or "/")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path} is not valid JSON (line {exc.lineno}): fix or remove it"
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    return data


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read the public config under the root prefix. Unknown keys (e.g. FleetSSL's) are ignored."""
    root = root_from_env(env)
    raw = _read_json(Settings(root=root).config_file)
    values = {k: validate(k, v) for k, v in raw.items() if k in _FIELDS}
    return Settings(root=root, **values)


def load_secrets(settings: Settings) -> Secrets:
    """Read the secrets file (root only). Missing file = no secrets."""
    raw = _read_json(settings.secrets_file)
    return Secrets(**{k: str(v) for k, v in raw.items() if k in SECRET_KEYS})


def _write_json_atomic(path: Path, data: Mapping[str, Any], mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(dict(data), fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def set_value(settings: Settings, name: str, value: str) -> None:
    """Persist one setting: secrets to the 0600 secrets file, everything else to the 0644 config."""
    if name == "eab_hmac_key":
        _write_eab_key(settings, value)
        return
    if name in SECRET_KEYS:
        data = _read_json(settings.secrets_file)
        data[name] = value
        _write_json_atomic(settings.secrets_file, data, 0o600)
        return
    coerced = validate_change(name, value)
    data = _read_json(settings.config_file)
    data[name] = list(coerced) if isinstance(coerced, tuple) else coerced
    _write_json_atomic(settings.config_file, data, 0o644)


def _write_eab_key(settings: Settings, value: str) -> None:
    """The EAB HMAC key goes to its own 0600 file (EAB_KEY_PATH says why); a copy an older
    version left in the secrets file is removed."""
    path = settings.eab_key_file
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(value.strip() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    data = _read_json(settings.secrets_file)
    if data.pop("eab_hmac_key", None) is not None:
        _write_json_atomic(settings.secrets_file, data, 0o600)


def update_config(root: Path, values: Mapping[str, Any]) -> None:
    """Merge several public settings at once (used by the sandbox to publish its ports)."""
    settings = Settings(root=root)
    data = _read_json(settings.config_file)
    for name, value in values.items():
        coerced = validate(name, value)
        data[name] = list(coerced) if isinstance(coerced, tuple) else coerced
    _write_json_atomic(settings.config_file, data, 0o644)


def public_items(settings: Settings) -> dict[str, Any]:
    """Every public setting and its current value, for `le-cp config list` and the WHM page."""
    return {name: getattr(settings, name) for name in _FIELDS}
