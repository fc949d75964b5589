"""The page's own small files in the user's nvdata folder (`~/.cpanel/nvdata`), next to the record.

The CSRF secret, the progress of an issue in flight, the one-time message shown after a redirect
and the page's busy lock live here. The page runs as the user, so these are the user's files:
folders are made 0700, files 0600, and nothing here follows a symbolic link (a link planted in
the folder could otherwise turn a write into a write somewhere else the user can reach).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

from ..errors import RecordError
from ..store import NVDATA_PARTS

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
# Everything kept here is a few hundred bytes; a larger file is not ours.
MAX_FILE_BYTES = 64 * 1024


class NvdataFolder:
    """`home/.cpanel/nvdata`, opened link-safely for each operation. Constructing does no I/O."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home)

    @property
    def path(self) -> Path:
        return self.home.joinpath(*NVDATA_PARTS)

    @contextlib.contextmanager
    def _folder(self, *, create: bool) -> Iterator[int | None]:
        try:
            fd = os.open(self.home, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise _not_a_folder(self.home, exc) from exc
        try:
            for part in NVDATA_PARTS:
                try:
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        yield None
                        return
                    try:
                        with contextlib.suppress(FileExistsError):
                            os.mkdir(part, 0o700, dir_fd=fd)
                        child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                    except OSError as exc:
                        raise _not_a_folder(self.path, exc) from exc
                except OSError as exc:
                    # A link (ELOOP) or a file (ENOTDIR) where a folder belongs.
                    raise _not_a_folder(self.path, exc) from exc
                os.close(fd)
                fd = child
            yield fd
        finally:
            os.close(fd)

    def read(self, name: str) -> bytes | None:
        """The file's bytes, or None when it (or the folder) does not exist or is not ours."""
        with self._folder(create=False) as folder:
            if folder is None:
                return None
            try:
                fd = os.open(name, os.O_RDONLY | _FILE_FLAGS, dir_fd=folder)
            except (FileNotFoundError, OSError):
                return None
            try:
                if not _is_own_file(os.fstat(fd)):
                    return None
                return os.read(fd, MAX_FILE_BYTES)
            finally:
                os.close(fd)

    def write(self, name: str, data: bytes) -> None:
        """Replace the file atomically (temp file, fsync-free rename: these files are transient)."""
        with self._folder(create=True) as folder:
            assert folder is not None
            tmp, fd = _new_temp(folder, name)
            try:
                try:
                    os.write(fd, data)
                finally:
                    os.close(fd)
                os.rename(tmp, name, src_dir_fd=folder, dst_dir_fd=folder)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=folder)
                raise

    def create_once(self, name: str, data: bytes) -> bytes:
        """The file's content; when it does not exist yet, create it with `data` first. Two
        requests racing both end up with the same content (the first link wins)."""
        existing = self.read(name)
        if existing:
            return existing
        with self._folder(create=True) as folder:
            assert folder is not None
            tmp, fd = _new_temp(folder, name)
            try:
                with contextlib.suppress(FileExistsError):
                    try:
                        os.write(fd, data)
                    finally:
                        os.close(fd)
                    # link() never replaces: whoever links first wins, the others read theirs.
                    os.link(tmp, name, src_dir_fd=folder, dst_dir_fd=folder, follow_symlinks=False)
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=folder)
        return self.read(name) or data

    def remove(self, name: str) -> None:
        with self._folder(create=False) as folder:
            if folder is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=folder)

    @contextlib.contextmanager
    def exclusive(self, name: str) -> Iterator[bool]:
        """Try to hold flock on lock file `name` without waiting; yields whether it was taken."""
        with self._folder(create=True) as folder:
            assert folder is not None
            try:
                fd = os.open(name, os.O_RDWR | os.O_CREAT | _FILE_FLAGS, 0o600, dir_fd=folder)
            except OSError as exc:  # a link (ELOOP) or someone else's file (EACCES) in its place
                raise _not_a_folder(self.path / name, exc, what="a plain file") from exc
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)


def _new_temp(folder: int, name: str) -> tuple[str, int]:
    tmp = f".{name}.tmp-{secrets.token_hex(6)}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _FILE_FLAGS
    return tmp, os.open(tmp, flags, 0o600, dir_fd=folder)


def _is_own_file(st: os.stat_result) -> bool:
    return stat.S_ISREG(st.st_mode) and st.st_nlink == 1 and st.st_uid == os.geteuid()


def _not_a_folder(path: Path, exc: OSError, what: str = "a plain folder") -> RecordError:
    return RecordError(
        f"{path} cannot be opened as {what} ({exc.strerror}): a link or something else may be "
        "in its place, and the plugin never follows links there. Remove it (the plugin makes "
        "it again), or ask your hosting provider."
    )
