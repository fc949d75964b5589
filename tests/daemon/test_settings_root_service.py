"""The daemon's root service (the process that signs External Account Binding for user-side
code) follows `le-cp config set acme_directory / eab_kid / eab_hmac_key` at once, without a
restart: it rereads the config for every request."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from letsencrypt_cpanel.config import Settings, load_settings, set_value
from letsencrypt_cpanel.root_service import RootServiceError, ask_root, spawn_root_service
from tests.fixtures.lecp import REPO


@pytest.fixture
def root(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    # Short: a UNIX socket's path must fit in 108 bytes.
    folder = Path(tempfile.mkdtemp(prefix="lecp-rs-", dir="/tmp"))
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _jwk() -> dict[str, str]:
    numbers = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()

    def b64(n: int) -> str:
        return base64.urlsafe_b64encode(n.to_bytes(32, "big")).decode().rstrip("=")

    return {"kty": "EC", "crv": "P-256", "x": b64(numbers.x), "y": b64(numbers.y)}


def test_a_running_root_service_signs_with_the_settings_saved_after_it_started(
    root: Path,
) -> None:
    settings = load_settings({"LECP_ROOT": str(root)})
    path = root / "rs.sock"
    jwk = _jwk()
    request = {"op": "eab_binding", "jwk": jwk, "url": "https://ca-one.test/acme/new-acct"}
    # This test runs as root: the service answers root's uid alone.
    with spawn_root_service(settings, path=path, allowed_uids=[0]):
        with pytest.raises(RootServiceError, match="no EAB key id is set"):
            ask_root(path, request)

        # What `le-cp config set` writes, while the service runs.
        key = secrets.token_bytes(32)
        saved = Settings(root=root)
        set_value(saved, "acme_directory", "https://ca-one.test/directory")
        set_value(saved, "eab_kid", "kid-1")
        set_value(saved, "eab_hmac_key", base64.urlsafe_b64encode(key).decode())

        binding = ask_root(path, request)["binding"]
        header = json.loads(base64.urlsafe_b64decode(binding["protected"] + "=="))
        assert header == {"alg": "HS256", "kid": "kid-1", "url": request["url"]}
        mac = hmac.new(key, f"{binding['protected']}.{binding['payload']}".encode(), hashlib.sha256)
        assert base64.urlsafe_b64decode(binding["signature"] + "=") == mac.digest()

        # Another CA: bindings for the old one are refused, the new one's signed with the new kid.
        set_value(saved, "acme_directory", "https://ca-two.test/directory")
        set_value(saved, "eab_kid", "kid-2")
        with pytest.raises(RootServiceError, match="another certificate authority"):
            ask_root(path, request)
        moved = {**request, "url": "https://ca-two.test/acme/new-acct"}
        binding = ask_root(path, moved)["binding"]
        assert json.loads(base64.urlsafe_b64decode(binding["protected"] + "=="))["kid"] == "kid-2"

        # A config file broken by hand: the last good settings still answer.
        saved.config_file.write_text("{ not json")
        assert ask_root(path, moved)["binding"]["signature"]
