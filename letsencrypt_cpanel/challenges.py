"""Challenge solvers: how a name proves control to the CA (RFC 8555 §8).

A solver has `present` and `cleanup` (lego's shape) plus `check`, our own look from outside
before the challenge is answered, so a broken site fails here and never spends the CA's
failed-validation limit. `acme_client.AcmeSession.obtain_certificate` drives them.

`WebrootSolver` (http-01, RFC 8555 §8.3) writes the token file into the site's document root;
`dns_challenge.CpanelDnsSolver` (dns-01, §8.4) adds TXT records to the user's cPanel zone.
`issue_plan.build_solver` is the one place that maps a method's name to its solver.
It runs as the site's user, inside folders that user controls, so it never follows a symlink
below the docroot: a planted `.well-known -> /somewhere` link is refused, not written through.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .errors import ChallengeFailed
from .keys import to_idna
from .selfcheck import SelfCheck

HTTP01 = "http-01"
DNS01 = "dns-01"

# RFC 8555 §8.1: a token is base64url (no padding). Anything else could walk out of the folder.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,256}$")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_CHALLENGE_DIRS = (".well-known", "acme-challenge")


class ChallengeSolver(Protocol):
    """Makes a name answer a challenge. Contract for every solver:

    * `challenge_types`: the RFC 8555 challenge types it can solve, preferred first;
    * `present(domain, token, key_authorization)`: publish the answer; raises `ChallengeFailed`
      (or a subclass) if it cannot; whatever it did publish is undone by `cleanup`;
    * `check(domain, token, key_authorization)`: look at the answer as the CA would; raises
      `SelfCheckFailed` when the CA would fail. Called after every `present`, before answering;
    * `cleanup(domain, token)`: remove what `present` published; never raises for "already gone".
    `domain` is the identifier as the CA sends it (IDNA A-labels).
    """

    challenge_types: tuple[str, ...]

    def present(self, domain: str, token: str, key_authorization: str) -> None: ...

    def check(self, domain: str, token: str, key_authorization: str) -> None: ...

    def cleanup(self, domain: str, token: str) -> None: ...


def check_token(domain: str, token: str) -> None:
    """Refuse a token that is not plain base64url (it becomes a file name)."""
    if not _TOKEN.fullmatch(token):
        raise ChallengeFailed(domain, "the CA sent a malformed challenge token", kind="malformed")


@dataclass
class WebrootSolver:
    """http-01 by token files under each name's document root.

    `docroots` maps a name (UTF-8 or A-labels) to its document root. `self_check`, when given,
    is run by `check`; without it `check` does nothing.
    """

    docroots: Mapping[str, Path]
    self_check: SelfCheck | None = None
    challenge_types: tuple[str, ...] = (HTTP01,)
    # The site owner's home. When given, each docroot must lie inside it and is opened from it
    # one folder at a time without following links: a docroot the user replaced by a link
    # cannot send token files (or the folders for them) anywhere outside the home.
    home: Path | None = None
    # Folders this solver created, per docroot, so cleanup removes them (only if empty).
    _created: dict[Path, list[str]] = field(default_factory=dict, repr=False)
    _written: dict[tuple[str, str], Path] = field(default_factory=dict, repr=False)

    def docroot_for(self, domain: str) -> Path:
        wire = to_idna(domain)
        for name, docroot in self.docroots.items():
            if to_idna(name) == wire:
                return Path(docroot)
        raise ChallengeFailed(domain, "no document root is known for this name", kind="webroot")

    def present(self, domain: str, token: str, key_authorization: str) -> None:
        """Write `<docroot>/.well-known/acme-challenge/<token>` (0644; folders 0755).

        Raises `ChallengeFailed(kind="webroot")` when the docroot is missing, a folder on the
        way is a symlink or not a folder, or the file cannot be written.
        """
        check_token(domain, token)
        docroot = self.docroot_for(domain)
        fd = self._open_challenge_dir(domain, docroot)
        try:
            try:
                out = os.open(token, _FILE_FLAGS, 0o644, dir_fd=fd)
            except FileExistsError:
                # A leftover of an earlier run: replace it (unlink never follows a link).
                os.unlink(token, dir_fd=fd)
                out = os.open(token, _FILE_FLAGS, 0o644, dir_fd=fd)
            try:
                os.fchmod(out, 0o644)  # the umask must not hide it from the web server
                os.write(out, key_authorization.encode("ascii"))
            finally:
                os.close(out)
        except OSError as exc:
            raise ChallengeFailed(
                domain,
                f"could not write the challenge file under {docroot}: {exc.strerror}",
                kind="webroot",
            ) from exc
        finally:
            os.close(fd)
        self._written[(to_idna(domain), token)] = docroot

    def _open_docroot(self, docroot: Path) -> int:
        """An fd of `docroot`; below `home` no link is followed. Raises OSError, or ValueError
        when the docroot is not inside the home."""
        if self.home is None:
            return os.open(docroot, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        inside = Path(os.path.normpath(docroot)).relative_to(os.path.normpath(self.home))
        fd = os.open(self.home, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        for part in inside.parts:
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            finally:
                os.close(fd)
            fd = child
        return fd

    def _open_challenge_dir(self, domain: str, docroot: Path) -> int:
        """An fd of `<docroot>/.well-known/acme-challenge`, made if missing, never via a link."""
        try:
            fd = self._open_docroot(docroot)
        except ValueError as exc:
            raise ChallengeFailed(
                domain,
                f"the document root {docroot} is outside the home folder {self.home}; "
                "the plugin only writes inside the site owner's home.",
                kind="webroot",
            ) from exc
        except OSError as exc:
            detail = (
                f"the document root {docroot} is (or lies under) a symbolic link; the plugin "
                "does not follow links inside a home. Point the domain's document root at the "
                "real folder."
                if exc.errno in (errno.ELOOP, errno.ENOTDIR)
                else f"the document root {docroot} cannot be opened: {exc.strerror}"
            )
            raise ChallengeFailed(domain, detail, kind="webroot") from exc
        where = docroot
        for name in _CHALLENGE_DIRS:
            where = where / name
            try:
                try:
                    os.mkdir(name, 0o755, dir_fd=fd)
                    self._created.setdefault(docroot, []).append(name)
                    created = True
                except FileExistsError:
                    created = False
                child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                if created:
                    os.fchmod(child, 0o755)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    detail = (
                        f"{where} is a symbolic link or not a folder; the plugin does not follow "
                        "links inside a site. Replace it with a real folder."
                    )
                else:
                    detail = f"{where} cannot be created or opened: {exc.strerror}"
                raise ChallengeFailed(domain, detail, kind="webroot") from exc
            os.close(fd)
            fd = child
        return fd

    def check(self, domain: str, token: str, key_authorization: str) -> None:
        if self.self_check is not None:
            self.self_check.verify(domain, token, key_authorization)

    def cleanup(self, domain: str, token: str) -> None:
        """Remove the token file, then the folders `present` created if they are now empty."""
        docroot = self._written.pop((to_idna(domain), token), None)
        if docroot is None or not _TOKEN.fullmatch(token):
            return
        fds: list[int] = []
        try:
            fds.append(self._open_docroot(docroot))
            for name in _CHALLENGE_DIRS:
                fds.append(os.open(name, _DIR_FLAGS, dir_fd=fds[-1]))
            with contextlib.suppress(FileNotFoundError):
                os.unlink(token, dir_fd=fds[-1])
            created = self._created.get(docroot, [])
            # Innermost first: acme-challenge in .well-known, then .well-known in the docroot.
            for depth in range(len(_CHALLENGE_DIRS) - 1, -1, -1):
                name = _CHALLENGE_DIRS[depth]
                if name not in created:
                    break
                try:
                    os.rmdir(name, dir_fd=fds[depth])
                except OSError:
                    break  # not empty (another token, or the user's files): leave it
                created.remove(name)
        except (OSError, ValueError):
            pass  # a folder is gone or became a link: nothing of ours left to remove safely
        finally:
            for fd in fds:
                os.close(fd)
