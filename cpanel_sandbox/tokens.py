"""cPanel user API tokens: `Authorization: cpanel <cpuser>:<TOKEN>` (cpanel-api.md §1.1).

The reference says how such a token is sent, how cpsrvd splits the header (on the first `:`),
which documents it opens (`./execute/` and `./json-api/cpanel`, anything else dies with
TOKEN_SCOPE_ERROR) and that auth problems are real HTTP errors. It is silent on how a user makes
one (no `Tokens` UAPI function in it) and on where cPanel keeps them. So, choosing the least
surprising: a sandbox command makes them,

    python -m cpanel_sandbox.tokens ROOT USER NAME      # prints the token once

and they are kept the way the sandbox keeps WHM tokens (whm.create_token): only a SHA-512 of each,
root-only, in var/cpanel/authn/api_tokens_v2/cpanel/USER.json, the `cpanel` sibling of WHM's
`whostmgr` folder.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import secrets
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cpanel_sandbox import accounts, layout
from cpanel_sandbox.whm import TOKEN_ALPHABET

SERVICE = "cpanel"
TOKEN_SCOPE_ERROR = "Token authentication allows access to UAPI or API 2 calls only."


def _read(root: Path, user: str) -> dict[str, Any]:
    try:
        text = layout.api_tokens_file(root, user, SERVICE).read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, ValueError):
        return {}
    tokens = data.get("tokens") if isinstance(data, dict) else None
    return tokens if isinstance(tokens, dict) else {}


def create(root: Path, user: str, name: str) -> str:
    """A new full-access token for cPanel account `user`; returns the token (shown once)."""
    if not accounts.user_exists(root, user):
        raise layout.ApiError(f"No such cPanel user: {user}")
    tokens = _read(root, user)
    if any(isinstance(t, dict) and t.get("name") == name for t in tokens.values()):
        raise layout.ApiError(f"The API token name “{name}” is already in use.")
    token = "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(32))
    digest = hashlib.sha512(token.encode()).hexdigest()
    tokens[digest] = {"name": name, "create_time": int(time.time()), "expires_at": None}
    path = layout.api_tokens_file(root, user, SERVICE)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    layout.write_file(path, json.dumps({"tokens": tokens}, indent=1), mode=0o600)
    return token


def check(root: Path, user: str, token: str) -> bool:
    """Whether `token` is one of cPanel account `user`'s live tokens (constant-time compare)."""
    if not accounts.user_exists(root, user):
        return False
    digest = hashlib.sha512(token.encode()).hexdigest().encode()
    found = False
    for stored, record in _read(root, user).items():
        expires = record.get("expires_at") if isinstance(record, dict) else None
        live = not (expires and int(expires) < time.time())
        found |= hmac.compare_digest(str(stored).encode(), digest) and live
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cpanel_sandbox.tokens", description="make a cPanel user API token"
    )
    parser.add_argument("root", type=Path)
    parser.add_argument("user")
    parser.add_argument("name")
    args = parser.parse_args(argv)
    try:
        print(create(args.root.absolute(), args.user, args.name))
    except layout.ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
