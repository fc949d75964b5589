"""UAPI functions over the sandbox's cPanel files (cpanel-api.md §1.1, §2).

`dispatch` answers with the bare result object cPanel sends over HTTP: `errors`, `warnings` and
`messages` stay null until something is pushed, `data` null unless set (S1 Cpanel/Result.pm).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cpanel_sandbox import accounts, layout, sslstorage, zones


class Result:
    def __init__(self) -> None:
        self.data: Any = None
        self.messages: list[str] | None = None
        self.metadata: dict[str, Any] = {}

    def message(self, text: str) -> None:
        self.messages = [*(self.messages or []), text]


Func = Callable[[Path, str, layout.Args, Result], Any]
# Feature gates (S1 %API in Cpanel/API/SSL.pm): storage needs sslmanager, vhost install sslinstall.
FEATURE_GATES = {
    ("SSL", "install_ssl"): "sslinstall",
    ("SSL", "delete_ssl"): "sslinstall",
    ("SSL", "installed_hosts"): "sslinstall",
    ("SSL", "list_certs"): "sslmanager",
    ("SSL", "list_keys"): "sslmanager",
    ("SSL", "delete_cert"): "sslmanager",
    ("SSL", "delete_key"): "sslmanager",
}
KNOWN_FEATURES = {"sslinstall", "sslmanager", "autossl", "zoneedit", "simplezoneedit"}


def dispatch(
    root: Path, user: str, module: str, func: str, args: Mapping[str, Sequence[str]]
) -> dict[str, Any]:
    """The bare UAPI result object, exactly as cPanel's HTTP body (§1.1)."""
    result = Result()
    status: int | None = 1
    errors: list[str] | None = None
    functions = MODULES.get(module)
    try:
        if functions is None:
            raise layout.ApiError(
                f"Failed to load module “{module}”: Can't locate Cpanel/API/{module}.pm in @INC."
            )
        handler = functions.get(func)
        if handler is None:
            raise layout.ApiError(
                f"The system could not find the function “{func}” in the module “{module}”."
            )
        if not accounts.user_exists(root, user):
            raise layout.ApiError(f"The user “{user}” does not exist.")
        gate = FEATURE_GATES.get((module, func))
        if gate and not has_feature(root, user, gate):
            raise layout.ApiError(f"You do not have the feature “{gate}”.")
        returned = handler(root, user, layout.Args(args), result)
        if isinstance(returned, tuple):  # Features::has_feature sets status itself
            status = returned[0]
    except layout.ApiError as exc:
        status, errors = 0, exc.errors
        if exc.data is not None:
            result.data = exc.data
    # Any die inside a function becomes status 0 with its text (S1 Cpanel/API.pm
    # _handle_eval_fail), so a malformed hand-written file fails the call, not the server.
    except Exception as exc:
        status, errors = 0, [f"{exc}"]
    return {
        "status": status,
        "errors": errors,
        "warnings": None,
        "messages": result.messages,
        "metadata": result.metadata,
        "data": result.data,
    }


# ---- Features -------------------------------------------------------------------------------


def feature_state(root: Path, user: str, name: str) -> bool | None:
    """True enabled, False disabled, None unknown to the system. Absent from the list = enabled."""
    listing = accounts.cpuser(root, user).get("FEATURELIST") or "default"
    values = layout.read_key_values(layout.feature_list_file(root, listing))
    if name in values:
        return values[name] != "0"
    return True if name in KNOWN_FEATURES else None


def has_feature(root: Path, user: str, name: str) -> bool:
    return feature_state(root, user, name) is not False


def _has_feature(root: Path, user: str, args: layout.Args, result: Result) -> tuple[int | None]:
    name = args.get("name")
    if not name:
        raise layout.ApiError("You must specify the “name” parameter.")
    state = feature_state(root, user, name)
    if state is False:
        result.message(f"The feature “{name}” exists but is not enabled.")
    return (None if state is None else int(state),)


# ---- DomainInfo -----------------------------------------------------------------------------


def _list_domains(root: Path, user: str, args: layout.Args, result: Result) -> None:
    main = accounts.main_data(root, user)
    addons = accounts.addon_map(main)
    data = {k: v for k, v in main.items() if k not in ("addon_domains", "sub_domains")}
    data["main_domain"] = str(main.get("main_domain") or "")  # a string, not S2's array
    data["addon_domains"] = list(addons)
    data["parked_domains"] = list(main.get("parked_domains") or [])
    data["sub_domains"] = [s for s in main.get("sub_domains") or [] if s not in addons.values()]
    result.data = data


def _domain_object(root: Path, user: str, servername: str, domain: str, kind: str) -> Any:
    data = accounts.vhost_data(root, user, servername)
    if data is None:
        return 0  # S1 _get_domains_info_hr: a missing userdata file gives 0
    return {**data, "domain": domain, "type": kind}


def _redirect_status(obj: Any, args: layout.Args) -> Any:
    # S1 reads return_https_redirect_status, S2 documents return_https_redirects_status: take both.
    if isinstance(obj, dict) and args.flag(
        "return_https_redirect_status", "return_https_redirects_status"
    ):
        obj.update({"can_https_redirect": 1, "is_https_redirecting": 0, "all_aliases_valid": 1})
    return obj


def _domains_data(root: Path, user: str, args: layout.Args, result: Result) -> None:
    main = accounts.main_data(root, user)
    addons = accounts.addon_map(main)
    main_domain = str(main.get("main_domain") or "")
    main_obj = _domain_object(root, user, main_domain, main_domain, "main_domain")
    addon_objs = [_domain_object(root, user, s, a, "addon_domain") for a, s in addons.items()]
    subs = [s for s in main.get("sub_domains") or [] if s not in addons.values()]
    sub_objs = [_domain_object(root, user, s, s, "sub_domain") for s in subs]
    for obj in [main_obj, *addon_objs, *sub_objs]:
        _redirect_status(obj, args)
    if (args.get("format") or "hash") == "list":
        result.data = [main_obj, *addon_objs, *sub_objs]
        return
    result.data = {
        "main_domain": main_obj,
        "addon_domains": addon_objs,
        "sub_domains": sub_objs,
        "parked_domains": list(main.get("parked_domains") or []),
    }


def _single_domain_data(root: Path, user: str, args: layout.Args, result: Result) -> None:
    domain = (args.get("domain") or "").lower()
    if not domain:
        raise layout.ApiError("Domain must be passed as a parameter.")
    main = accounts.main_data(root, user)
    addons = accounts.addon_map(main)
    if domain == main.get("main_domain"):
        servername, kind = domain, "main_domain"
    elif domain in addons:
        servername, kind = addons[domain], "addon_domain"
    elif domain in (main.get("sub_domains") or []) and domain not in addons.values():
        servername, kind = domain, "sub_domain"
    else:
        raise layout.ApiError(f"Unable to locate the domain: {domain}")
    obj = _domain_object(root, user, servername, domain, kind)
    if obj == 0:
        raise layout.ApiError(f"Unable to locate the domain: {domain}")
    result.data = _redirect_status(obj, args)


# ---- Variables ------------------------------------------------------------------------------


def user_information(root: Path, user: str) -> dict[str, Any]:
    cp = accounts.cpuser(root, user)
    entry = accounts.passwd_entry(root, user)
    cpuser_path = layout.cpuser_file(root, user)
    listing = cp.get("FEATURELIST") or "default"
    return {
        "user": user,
        "domain": cp.get("DNS", ""),
        "domains": accounts.all_domains(root, user),
        "dead_domains": [v for k, v in sorted(cp.items()) if re.match(r"^XDNS\d+$", k)],
        "home": str(entry.home) if entry else None,
        "uid": entry.uid if entry else None,
        "gid": entry.gid if entry else None,
        "shell": entry.shell if entry else None,
        "owner": cp.get("OWNER", "root"),
        "plan": cp.get("PLAN", "default"),
        "ip": cp.get("IP", layout.SANDBOX_IP),
        "contact_email": cp.get("CONTACTEMAIL", ""),
        "contact_email_2": cp.get("CONTACTEMAIL2", ""),
        "lang": cp.get("LANG", "en"),
        "locale": cp.get("LOCALE", "en"),
        "theme": cp.get("RS", "jupiter"),
        "feature_list": listing,
        "created": int(cp.get("STARTDATE") or 0),
        "last_modified": int(cpuser_path.stat().st_mtime) if cpuser_path.exists() else None,
        "ssl_default_key_type": cp.get("SSL_DEFAULT_KEY_TYPE", "system"),
        "notify_ssl_expiry": int(cp.get("notify_ssl_expiry", "1") or 0),
        "notify_autossl_expiry": int(cp.get("notify_autossl_expiry", "1") or 0),
        "notify_autossl_renewal_coverage": int(cp.get("notify_autossl_renewal_coverage", "1") or 0),
    }


def _get_user_information(root: Path, user: str, args: layout.Args, result: Result) -> None:
    info = user_information(root, user)
    names = args.get_multiple("name")
    unknown = [n for n in names if n not in info]
    if unknown:
        raise layout.ApiError(
            "The name parameter has unknown value(s): "
            + ", ".join(f"“{n}”" for n in unknown)
            + ". You must enter one of the following values: "
            + ", ".join(f"“{n}”" for n in sorted(info))
            + "."
        )
    result.data = {n: info[n] for n in names} if names else info


# ---- SSL ------------------------------------------------------------------------------------


MODULES: dict[str, dict[str, Func]] = {
    "DomainInfo": {
        "list_domains": _list_domains,
        "domains_data": _domains_data,
        "single_domain_data": _single_domain_data,
    },
    "Variables": {"get_user_information": _get_user_information},
    "Features": {"has_feature": _has_feature},
    "SSL": {
        "install_ssl": sslstorage.install_ssl,
        "delete_ssl": sslstorage.delete_ssl,
        "installed_hosts": sslstorage.installed_hosts,
        "list_certs": sslstorage.list_certs,
        "list_keys": sslstorage.list_keys,
        "delete_cert": sslstorage.delete_cert,
        "delete_key": sslstorage.delete_key,
    },
    "DNS": {
        "parse_zone": lambda root, user, args, result: setattr(
            result, "data", zones.parse_zone(root, user, args)
        ),
        "mass_edit_zone": lambda root, user, args, result: setattr(
            result, "data", zones.mass_edit_zone(root, user, args)
        ),
    },
}
