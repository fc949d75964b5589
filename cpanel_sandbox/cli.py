"""python -m cpanel_sandbox: init, add-user, login, serve."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cpanel_sandbox")
    parser.parse_args(argv)
    return 0
