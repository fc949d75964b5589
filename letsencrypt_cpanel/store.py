"""The user's record on disk: `~/.cpanel/nvdata/letsencrypt-cpanel`, locked, atomic, 0600.

Only code running *as the user* uses this (the cPanel CGI, or a worker started by
`impersonate.run_as_user`); root never opens a file in a user's home. Even so, nothing here
follows a link the user may have planted: `.cpanel` and `nvdata` are opened with
O_NOFOLLOW|O_DIRECTORY and everything below is reached relative to those descriptors; the lock
file and the record are opened with O_NOFOLLOW and refused unless they are regular files, owned
by the current uid, with a single link.

A save writes a temp file in the same folder (O_EXCL, 0600), fsyncs it, renames it over the
record and fsyncs the folder: a crash or a full disk leaves the old record or the new one, never
a mix. Temp files left by a crashed writer are removed by the next writer (under the lock).

Format and FleetSSL upgrade: `record_format`, `fleetssl_record`.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import os
import secrets
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import RecordError
from .record_format import Record, UnreadableRecord

RECORD_NAME = "letsencrypt-cpanel"
LOCK_NAME = "letsencrypt-cpanel.lock"
NVDATA_PARTS = (".cpanel", "nvdata")
_TMP_PREFIX = ".letsencrypt-cpanel.tmp-"
# A record with hundreds of certificates is a few MiB; anything far larger is not ours.
MAX_RECORD_BYTES = 32 * 1024 * 1024

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO planted under the record's name must not hang the open.
_FILE_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


class RecordTxn:
    """The record while its lock is held: change `.record`, then `.save()` (as often as needed).

    `moved_aside` is the path the unreadable record was renamed to when this transaction began
    (a fresh record was started); None otherwise. Callers report it, e.g. by showing
    `errors.RecordMovedAside(txn.moved_aside)`.
    """

    def __init__(self, store: RecordStore, folder_fd: int, record: Record, moved_aside: str | None):
        self.record = record
        self.moved_aside = moved_aside
        self._store = store
        self._folder_fd = folder_fd
        self._open = True

    def save(self) -> None:
        """Write `.record` atomically. Raises RecordError; on failure the old record is intact."""
        if not self._open:
            raise RecordError("The certificate record was saved after its lock was released.")
        data = self.record.to_json().encode("utf-8")
        _write_atomically(self._folder_fd, data, self._store.path)

    def _close(self) -> None:
        self._open = False


class RecordStore:
    """The record of the user whose home is `home` (the current process must run as that user).

    Constructing does no I/O. `locked()` is for changes, `load()` for reading only. Locks are
    per open file: a second `locked()` in the same process waits for the first like any other.
    """

    def __init__(self, home: Path) -> None:
        self.home = Path(home)

    @property
    def folder(self) -> Path:
        return self.home.joinpath(*NVDATA_PARTS)

    @property
    def path(self) -> Path:
        return self.folder / RECORD_NAME

    @property
    def lock_path(self) -> Path:
        return self.folder / LOCK_NAME

    @contextlib.contextmanager
    def locked(self, timeout: float = 30) -> Iterator[RecordTxn]:
        """Hold the user's lock (flock LOCK_EX) and yield the record, loaded, for changes.

        Creates the nvdata folders (0700) and the lock file (0600) when missing. A record that
        cannot be parsed is renamed `letsencrypt-cpanel.broken-<UTC time>` (never deleted) and a
        fresh one started: see `RecordTxn.moved_aside`. Nothing is saved unless `save()` is called
        (a FleetSSL record is upgraded in place by the first save).
        Raises RecordError: a link or foreign file in the way, the lock still held by another task
        after `timeout` seconds, a record from a newer plugin version, or an I/O error.
        """
        folder_fd = self._open_folder(create=True)
        assert folder_fd is not None
        txn: RecordTxn | None = None
        try:
            lock_fd = self._open_lock(folder_fd)
            try:
                _acquire(lock_fd, fcntl.LOCK_EX, timeout, self.path)
                _remove_stale_temps(folder_fd)
                moved_aside: str | None = None
                try:
                    record = Record.from_json(self._read(folder_fd) or b"")
                except UnreadableRecord:
                    moved_aside = self._move_aside(folder_fd)
                    record = Record()
                txn = RecordTxn(self, folder_fd, record, moved_aside)
                yield txn
            finally:
                if txn is not None:
                    txn._close()
                os.close(lock_fd)  # releases the flock
        finally:
            os.close(folder_fd)

    def load(self, timeout: float = 30) -> Record:
        """The record as it is now, read under a shared lock. Never writes the record.

        No folder yet = a fresh record (nothing is created). Raises RecordError as `locked()`
        does, and also when the record cannot be parsed (read-only: it is moved aside by the next
        `locked()`).
        """
        folder_fd = self._open_folder(create=False)
        if folder_fd is None:
            return Record()
        try:
            lock_fd = self._open_lock(folder_fd)
            try:
                _acquire(lock_fd, fcntl.LOCK_SH, timeout, self.path)
                return Record.from_json(self._read(folder_fd) or b"")
            finally:
                os.close(lock_fd)
        except UnreadableRecord as exc:
            raise RecordError(
                f"The certificate record {self.path} cannot be read ({exc}). It will be kept "
                "aside and a new one started at the next change."
            ) from exc
        finally:
            os.close(folder_fd)

    # -- the file system, link-safe ------------------------------------------------------------

    def _open_folder(self, *, create: bool) -> int | None:
        """A descriptor of the nvdata folder, or None when it is missing and `create` is False."""
        try:
            # The home comes from /etc/passwd (root's data), so it may be reached through a link.
            fd = os.open(self.home, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise RecordError(
                f"The home folder {self.home} cannot be opened: {exc.strerror}."
            ) from exc
        where = self.home
        try:
            for part in NVDATA_PARTS:
                where = where / part
                child = _open_subfolder(fd, part, where, create=create)
                os.close(fd)
                if child is None:
                    return None
                fd = child
            st = os.fstat(fd)
            if st.st_uid != os.geteuid():
                raise RecordError(
                    f"{where} belongs to uid {st.st_uid}, not to this user; refusing to use it."
                )
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise
        return fd

    def _open_lock(self, folder_fd: int) -> int:
        try:
            fd = os.open(LOCK_NAME, os.O_RDWR | os.O_CREAT | _FILE_FLAGS, 0o600, dir_fd=folder_fd)
        except OSError as exc:
            raise _open_error(self.lock_path, exc) from exc
        try:
            _check_own_file(os.fstat(fd), self.lock_path)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _read(self, folder_fd: int) -> bytes | None:
        """The record's bytes, or None when there is no record yet."""
        try:
            fd = os.open(RECORD_NAME, os.O_RDONLY | _FILE_FLAGS, dir_fd=folder_fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _open_error(self.path, exc) from exc
        try:
            _check_own_file(os.fstat(fd), self.path)
            chunks: list[bytes] = []
            size = 0
            while size <= MAX_RECORD_BYTES:
                chunk = os.read(fd, 1024 * 1024)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        except OSError as exc:
            raise RecordError(
                f"The certificate record {self.path} cannot be read: {exc.strerror}."
            ) from exc
        finally:
            os.close(fd)
        if size > MAX_RECORD_BYTES:
            raise UnreadableRecord(f"larger than {MAX_RECORD_BYTES // (1024 * 1024)} MiB")
        return b"".join(chunks)

    def _move_aside(self, folder_fd: int) -> str:
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        for attempt in range(1, 100):
            name = f"{RECORD_NAME}.broken-{stamp}" + (f"-{attempt}" if attempt > 1 else "")
            try:
                os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
            except FileNotFoundError:
                break
        else:
            raise RecordError(f"The certificate record {self.path} cannot be read or moved aside.")
        try:
            # Under the exclusive lock nobody else renames here, so the check above holds.
            os.rename(RECORD_NAME, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
            os.fsync(folder_fd)
        except OSError as exc:
            raise RecordError(
                f"The certificate record {self.path} cannot be read, and could not be moved "
                f"aside: {exc.strerror}."
            ) from exc
        return str(self.folder / name)


def _open_subfolder(parent_fd: int, name: str, where: Path, *, create: bool) -> int | None:
    for _ in range(2):
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        except FileNotFoundError:
            if not create:
                return None
            try:
                os.mkdir(name, 0o700, dir_fd=parent_fd)
            except FileExistsError:
                pass  # made by another task meanwhile: open it on the next pass
            except OSError as exc:
                raise RecordError(f"{where} cannot be created: {exc.strerror}.") from exc
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise RecordError(
                    f"{where} is a symbolic link or not a folder; refusing to follow it."
                ) from exc
            raise RecordError(f"{where} cannot be opened: {exc.strerror}.") from exc
    raise RecordError(f"{where} cannot be opened.")


def _open_error(path: Path, exc: OSError) -> RecordError:
    if exc.errno == errno.ELOOP:
        return RecordError(f"{path} is a symbolic link; refusing to read or write through it.")
    return RecordError(f"{path} cannot be opened: {exc.strerror}.")


def _check_own_file(st: os.stat_result, path: Path) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise RecordError(f"{path} is not a regular file; refusing to use it.")
    if st.st_nlink != 1:
        raise RecordError(f"{path} has other hard links; refusing to read or write through it.")
    if st.st_uid != os.geteuid():
        raise RecordError(f"{path} belongs to uid {st.st_uid}, not to this user; refusing it.")


def _acquire(fd: int, operation: int, timeout: float, path: Path) -> None:
    """flock with a deadline (flock itself has none): poll, backing off up to 0.2 s."""
    deadline = time.monotonic() + max(timeout, 0.0)
    pause = 0.01
    while True:
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        except OSError as exc:
            raise RecordError(f"{path} cannot be locked: {exc.strerror}.") from exc
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RecordError(
                f"Another task is working on these certificates ({path} is locked); "
                "try again in a minute."
            )
        time.sleep(min(pause, remaining))
        pause = min(pause * 2, 0.2)


def _remove_stale_temps(folder_fd: int) -> None:
    # Called with the exclusive lock held: any temp file here was left by a writer that died.
    for name in os.listdir(folder_fd):
        if name.startswith(_TMP_PREFIX):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=folder_fd)


def _write_atomically(folder_fd: int, data: bytes, path: Path) -> None:
    tmp = _TMP_PREFIX + secrets.token_hex(8)
    try:
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _FILE_FLAGS, 0o600, dir_fd=folder_fd
        )
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, RECORD_NAME, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=folder_fd)
        if isinstance(exc, OSError):
            raise RecordError(
                f"The certificate record {path} could not be saved ({exc.strerror}); "
                "the previous one was kept."
            ) from exc
        raise
    try:
        os.fsync(folder_fd)
    except OSError as exc:
        raise RecordError(
            f"The certificate record {path} may not be on disk: {exc.strerror}."
        ) from exc
