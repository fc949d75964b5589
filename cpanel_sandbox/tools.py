"""What the sandbox's `uapi` and `whmapi1` executables run (cpanel-api.md §1.2, §1.5).

`uapi [--user=U] [--output=json|jsonpretty|yaml] Module func k=v …` prints the result wrapped in
{apiversion, func, module, result}; `whmapi1 [--output=…] func k=v …` prints the plain envelope.
Values are form-decoded like cPanel's apitool (`+` is a space, then %-decoding: §1.2).
Run as root, `uapi` needs --user; run by another uid it acts as the account owning that uid.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from cpanel_sandbox import accounts, uapi, whm


def decode_value(text: str) -> str:
    """cPanel::Encoder::URI::uri_decode_str: `+` becomes a space before %-decoding."""
    return urllib.parse.unquote(text.replace("+", " "))


def _split(argv: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    options: dict[str, str] = {}
    rest: list[str] = []
    for arg in argv:  # options may come anywhere, as with cPanel's Getopt-based tools
        name, _, value = arg[2:].partition("=")
        if arg.startswith("--") and name in ("user", "output"):
            options[name] = value
        else:
            rest.append(arg)
    return options, rest


def parse_pairs(pairs: Sequence[str]) -> dict[str, list[str]]:
    """`k=v` words into parse_qs's shape; a repeated key keeps every value in order."""
    args: dict[str, list[str]] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        args.setdefault(decode_value(key), []).append(decode_value(value))
    return args


def _print(data: Any, output: str) -> None:
    if output == "jsonpretty":
        print(json.dumps(data, indent=3, ensure_ascii=False))
    elif output == "json":
        print(json.dumps(data, ensure_ascii=False))
    else:  # cPanel's default is believed to be YAML (§7)
        print(yaml.safe_dump(data, explicit_start=True, allow_unicode=True, sort_keys=True), end="")


def run_uapi(root: Path, argv: Sequence[str]) -> int:
    options, rest = _split(argv)
    uid = os.getuid()
    if uid == 0:
        user = options.get("user", "")
        if not user:
            print("uapi: run as root, uapi needs --user=<cPanel user>.", file=sys.stderr)
            return 1
    else:
        user = accounts.user_for_uid(root, uid) or ""
        if not user or options.get("user", user) != user:
            print(f"uapi: uid {uid} is not a cPanel user on this server.", file=sys.stderr)
            return 1
    if len(rest) < 2:
        print(
            "Usage: uapi [--user=U] [--output=json] Module function [key=value …]", file=sys.stderr
        )
        return 1
    module, func = rest[0], rest[1]
    result = uapi.dispatch(root, user, module, func, parse_pairs(rest[2:]))
    wrapped = {"apiversion": 3, "func": func, "module": module, "result": result}
    _print(wrapped, options.get("output", "yaml"))
    return 0


def run_whmapi1(root: Path, argv: Sequence[str]) -> int:
    options, rest = _split(argv)
    if os.getuid() != 0:
        print("whmapi1: This program must be run as root.", file=sys.stderr)
        return 1
    if not rest:
        print("Usage: whmapi1 [--output=json] function [key=value …]", file=sys.stderr)
        return 1
    _print(
        whm.dispatch(root, "root", rest[0], parse_pairs(rest[1:])), options.get("output", "yaml")
    )
    return 0


def main(root: Path, name: str, argv: Sequence[str]) -> int:
    """Entry point of the launchers in ROOT/usr/local/cpanel/bin (see standins.install_scripts)."""
    return run_uapi(root, argv) if name == "uapi" else run_whmapi1(root, argv)
