"""`le-cp`: the admin's command line. Everything it does for a user runs as that user.

Exit status 0 only on success; a failure is one clear line on stderr, never a traceback.
Each area is a module `*_commands.py` in this package with `register(subparsers)`; they are
found automatically, so adding an area touches no shared file. Heavy imports stay inside the
command functions, so `le-cp --help` and `le-cp config` start fast.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from .. import __version__
from ..config import Settings, load_settings, root_from_env
from ..errors import ConfigError, Error


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="le-cp",
        description="Let's Encrypt certificates for every website on this cPanel server.",
    )
    parser.add_argument("--version", action="version", version=f"le-cp {__version__}")
    top = parser.add_subparsers(dest="area", required=True)
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.endswith("_commands"):
            importlib.import_module(f"{__name__}.{info.name}").register(top)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        try:
            settings = load_settings()
        except ConfigError:
            # `le-cp self-test` reports a broken config as one of its FAIL lines.
            if not getattr(args, "tolerates_bad_config", False):
                raise
            settings = Settings(root=root_from_env())
        code: int = args.func(settings, args)
        return code
    except Error as exc:
        print(f"le-cp: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("le-cp: interrupted", file=sys.stderr)
        return 130
