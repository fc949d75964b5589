"""`uapi` / `whmapi1` on the command line, for install-time calls that carry no secret.

argv is readable by every local user through /proc, so this transport refuses any argument that
looks like a key, certificate, token or password (ARCHITECTURE.md "How cPanel is called"). Every
value is percent-encoded completely, because the tools decode `+` as a space (cpanel-api.md §1.2).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..errors import CpanelTransportError
from .envelope import Args, check_uapi_result, check_whm_envelope, expand_args
from .quirks import MAX_RESPONSE_BYTES

TRANSPORT = "command-line"
SECRET_ARG_NAMES = frozenset(
    {"cert", "crt", "key", "cabundle", "cab", "token", "password", "pass", "secret", "session"}
)
SECRET_MARKERS = ("-----BEGIN", "PRIVATE KEY")


def refuse_secrets(module: str, func: str, pairs: Sequence[tuple[str, str]]) -> None:
    """Raise `CpanelTransportError` when an argument looks like a secret."""
    for name, value in pairs:
        base = name.rsplit("-", 1)[0] if name.rsplit("-", 1)[-1].isdigit() else name
        if base.lower() in SECRET_ARG_NAMES or any(m in value for m in SECRET_MARKERS):
            raise CpanelTransportError(
                module,
                func,
                [f"argument {name!r} may be secret and must not go on a command line"],
                transport=TRANSPORT,
            )


def encoded_argv(pairs: Sequence[tuple[str, str]]) -> list[str]:
    """`name=value` words with every value percent-encoded (cpanel-api.md §1.2)."""
    return [f"{name}={quote(value, safe='')}" for name, value in pairs]


class CommandLineTransport:
    """Both transports over `ROOT/usr/local/cpanel/bin/{uapi,whmapi1} --output=json`.

    `user` is passed to `uapi --user=` (needed as root, cpanel-api.md §1.2).
    """

    def __init__(self, root: Path, *, user: str = "", timeout: float = 120.0) -> None:
        self.root = root
        self.user = user
        self.timeout = timeout

    def _run(self, argv: list[str], module: str, func: str) -> Any:
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                timeout=self.timeout,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise CpanelTransportError(
                module,
                func,
                [f"{Path(argv[0]).name} took longer than {self.timeout:g} s"],
                transport=TRANSPORT,
            ) from exc
        except OSError as exc:
            raise CpanelTransportError(
                module, func, [f"cannot run {argv[0]}: {exc.strerror}"], transport=TRANSPORT
            ) from exc
        if len(done.stdout) > MAX_RESPONSE_BYTES:
            raise CpanelTransportError(
                module, func, ["the output is too large"], transport=TRANSPORT
            )
        text = done.stdout.decode("utf-8", errors="replace")
        start = text.find("{")  # tolerate warnings printed before the JSON
        try:
            return json.loads(text[start:]) if start >= 0 else None
        except json.JSONDecodeError:
            return None

    def call_uapi(self, module: str, func: str, args: Args) -> dict[str, Any]:
        pairs = expand_args(args)
        refuse_secrets(module, func, pairs)
        argv = [str(self.root / "usr/local/cpanel/bin/uapi"), "--output=json"]
        if self.user:
            argv.append(f"--user={self.user}")
        output = self._run([*argv, module, func, *encoded_argv(pairs)], module, func)
        # The CLI wraps the result object as `{"apiversion":3,...,"result":{...}}` (§1.2).
        result = output.get("result") if isinstance(output, dict) else None
        return check_uapi_result(module, func, result, transport=TRANSPORT)

    def call_whm(self, func: str, args: Args) -> dict[str, Any]:
        pairs = expand_args(args)
        refuse_secrets("", func, pairs)
        argv = [str(self.root / "usr/local/cpanel/bin/whmapi1"), "--output=json", func]
        output = self._run([*argv, *encoded_argv(pairs)], "", func)
        return check_whm_envelope(func, output, transport=TRANSPORT)
