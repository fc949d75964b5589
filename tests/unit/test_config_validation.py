"""Settings are validated in one place (`config.validate` / `validate_change`), so `le-cp config
set` and the WHM Options page refuse the same values, each refusal saying what is wrong and what
is accepted, and nothing is written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from letsencrypt_cpanel.cli import main
from letsencrypt_cpanel.config import load_settings
from letsencrypt_cpanel.web.whm_options import OPTIONS, parse_changes

REFUSED = [
    # (setting, value, what the refusal says is wrong, what it says is accepted)
    ("hostcert_extra_names", "a.example.com,bad name", "'bad name' is not a host", "e.g. mail"),
    ("hostcert_extra_names", "*.example.com", "wildcard", "no wildcards"),
    ("mail_from", "notanemail", "'notanemail' is not an e-mail address", "e.g. ssl@example.com"),
    ("admin_email", "a@example.com,b@example.com", "is not an e-mail address", "one address"),
    ("resolvers", "1.2.3", "'1.2.3' is not a resolver's address", "e.g. 1.1.1.1,8.8.8.8:53"),
    ("resolvers", "127.0.0.1:0", "is not a resolver's address", "optionally with a port"),
    ("post_renewal_hook", "/nonexistent/hook", "cannot be found", "executable file owned by root"),
    ("acme_directory", "http://x", "'http://x' is not accepted", "must be an https:// URL"),
    ("acme_directory", "https://", "is not accepted", "https://acme-v02.api.letsencrypt.org"),
    ("staging_directory", "http://ca.example/dir", "is not accepted", "127.0.0.1 or localhost"),
    ("autossl_exclude", "dev .example.com", "holds a space", "separated by commas"),
    ("cpanel_timeout", "0.5", "cpanel_timeout must be", "between 1 and 600 seconds"),
    ("cpanel_timeout", "3600", "cpanel_timeout must be", "between 1 and 600 seconds"),
]  # fmt: skip
# The ones the WHM Options page offers (the rest only `le-cp config set` changes).
ON_THE_PAGE = [r for r in REFUSED if r[0] in {o.key for o in OPTIONS}]


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LECP_ROOT", str(tmp_path))
    return tmp_path


def _config(root: Path) -> dict[str, object]:
    path = root / "etc/letsencrypt-cpanel.conf"
    return json.loads(path.read_text()) if path.exists() else {}


@pytest.mark.parametrize(("key", "value", "wrong", "accepted"), REFUSED)
def test_le_cp_config_set_refuses_and_says_why(
    root: Path, capsys: pytest.CaptureFixture[str], key: str, value: str, wrong: str, accepted: str
) -> None:
    assert main(["config", "set", key, value]) == 1
    err = capsys.readouterr().err
    assert wrong in err and accepted in err, err
    assert key not in _config(root)


@pytest.mark.parametrize(("key", "value", "wrong", "accepted"), ON_THE_PAGE)
def test_the_whm_page_refuses_the_same(
    root: Path, key: str, value: str, wrong: str, accepted: str
) -> None:
    settings = load_settings()
    form = {key: value}
    changes, errors = parse_changes(settings, form.get, whole_form=False)
    assert changes == {} and len(errors) == 1, (changes, errors)
    assert wrong in errors[0] and accepted in errors[0]


def test_good_values_are_saved_normalized(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hook = root / "hook"
    hook.write_text("#!/bin/sh\n")
    hook.chmod(0o700)
    good = {
        "hostcert_extra_names": "Mail.Example.com,mail.example.com,bücher.example",
        "mail_from": "ssl@example.com",
        "resolvers": "1.1.1.1,127.0.0.1:8053,::1,[::1]:53",
        "post_renewal_hook": str(hook),
        # A CA on this machine (the tests' Pebble, a proxy) may be plain http.
        "acme_directory": "http://127.0.0.1:14000/dir",
        "staging_directory": "https://acme-staging-v02.api.letsencrypt.org/directory",
    }
    for key, value in good.items():
        assert main(["config", "set", key, value]) == 0, capsys.readouterr().err
    settings = load_settings()
    assert settings.hostcert_extra_names == ("mail.example.com", "xn--bcher-kva.example")
    assert settings.resolvers == ("1.1.1.1", "127.0.0.1:8053", "::1", "[::1]:53")
    assert settings.post_renewal_hook == str(hook)
    assert settings.acme_directory == "http://127.0.0.1:14000/dir"
    # A hook deleted later does not break loading the config (the daemon reports it when it
    # runs); only setting it is refused.
    os.unlink(hook)
    assert load_settings().post_renewal_hook == str(hook)


def test_values_an_older_version_stored_still_load(root: Path) -> None:
    """The stricter rules apply to changes: a config file written before them (the WHM page once
    took a wildcard extra name) still loads, so the daemon and the pages keep running, and the
    job that uses the value reports it."""
    path = root / "etc/letsencrypt-cpanel.conf"
    path.parent.mkdir(parents=True)
    older = {
        "hostcert_extra_names": ["*.example.com"],
        "mail_from": "notanemail",
        "resolvers": ["1.2.3"],
        "acme_directory": "http://ca.example/dir",
        "post_renewal_hook": "/nonexistent/hook",
    }
    path.write_text(json.dumps(older))
    settings = load_settings()
    assert settings.hostcert_extra_names == ("*.example.com",)
    assert settings.acme_directory == "http://ca.example/dir"
    # Changing anything else keeps them; changing one of them must meet the rules.
    assert main(["config", "set", "renewal_days", "10"]) == 0
    assert main(["config", "set", "mail_from", "alsonot"]) == 1
    assert load_settings().mail_from == "notanemail"
