"""Users' SSL storage and installed Apache and service certificates (cpanel-api.md §4)."""

from __future__ import annotations

from pathlib import Path


def installed_for_name(root: Path, name: str) -> tuple[str, str] | None:
    """(certificate chain PEM, key PEM) installed on the SSL vhost serving `name`, or None."""
    raise NotImplementedError


def service_pem_path(root: Path) -> Path:
    """cpsrvd's certificate+key file (var/cpanel/ssl/cpanel/cpanel.pem)."""
    return root / "var/cpanel/ssl/cpanel/cpanel.pem"
