"""The user's record on disk: round trip, lock, atomic save, links refused, broken record kept."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from letsencrypt_cpanel.errors import RecordError
from letsencrypt_cpanel.record_format import (
    RECORD_VERSION,
    AcmeAccountEntry,
    CertificateEntry,
    Record,
)
from letsencrypt_cpanel.store import RecordStore

REPO = Path(__file__).resolve().parents[2]
PEBBLE_DIR = "https://127.0.0.1:14000/dir"
LE_DIR = "https://acme-v02.api.letsencrypt.org/directory"


@pytest.fixture
def home() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="lecp-store-"))
    base.chmod(0o755)
    home = base / "home"
    home.mkdir(mode=0o755)
    yield home
    shutil.rmtree(base)


def nvdata(home: Path) -> Path:
    folder = home / ".cpanel" / "nvdata"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sample_certificate(vhost: str = "example.com") -> CertificateEntry:
    return CertificateEntry(
        vhost=vhost,
        names=[vhost, f"www.{vhost}"],
        key_pem="-----BEGIN PRIVATE KEY-----\nSECRETKEY\n-----END PRIVATE KEY-----\n",
        key_type="rsa:2048",
        cert_pem="-----BEGIN CERTIFICATE-----\nLEAF\n-----END CERTIFICATE-----\n",
        chain_pem="-----BEGIN CERTIFICATE-----\nCHAIN\n-----END CERTIFICATE-----\n",
        not_before=1_700_000_000,
        not_after=1_707_776_000,
        order_url="https://ca/order/1",
        directory=PEBBLE_DIR,
        state="installed",
        cert_id="example_com_abc",
        key_id="abc",
        issued_at=1_700_000_100,
        last_attempt=1_700_000_100,
        extras={"from_the_future": [1, 2]},
    )


def test_round_trip(home: Path) -> None:
    store = RecordStore(home)
    with store.locked() as txn:
        assert txn.moved_aside is None
        assert txn.record == Record()
        txn.record.accounts[PEBBLE_DIR] = AcmeAccountEntry(
            directory=PEBBLE_DIR, key_pem="ACCOUNTKEY", url="https://ca/acct/1", email="a@b.c"
        )
        txn.record.certificates["example.com"] = sample_certificate()
        txn.record.disable_mail = True
        txn.record.last_renewal_check = 1_700_000_200
        txn.record.extras["cert_reuses"] = {"other.com": "example.com"}
        txn.save()
        saved = txn.record
    loaded = store.load()
    assert loaded == saved
    assert loaded.version == RECORD_VERSION
    with store.locked() as txn:
        assert txn.record == saved
    data = json.loads(store.path.read_text())
    assert data["version"] == RECORD_VERSION
    assert data["cert_reuses"] == {"other.com": "example.com"}
    assert data["certificates"]["example.com"]["from_the_future"] == [1, 2]


def test_accounts_keyed_by_directory_url(home: Path) -> None:
    store = RecordStore(home)
    with store.locked() as txn:
        for url in (PEBBLE_DIR, LE_DIR):
            txn.record.accounts[url] = AcmeAccountEntry(directory=url, key_pem=f"key for {url}")
        txn.save()
    data = json.loads(store.path.read_text())
    assert sorted(data["accounts"]) == sorted([PEBBLE_DIR, LE_DIR])
    loaded = store.load()
    assert loaded.accounts[LE_DIR].key_pem == f"key for {LE_DIR}"
    assert loaded.accounts[PEBBLE_DIR].directory == PEBBLE_DIR


def test_repr_never_shows_keys() -> None:
    record = Record(
        accounts={LE_DIR: AcmeAccountEntry(directory=LE_DIR, key_pem="ACCOUNTSECRET")},
        certificates={"example.com": sample_certificate()},
    )
    text = repr(record)
    assert "ACCOUNTSECRET" not in text
    assert "SECRETKEY" not in text
    assert "example.com" in text


def test_new_folders_and_files_are_private(home: Path) -> None:
    store = RecordStore(home)
    with store.locked() as txn:
        txn.record.certificates["example.com"] = sample_certificate()
        txn.save()
        txn.save()
    for folder in (home / ".cpanel", store.folder):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.lock_path.stat().st_mode) == 0o600
    assert sorted(os.listdir(store.folder)) == ["letsencrypt-cpanel", "letsencrypt-cpanel.lock"]


def test_stale_temp_files_are_removed_by_the_next_writer(home: Path) -> None:
    folder = nvdata(home)
    (folder / ".letsencrypt-cpanel.tmp-deadbeef").write_text("half a record")
    with RecordStore(home).locked():
        pass
    assert not (folder / ".letsencrypt-cpanel.tmp-deadbeef").exists()


def test_load_creates_nothing_when_there_is_no_record(home: Path) -> None:
    assert RecordStore(home).load() == Record()
    assert not (home / ".cpanel").exists()


def test_failed_write_keeps_the_old_record(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = RecordStore(home)
    with store.locked() as txn:
        txn.record.certificates["example.com"] = sample_certificate()
        txn.save()
    before = store.path.read_bytes()

    def full_disk(fd: int, data: object) -> int:
        raise OSError(28, "No space left on device")

    with store.locked() as txn:
        txn.record.certificates["other.com"] = sample_certificate("other.com")
        monkeypatch.setattr(os, "write", full_disk)
        with pytest.raises(RecordError, match="No space left on device"):
            txn.save()
        monkeypatch.undo()
    assert store.path.read_bytes() == before
    assert sorted(os.listdir(store.folder)) == ["letsencrypt-cpanel", "letsencrypt-cpanel.lock"]


FULL_DISK_SCRIPT = """
import resource, sys
from pathlib import Path
from letsencrypt_cpanel.errors import RecordError
from letsencrypt_cpanel.store import RecordStore
resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))
with RecordStore(Path(sys.argv[1])).locked() as txn:
    txn.record.extras["padding"] = "x" * 100_000
    try:
        txn.save()
    except RecordError as exc:
        print("refused:", exc)
    else:
        print("saved")
"""


def test_file_size_limit_keeps_the_old_record(home: Path) -> None:
    store = RecordStore(home)
    with store.locked() as txn:
        txn.record.certificates["example.com"] = sample_certificate()
        txn.save()
    before = store.path.read_bytes()
    out = subprocess.run(
        [sys.executable, "-c", FULL_DISK_SCRIPT, str(home)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert out.startswith("refused:"), out
    assert "previous one was kept" in out
    assert store.path.read_bytes() == before
    assert sorted(os.listdir(store.folder)) == ["letsencrypt-cpanel", "letsencrypt-cpanel.lock"]


HOLDER_SCRIPT = """
import sys, time
from pathlib import Path
from letsencrypt_cpanel.record_format import CertificateEntry
from letsencrypt_cpanel.store import RecordStore
with RecordStore(Path(sys.argv[1])).locked() as txn:
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    txn.record.certificates["holder.com"] = CertificateEntry(vhost="holder.com")
    txn.save()
"""


def start_holder(home: Path, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER_SCRIPT, str(home), str(seconds)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_lock_makes_a_second_writer_wait(home: Path) -> None:
    holder = start_holder(home, 1.0)
    try:
        started = time.monotonic()
        with RecordStore(home).locked(timeout=20) as txn:
            waited = time.monotonic() - started
            # The second writer sees the first one's save, so neither overwrites the other.
            assert "holder.com" in txn.record.certificates
            txn.record.certificates["second.com"] = CertificateEntry(vhost="second.com")
            txn.save()
    finally:
        assert holder.wait(timeout=20) == 0
    assert waited > 0.5
    assert set(RecordStore(home).load().certificates) == {"holder.com", "second.com"}


def test_lock_timeout_is_a_clear_error(home: Path) -> None:
    holder = start_holder(home, 3.0)
    try:
        with pytest.raises(RecordError, match="is locked"), RecordStore(home).locked(timeout=0.3):
            pass
    finally:
        assert holder.wait(timeout=20) == 0


def test_symlinked_record_is_refused(home: Path) -> None:
    target = home.parent / "elsewhere"
    target.write_text("not yours")
    (nvdata(home) / "letsencrypt-cpanel").symlink_to(target)
    store = RecordStore(home)
    with pytest.raises(RecordError, match="symbolic link"), store.locked():
        pass
    with pytest.raises(RecordError, match="symbolic link"):
        store.load()
    assert target.read_text() == "not yours"
    assert store.path.is_symlink()


def test_symlinked_lock_is_refused(home: Path) -> None:
    target = home.parent / "elsewhere-lock"
    target.write_text("root's file")
    dangling = home.parent / "never-created"
    (nvdata(home) / "letsencrypt-cpanel.lock").symlink_to(target)
    store = RecordStore(home)
    with pytest.raises(RecordError, match="symbolic link"), store.locked():
        pass
    assert target.read_text() == "root's file"
    store.lock_path.unlink()
    store.lock_path.symlink_to(dangling)
    with pytest.raises(RecordError, match="symbolic link"):
        store.load()
    assert not dangling.exists()


def test_hard_linked_record_is_refused(home: Path) -> None:
    target = home.parent / "elsewhere-hard"
    target.write_text('{"version": 1}')
    os.link(target, nvdata(home) / "letsencrypt-cpanel")
    store = RecordStore(home)
    with pytest.raises(RecordError, match="hard links"), store.locked():
        pass
    with pytest.raises(RecordError, match="hard links"):
        store.load()
    assert target.read_text() == '{"version": 1}'
    assert target.stat().st_nlink == 2


def test_hard_linked_lock_is_refused(home: Path) -> None:
    target = home.parent / "elsewhere-hard-lock"
    target.write_text("")
    os.link(target, nvdata(home) / "letsencrypt-cpanel.lock")
    with pytest.raises(RecordError, match="hard links"), RecordStore(home).locked():
        pass


@pytest.mark.parametrize("linked", [".cpanel", "nvdata"])
def test_symlinked_folder_is_refused(home: Path, linked: str) -> None:
    target = home.parent / "elsewhere-dir"
    target.mkdir()
    if linked == ".cpanel":
        (home / ".cpanel").symlink_to(target)
    else:
        (home / ".cpanel").mkdir()
        (home / ".cpanel" / "nvdata").symlink_to(target)
    store = RecordStore(home)
    with pytest.raises(RecordError, match="symbolic link"), store.locked():
        pass
    with pytest.raises(RecordError, match="symbolic link"):
        store.load()
    assert os.listdir(target) == []


def test_fifo_record_is_refused_without_hanging(home: Path) -> None:
    os.mkfifo(nvdata(home) / "letsencrypt-cpanel")
    with pytest.raises(RecordError, match="not a regular file"), RecordStore(home).locked():
        pass


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the file away")
def test_record_of_another_owner_is_refused(home: Path) -> None:
    record = nvdata(home) / "letsencrypt-cpanel"
    record.write_text('{"version": 1}')
    os.chown(record, 29001, 29001)
    with pytest.raises(RecordError, match="uid 29001"), RecordStore(home).locked():
        pass
    assert record.read_text() == '{"version": 1}'


@pytest.mark.parametrize(
    "content", [b"{not json", b"[1, 2]", b'{"version": 1, "certificates": []}', b"\xff\xfe"]
)
def test_unparseable_record_is_moved_aside(home: Path, content: bytes) -> None:
    (nvdata(home) / "letsencrypt-cpanel").write_bytes(content)
    store = RecordStore(home)
    with pytest.raises(RecordError, match="cannot be read"):
        store.load()  # read-only: reports, moves nothing
    assert store.path.read_bytes() == content
    with store.locked() as txn:
        assert txn.moved_aside is not None
        assert txn.record == Record()
        txn.record.certificates["example.com"] = sample_certificate()
        txn.save()
    moved = Path(txn.moved_aside)
    assert moved.parent == store.folder
    assert moved.name.startswith("letsencrypt-cpanel.broken-")
    assert moved.read_bytes() == content
    assert set(store.load().certificates) == {"example.com"}
    with store.locked() as txn:
        assert txn.moved_aside is None


def test_two_broken_records_in_one_second_are_both_kept(home: Path) -> None:
    store = RecordStore(home)
    moved = []
    for content in (b"first broken", b"second broken"):
        (nvdata(home) / "letsencrypt-cpanel").write_bytes(content)
        with store.locked() as txn:
            assert txn.moved_aside is not None
            moved.append(txn.moved_aside)
    assert [Path(m).read_bytes() for m in moved] == [b"first broken", b"second broken"]


def test_record_from_a_newer_version_is_left_alone(home: Path) -> None:
    content = b'{"version": 99, "certificates": {}}'
    (nvdata(home) / "letsencrypt-cpanel").write_bytes(content)
    store = RecordStore(home)
    with pytest.raises(RecordError, match="newer version"), store.locked():
        pass
    assert store.path.read_bytes() == content
    assert [n for n in os.listdir(store.folder) if "broken" in n] == []


def test_empty_record_file_is_a_fresh_record(home: Path) -> None:
    (nvdata(home) / "letsencrypt-cpanel").write_bytes(b"")
    with RecordStore(home).locked() as txn:
        assert txn.moved_aside is None
        assert txn.record == Record()


def test_save_after_the_lock_is_released_is_refused(home: Path) -> None:
    with RecordStore(home).locked() as txn:
        pass
    with pytest.raises(RecordError, match="lock was released"):
        txn.save()


# -- the format, by property ------------------------------------------------------------------

texts = st.text(max_size=30)
epochs = st.integers(min_value=0, max_value=2**40)
entries = st.builds(
    CertificateEntry,
    vhost=texts,
    names=st.lists(texts, max_size=4),
    key_pem=texts,
    cert_pem=texts,
    not_before=epochs,
    not_after=epochs,
    state=st.sampled_from(["issued", "installed", "replaced"]),
    failures=st.integers(min_value=0, max_value=100),
    alternate_chains=st.dictionaries(texts, texts, max_size=2),
    extras=st.dictionaries(
        texts.filter(lambda k: not hasattr(CertificateEntry(vhost=""), k)), texts, max_size=2
    ),
)


@settings(max_examples=60, deadline=None)
@given(
    certificates=st.dictionaries(texts, entries, max_size=3),
    directories=st.lists(texts, max_size=3),
    disable_mail=st.booleans(),
    last_check=epochs,
)
def test_any_record_survives_a_round_trip(
    certificates: dict[str, CertificateEntry],
    directories: list[str],
    disable_mail: bool,
    last_check: int,
) -> None:
    for vhost, entry in certificates.items():
        entry.vhost = vhost
    record = Record(
        accounts={d: AcmeAccountEntry(directory=d, key_pem="k" + d) for d in directories},
        certificates=certificates,
        disable_mail=disable_mail,
        last_renewal_check=last_check,
    )
    assert Record.from_json(record.to_json()) == record


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=200), st.from_regex(r'\{"version": ?1.*', fullmatch=True)))
def test_any_bytes_either_parse_or_raise_a_record_error(data: bytes | str) -> None:
    with contextlib.suppress(RecordError):
        Record.from_json(data)
