"""Big sandboxes fast: N accounts with M vhosts in cPanel's own formats, optionally each vhost
with a plugin certificate already issued and installed (for the benchmarks, bench/).

What add_user writes for one account, written here for thousands at once: the shared files
(passwd, group, userdatadomains, trueuserdomains, userdomains) are read once and written once;
the per-account files (home and docroots chowned to the account's uid, var/cpanel/users/USER,
userdata YAML, zones) are written by a pool of processes, one batch of accounts each. The YAML is
formatted from templates checked once against `layout.dump_yaml` (the slow pure-Python dumper
would take most of the minute otherwise).

With `certs=True` every vhost also gets what the plugin leaves behind after an issue: the user's
record (`~/.cpanel/nvdata/letsencrypt-cpanel`, record format version 1, 0600, the user's), the key
and certificate in the user's SSL storage (`~/ssl`, `ssl.db`), and the certificate installed on
the vhost (`apache_tls/<servername>`, `<servername>_SSL` userdata) so `installed_hosts` and
`fetch_ssl_vhosts` report it. The certificates come from a throwaway CA (ECDSA P-256: signing is
the cost) and share one RSA 2048 leaf key; `due` of them (the first vhosts in account order) are
inside their renewal window, the others have most of their 90 days left.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from cpanel_sandbox import accounts, certs, layout, zones

DEFAULT_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory"
CA_NAME = "Sandbox Populate Throwaway CA"
CA_ORG = "cpanel_sandbox populate"  # cPanel's schema wants an issuer organizationName string
LIFETIME = 90 * 86400
BATCH = 40  # accounts per task: big enough to amortise the task, small enough to balance 2 cores
RECORD_NAME = "letsencrypt-cpanel"


@dataclass(frozen=True)
class AccountPlan:
    """One account to write: its name, uid (= gid), main domain and addon domains."""

    user: str
    uid: int
    domain: str
    addons: tuple[str, ...]

    def backing(self, addon: str) -> str:
        """An addon's backing subdomain, named as add_user names it."""
        return f"{addon.split('.')[0]}.{self.domain}"

    def vhosts(self, home: Path) -> list[tuple[str, str, Path, list[str]]]:
        """(domain, servername, docroot, serveralias list) per vhost, main first (add_user's)."""
        d = self.domain
        out = [(d, d, home / "public_html", [f"mail.{d}", f"www.{d}"])]
        for addon in self.addons:
            sub = self.backing(addon)
            out.append(
                (addon, sub, home / addon, [addon, f"mail.{addon}", f"www.{addon}", f"www.{sub}"])
            )
        return out


@dataclass(frozen=True)
class CertPlan:
    """What every worker needs to sign and file certificates (PEM text: it crosses processes)."""

    ca_key_pem: bytes
    ca_cert_pem: str
    leaf_key_pem: str  # traditional OpenSSL PEM, as cPanel stores keys
    leaf_key_pkcs8: str  # as the plugin keeps it in the record
    leaf_public_pem: bytes  # loading the private key again costs ~25 ms (RSA checks)
    directory: str
    now: int


@dataclass
class PopulateResult:
    users: list[str] = field(default_factory=list)
    vhosts: int = 0
    certificates: int = 0
    due: int = 0
    seconds: float = 0.0


class PopulateError(accounts.AccountError):
    """populate refused (names taken, bad numbers); str() says why."""


# ---- YAML by template ------------------------------------------------------------------------

_VHOST_YAML = """---
customlog:
- format: combined
  target: /etc/apache2/logs/domlogs/{servername}
documentroot: {docroot}
group: {user}
hascgi: 1
homedir: {home}
ip: {ip}
owner: {owner}
phpopenbasedirprotect: 1
phpversion: ea-php81
port: {port}
scriptalias:
- path: {docroot}/cgi-bin
  url: /cgi-bin/
serveradmin: webmaster@{servername}
serveralias: {aliases}
servername: {servername}
{ssl}usecanonicalname: 'Off'
user: {user}
userdirprotect: 0
"""


def _vhost_yaml(
    acct: accounts.NewAccount,
    servername: str,
    docroot: Path,
    aliases: list[str],
    ssl_file: str = "",
) -> str:
    ssl = f"sslcertificatefile: {ssl_file}\nsslengine: 'on'\n" if ssl_file else ""
    return _VHOST_YAML.format(
        servername=servername,
        docroot=docroot,
        user=acct.user,
        home=acct.home,
        ip=layout.SANDBOX_IP,
        owner=acct.owner,
        port=443 if ssl_file else 80,
        aliases=" ".join(aliases),
        ssl=ssl,
    )


def _main_yaml(plan: AccountPlan) -> str:
    if plan.addons:
        addons = "\n" + "".join(f"  {a}: {plan.backing(a)}\n" for a in plan.addons)
        subs = "\n" + "".join(f"- {plan.backing(a)}\n" for a in plan.addons)
    else:
        addons, subs = " {}\n", " []\n"
    return (
        f"---\naddon_domains:{addons}cp_php_magic_include_path.conf: 0\n"
        f"main_domain: {plan.domain}\nparked_domains: []\nsub_domains:{subs}"
    )


def check_templates(root: Path) -> None:
    """The templates must say what add_user's dumper says, for this root's paths (raises if not)."""
    plan = AccountPlan("tplcheck", 1, "tplcheck.test", ("a1-tplcheck.test",))
    home = root / "home" / plan.user
    acct = accounts.NewAccount(plan.user, "root", 1, home, plan.domain, {}, [], [], {})
    for domain, servername, docroot, aliases in plan.vhosts(home):
        data = accounts._vhost_yaml(acct, servername, docroot, aliases)
        if _vhost_yaml(acct, servername, docroot, aliases) != layout.dump_yaml(data):
            raise PopulateError(f"the vhost YAML template no longer matches add_user's ({domain})")
        data.update({"port": 443, "sslengine": "on", "sslcertificatefile": "/x/combined"})
        if _vhost_yaml(acct, servername, docroot, aliases, "/x/combined") != layout.dump_yaml(data):
            raise PopulateError("the SSL vhost YAML template no longer matches sslstorage's")
    main = {
        "main_domain": plan.domain,
        "addon_domains": {a: plan.backing(a) for a in plan.addons},
        "parked_domains": [],
        "sub_domains": [plan.backing(a) for a in plan.addons],
        "cp_php_magic_include_path.conf": 0,
    }
    if _main_yaml(plan) != layout.dump_yaml(main):
        raise PopulateError("the main userdata YAML template no longer matches add_user's")


# ---- plain writes ------------------------------------------------------------------------------


def _write(path: Path, data: str | bytes, mode: int, uid: int = -1, gid: int = -1) -> None:
    """A new file (populate writes into folders nobody else is writing yet): no temp, no rename."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        os.write(fd, raw)
        os.fchmod(fd, mode)
        if (uid != -1 or gid != -1) and os.geteuid() == 0:
            os.fchown(fd, uid, gid)
    finally:
        os.close(fd)


def _mkdir(path: Path, mode: int, uid: int = -1, gid: int = -1) -> None:
    path.mkdir(mode=mode, exist_ok=True)
    os.chmod(path, mode)
    if (uid != -1 or gid != -1) and os.geteuid() == 0:
        os.chown(path, uid, gid)


# ---- certificates ------------------------------------------------------------------------------


def _ca_name() -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, CA_ORG),
            x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME),
        ]
    )


def make_cert_plan(directory: str, now: int) -> CertPlan:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    name = _ca_name()
    start = dt.datetime.fromtimestamp(now - 86400, dt.timezone.utc)
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_key_pem = ca_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pkcs8 = leaf.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    public = leaf.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return CertPlan(
        ca_key_pem, certs.cert_pem(ca), certs.key_pem(leaf), pkcs8, public, directory, now
    )


class _Signer:
    """Signs leaves for one worker: the keys are loaded once per batch, not per certificate."""

    def __init__(self, plan: CertPlan) -> None:
        key = serialization.load_pem_private_key(plan.ca_key_pem, password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        self.ca_key = key
        self.ca_name = _ca_name()
        public = serialization.load_pem_public_key(plan.leaf_public_pem)
        assert isinstance(public, rsa.RSAPublicKey)
        self.leaf_public = public
        self.plan = plan

    def sign(self, names: list[str], not_before: int, not_after: int) -> x509.Certificate:
        utc = dt.timezone.utc
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.ca_name)
            .public_key(self.leaf_public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(dt.datetime.fromtimestamp(not_before, utc))
            .not_valid_after(dt.datetime.fromtimestamp(not_after, utc))
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self.ca_key, hashes.SHA256())
        )


def _validity(plan: CertPlan, due: bool) -> tuple[int, int]:
    """Due: 80 of 90 days gone (10 days left). Not due: issued a day ago (89 days left)."""
    start = plan.now - (80 if due else 1) * 86400
    return start, start + LIFETIME


# ---- one batch of accounts (in a worker process) -------------------------------------------------


@dataclass(frozen=True)
class _Batch:
    root: Path
    host: str
    owner: str
    accounts: tuple[AccountPlan, ...]
    due_vhosts: frozenset[str]
    cert_plan: CertPlan | None


def _write_batch(batch: _Batch) -> int:
    signer = _Signer(batch.cert_plan) if batch.cert_plan else None
    written = 0
    for plan in batch.accounts:
        written += _write_account(batch, plan, signer)
    return written


def _write_account(batch: _Batch, plan: AccountPlan, signer: _Signer | None) -> int:
    root, uid = batch.root, plan.uid
    home = root / "home" / plan.user
    acct = accounts.NewAccount(plan.user, batch.owner, uid, home, plan.domain, {}, [], [], {})
    vhosts = plan.vhosts(home)
    _mkdir(home, 0o711, uid, uid)
    _mkdir(home / ".cpanel", 0o700, uid, uid)
    for _, _, docroot, _ in vhosts:
        _mkdir(docroot, 0o755, uid, uid)
    userdata = layout.userdata_dir(root, plan.user)
    _mkdir(userdata, 0o750, 0, uid)  # root:USER 0750 as on cPanel (add_user's)
    _write(userdata / "main", _main_yaml(plan), 0o640, -1, uid)
    for _, servername, docroot, aliases in vhosts:
        _write(
            userdata / servername, _vhost_yaml(acct, servername, docroot, aliases), 0o640, -1, uid
        )
    _write(layout.cpuser_file(root, plan.user), _cpuser_text(plan, batch.owner), 0o640, -1, uid)
    # The backing subdomains live in the main domain's zone (add_user's rule: a sub inside a zone).
    labels = [plan.backing(a).split(".")[0] for a in plan.addons]
    zones.write_new_zone(root, plan.domain, batch.host, extra_labels=labels)
    for zone in plan.addons:
        zones.write_new_zone(root, zone, batch.host)
    if signer is not None:
        _write_certificates(batch, plan, acct, vhosts, signer)
    return len(vhosts)


def _cpuser_text(plan: AccountPlan, owner: str) -> str:
    domains = [plan.domain, *plan.addons]
    lines = [f"DNS={domains[0]}"] + [f"DNS{i}={d}" for i, d in enumerate(domains[1:], 1)]
    lines += [
        "CONTACTEMAIL=",
        "CONTACTEMAIL2=",
        "FEATURELIST=default",
        f"IP={layout.SANDBOX_IP}",
        "LOCALE=en",
        f"OWNER={owner}",
        "PLAN=default",
        "RS=jupiter",
        "SSL_DEFAULT_KEY_TYPE=system",
        f"STARTDATE={int(time.time())}",
        f"USER={plan.user}",
        "notify_ssl_expiry=1",
        "notify_autossl_expiry=1",
    ]
    head = "# cPanel -- If you edit this file directly you must run /scripts/updateuserdomains\n"
    return head + "\n".join(lines) + "\n"


def _write_certificates(
    batch: _Batch,
    plan: AccountPlan,
    acct: accounts.NewAccount,
    vhosts: list[tuple[str, str, Path, list[str]]],
    signer: _Signer,
) -> None:
    cp = signer.plan
    root, uid, home = batch.root, plan.uid, acct.home
    key_pub = signer.leaf_public
    kid = certs.key_id(key_pub)
    ssl_home = home / "ssl"
    _mkdir(ssl_home, 0o700, uid, uid)
    _mkdir(ssl_home / "keys", 0o700, uid, uid)
    _mkdir(ssl_home / "certs", 0o700, uid, uid)
    _write(ssl_home / "keys" / f"{kid}.key", cp.leaf_key_pem, 0o600, uid, uid)
    key_record: dict[str, Any] = {"friendly_name": plan.domain, "created": cp.now}
    key_record.update(certs.public_key_facts(key_pub))
    db: dict[str, Any] = {"version": 3, "key": {kid: key_record}, "certificate": {}, "csr": {}}
    entries: dict[str, Any] = {}
    for domain, servername, docroot, aliases in vhosts:
        names = [domain, f"www.{domain}"]
        due = domain in batch.due_vhosts
        not_before, not_after = _validity(cp, due)
        cert = signer.sign(names, not_before, not_after)
        pem = certs.cert_pem(cert)
        facts = certs.cert_facts(cert)
        cid = facts.pop("id")
        _write(ssl_home / "certs" / f"{cid}.crt", pem, 0o644, uid, uid)
        db["certificate"][cid] = {"friendly_name": domain, "created": cp.now, **facts}
        tls = layout.apache_tls_dir(root, servername)
        tls.mkdir(parents=True, exist_ok=True)
        os.chmod(tls, 0o700)
        combined = cp.leaf_key_pem.strip() + "\n" + pem.strip() + "\n" + cp.ca_cert_pem
        _write(tls / "combined", combined, 0o600)
        _write(tls / "certificates", pem.strip() + "\n" + cp.ca_cert_pem, 0o644)
        ssl_yaml = _vhost_yaml(acct, servername, docroot, aliases, str(tls / "combined"))
        _write(layout.userdata_dir(root, plan.user) / f"{servername}_SSL", ssl_yaml, 0o640, -1, uid)
        entries[domain] = {
            "vhost": domain,
            "names": names,
            "key_pem": cp.leaf_key_pkcs8,
            "key_type": "rsa:2048",
            "cert_pem": pem,
            "chain_pem": cp.ca_cert_pem,
            "not_before": not_before,
            "not_after": not_after,
            "challenge_method": "http-01",
            "order_url": "",
            "directory": cp.directory,
            "state": "installed",
            "cert_id": cid,
            "key_id": kid,
            "issued_at": not_before,
            "last_attempt": not_before,
            "failures": 0,
            "last_error": "",
            "preferred_chain": "",
            "alternate_chains": {},
        }
    # Compact JSON: with `indent` the json module falls back to its pure-Python encoder.
    _write(ssl_home / "ssl.db", json.dumps(db, sort_keys=True), 0o600, uid, uid)
    nvdata = home / ".cpanel" / "nvdata"
    _mkdir(nvdata, 0o700, uid, uid)
    record = {
        "version": 1,
        "accounts": {},
        "certificates": entries,
        "disable_mail": False,
        "last_renewal_check": 0,
    }
    text = json.dumps(record, sort_keys=True) + "\n"
    _write(nvdata / RECORD_NAME, text, 0o600, uid, uid)


# ---- the whole run -----------------------------------------------------------------------------


def _ids_in(path: Path) -> set[int]:
    out: set[int] = set()
    for line in layout.read_text(path).splitlines():
        fields = line.split(":")
        if len(fields) > 2 and fields[2].isdigit():
            out.add(int(fields[2]))
    return out


def plan_accounts(root: Path, users: int, vhosts: int, prefix: str) -> list[AccountPlan]:
    """Names and uids for `users` new accounts sharing `vhosts` vhosts (main + addons each)."""
    if users < 1 or vhosts < users:
        raise PopulateError("need at least one user and at least one vhost per user")
    width = max(4, len(str(users)))
    names = [f"{prefix}{i:0{width}d}" for i in range(1, users + 1)]
    if not accounts.USER_RE.match(names[-1]):
        raise PopulateError(f"“{names[-1]}” is not a valid cPanel user name; use a shorter prefix")
    used = set()
    for path in (
        layout.passwd_file(root),
        layout.group_file(root),
        Path("/etc/passwd"),
        Path("/etc/group"),
    ):
        used |= _ids_in(path)
    existing = {
        line.split(":", 1)[0] for line in layout.read_text(layout.passwd_file(root)).splitlines()
    }
    existing |= set(accounts.list_users(root))
    taken = [n for n in names if n in existing]
    if taken:
        raise PopulateError(f"The user “{taken[0]}” already exists (use another --prefix).")
    per_user, extra = divmod(vhosts, users)
    out: list[AccountPlan] = []
    uid = accounts.FIRST_UID
    for i, user in enumerate(names):
        while uid in used:
            uid += 1
        count = per_user + (1 if i < extra else 0)
        addons = tuple(f"a{j}-{user}.test" for j in range(1, count))
        out.append(AccountPlan(user, uid, f"{user}.test", addons))
        uid += 1
    domains = layout.read_colon_map(layout.userdomains_file(root))
    clash = next((d for p in out for d in (p.domain, *p.addons) if d in domains), None)
    if clash:
        raise PopulateError(f"The domain “{clash}” already exists.")
    return out


def _append_shared(root: Path, plans: list[AccountPlan], owner: str) -> None:
    """passwd, group and the three domain maps: read once, written once."""
    ip = layout.SANDBOX_IP
    passwd = "".join(
        f"{p.user}:x:{p.uid}:{p.uid}::{root / 'home' / p.user}:/bin/bash\n" for p in plans
    )
    group = "".join(f"{p.user}:x:{p.uid}:\n" for p in plans)
    for path, text in ((layout.passwd_file(root), passwd), (layout.group_file(root), group)):
        mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
        layout.write_file(path, layout.read_text(path) + text, mode=mode)
    rows: list[str] = []
    true_map = layout.read_colon_map(layout.trueuserdomains_file(root))
    all_map = layout.read_colon_map(layout.userdomains_file(root))
    all_map.pop("*", None)
    for p in plans:
        home = root / "home" / p.user

        def row(name: str, kind: str, parent: str, docroot: Path, p: AccountPlan = p) -> str:
            fields = [p.user, owner, kind, parent, str(docroot), f"{ip}:80", f"{ip}:443"]
            return f"{name}: " + "==".join([*fields, "", "0", "ea-php81"]) + "\n"

        rows.append(row(p.domain, "main", p.domain, home / "public_html"))
        rows += [row(p.backing(a), "sub", p.domain, home / a) for a in p.addons]
        rows += [row(a, "addon", p.backing(a), home / a) for a in p.addons]
        true_map[p.domain] = p.user
        for name in [p.domain, *(p.backing(a) for a in p.addons), *p.addons]:
            all_map[name] = p.user
    path = layout.userdatadomains_file(root)
    layout.write_file(path, layout.read_text(path) + "".join(rows), mode=0o640)
    layout.write_file(layout.trueuserdomains_file(root), layout.format_colon_map(true_map))
    text = layout.format_colon_map(all_map) + "*: nobody\n"
    layout.write_file(layout.userdomains_file(root), text)


def populate(
    root: Path,
    users: int,
    vhosts: int,
    *,
    with_certs: bool = False,
    due: int = 0,
    prefix: str = "u",
    owner: str = "root",
    directory: str = DEFAULT_DIRECTORY,
    processes: int | None = None,
) -> PopulateResult:
    """Add `users` accounts holding `vhosts` vhosts in all to the sandbox at `root` (initialised
    first when needed). Raises PopulateError (an AccountError) when refused; nothing is written
    then."""
    started = time.monotonic()
    root = root.absolute()
    if not layout.root_token_file(root).exists():
        accounts.init_root(root)
    if due and not with_certs:
        raise PopulateError("--due needs --certs")
    if not 0 <= due <= vhosts:
        raise PopulateError("--due must be between 0 and the number of vhosts")
    check_templates(root)
    with accounts._locked(root):  # add_user's lock: no add-user interleaves
        plans = plan_accounts(root, users, vhosts, prefix)
        for folder in (
            layout.cpanel_var(root) / "users",
            layout.cpanel_var(root) / "userdata",
            root / "home",
        ):
            folder.mkdir(parents=True, exist_ok=True)
        layout.named_dir(root).mkdir(parents=True, exist_ok=True)
        now = int(time.time())
        cert_plan = make_cert_plan(directory, now) if with_certs else None
        all_vhosts = [d for p in plans for d in (p.domain, *p.addons)]
        due_set = frozenset(all_vhosts[:due])
        host = accounts.hostname(root)
        batches = [
            _Batch(root, host, owner, tuple(plans[i : i + BATCH]), due_set, cert_plan)
            for i in range(0, len(plans), BATCH)
        ]
        workers = processes or os.cpu_count() or 1
        if workers == 1 or len(batches) == 1:
            written = sum(_write_batch(b) for b in batches)
        else:
            with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
                written = sum(pool.map(_write_batch, batches))
        # Shared files last: an account appears in passwd and the maps only once its files exist.
        _append_shared(root, plans, owner)
    return PopulateResult(
        users=[p.user for p in plans],
        vhosts=written,
        certificates=written if with_certs else 0,
        due=due,
        seconds=time.monotonic() - started,
    )
