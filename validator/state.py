"""Incremental runs: a SQLite state file that remembers every object verified, so the next run fetches only
what is new or changed.

What a row holds: where the object lies, what the listing said of it (ETag, size, last-modified, storage
class, version id where the source knows it), what the GET said (encryption, last-modified, user metadata),
the verdict, and for a digest its own bytes (a few KB, gzip as stored), its signature and span; for a log
file the digest hash it was verified against. The pipeline asks `reusable_*` before it fetches: an object the
listing shows unchanged is judged again from the row with no GET (a digest's signature is re-verified from
its stored bytes with this run's keys; encryption and write-time rules are applied to the stored metadata
under this run's policy), so the verdict is the one a full run would reach. Only valid and warning rows are
reused; anything else is fetched again.

The file is a trust anchor too, and is treated as hostile when read:
 - its schema must be exactly ours (no triggers, no views), its rows must hash to the digest stored beside
   them (a file edited with sqlite3 is refused), and it is bound to one trail, bucket, prefix and kind of
   source;
 - `--state-sha256 HEX`: the file's SHA-256 as the previous run printed it; any other file is refused. Only
   this anchor stops someone who rewrites rows and their digest together.
Concurrency and interruption: the run holds SQLite's write lock (BEGIN IMMEDIATE) from start to end, so a
second run on the same file is refused; every update is one transaction committed at the end, so an
interrupted or failed run leaves the previous state as it was.

No boto3 here: the pipeline reads storage through its Source; this module sees only what it is given.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import orjson

from .errors import ConfigError
from .model import ObjectMeta, ObjectRef, format_time, parse_time
from .sources.base import ListedObject, keys_until

FORMAT = "ctvalidate-state"
VERSION = 1
SQLITE_MAGIC = b"SQLite format 3\x00"
MAX_STATE_BYTES = 64 << 30
MAX_KEPT_DIGEST = 1 << 20  # digests larger than this (absurd for CloudTrail) are not kept: fetched every run
LOCK_TIMEOUT = 2.0  # seconds a run waits for another run's lock before it refuses
TRUSTED = ("valid", "warning")

_SCHEMA = {
    "meta": "CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)",
    "objects": (
        "CREATE TABLE objects (bucket TEXT NOT NULL, key TEXT NOT NULL, kind TEXT NOT NULL, "
        "etag TEXT, size INTEGER, last_modified TEXT, storage_class TEXT, version_id TEXT, "
        "status TEXT NOT NULL, reason TEXT, verified_at TEXT NOT NULL, "
        "hash TEXT, sse TEXT, kms_key_id TEXT, sse_c TEXT, written_at TEXT, metadata TEXT, "
        "signature TEXT, start_time TEXT, end_time TEXT, body BLOB, lock_mode TEXT, lock_until TEXT, legal_hold TEXT, "
        "PRIMARY KEY (bucket, key))"),
    # a verified log file's CloudTrail control events (StopLogging, StartLogging, ...), for explaining gaps
    "events": "CREATE TABLE events (bucket TEXT NOT NULL, key TEXT NOT NULL, records BLOB NOT NULL, "
              "PRIMARY KEY (bucket, key))",
}
_COLUMNS = ("bucket", "key", "kind", "etag", "size", "last_modified", "storage_class", "version_id", "status",
            "reason", "verified_at", "hash", "sse", "kms_key_id", "sse_c", "written_at", "metadata", "signature",
            "start_time", "end_time", "body", "lock_mode", "lock_until", "legal_hold")


class StateError(ConfigError):
    """The state file is refused (exit 2): not ours, changed behind our back, another trail's, in use."""


@dataclass(frozen=True)
class Binding:
    """What a state file belongs to: one trail at one location, read from one kind of source."""

    trail_arn: str
    bucket: str
    prefix: str
    source: str  # "s3" or "evidence"
    copy_of: str | None = None

    def as_meta(self) -> dict[str, str]:
        return {"trail_arn": self.trail_arn, "bucket": self.bucket, "prefix": self.prefix, "source": self.source,
                "copy_of": self.copy_of or ""}


@dataclass(frozen=True)
class Row:
    """One object as the state recorded it (see the module docstring for the columns' meaning)."""

    bucket: str
    key: str
    kind: str  # "digest" | "log"
    etag: str | None
    size: int | None
    last_modified: str | None
    storage_class: str | None
    version_id: str | None
    status: str
    reason: str | None
    verified_at: str
    hash: str | None = None  # log: the digest's hash it matched; digest: SHA-256 of its uncompressed bytes
    sse: str | None = None
    kms_key_id: str | None = None
    sse_c: str | None = None
    written_at: str | None = None  # last-modified as the GET said (for write-time rules)
    metadata: str | None = None  # digest: its user metadata, JSON
    signature: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    body: bytes | None = None
    lock_mode: str | None = None  # Object Lock retention as the GET said (validator.history reports it)
    lock_until: str | None = None
    legal_hold: str | None = None

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.bucket, self.key)

    @property
    def trusted(self) -> bool:
        return self.status in TRUSTED

    def meta(self) -> ObjectMeta:
        """The object's metadata as the GET that verified it returned it."""
        md: dict[str, str] = {}
        if self.metadata:
            try:
                doc = orjson.loads(self.metadata)
                md = {str(k): str(v) for k, v in doc.items()} if isinstance(doc, dict) else {}
            except orjson.JSONDecodeError:
                md = {}
        return ObjectMeta(ref=self.ref, size=self.size, etag=self.etag, version_id=self.version_id,
                          last_modified=_time(self.written_at), storage_class=self.storage_class, sse=self.sse,
                          kms_key_id=self.kms_key_id, sse_customer_algorithm=self.sse_c, metadata=md,
                          lock_mode=self.lock_mode, lock_until=_time(self.lock_until), legal_hold=self.legal_hold)


def listing_changes(row: Row, listed: ListedObject) -> list[str]:
    """What differs between the listing now and the state's record ([] when the object is unchanged).

    ETag, size and last-modified always (S3 changes last-modified on every write, even of equal bytes);
    storage class; and version id where both the record and the listing know one.
    """
    if listed.etag is None and listed.last_modified is None:
        return ["the listing says neither ETag nor last-modified"]  # nothing to compare: always fetched
    out = []
    lm = _precise(listed.last_modified)
    if row.etag != listed.etag:
        out.append(f"ETag {row.etag} -> {listed.etag}")
    if row.size != listed.size:
        out.append(f"size {row.size} -> {listed.size}")
    if row.last_modified != lm:
        out.append(f"last-modified {row.last_modified} -> {lm}")
    if (row.storage_class or "STANDARD") != (listed.storage_class or "STANDARD"):
        out.append(f"storage class {row.storage_class} -> {listed.storage_class}")
    vid = getattr(listed, "version_id", None)
    if row.version_id and vid and row.version_id != vid:
        out.append(f"version {row.version_id} -> {vid}")
    return out


def file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fd_sha256(fd: int) -> str:
    """Hash through a descriptor kept open: closing any descriptor of a file drops the process's POSIX locks
    on it, SQLite's included, so the state file is never opened and closed while the run holds its lock."""
    h = hashlib.sha256()
    offset = 0
    while chunk := os.pread(fd, 1 << 20, offset):
        h.update(chunk)
        offset += len(chunk)
    return h.hexdigest()


class StateStore:
    """An open, locked, verified state file. `commit()` writes this run's updates; `close()` without it
    leaves the file as it was."""

    def __init__(self, path: Path, conn: sqlite3.Connection, anchored: bool, created: bool,
                 previous_sha256: str | None, fd: int | None = None):
        self.path = path
        self._db = conn
        self._fd = fd  # held until the connection is closed (see _fd_sha256)
        self.anchored = anchored
        self.created = created
        self.previous_sha256 = previous_sha256  # the file's hash before this run (None: new file)
        self.sha256: str | None = previous_sha256
        self.binding: Binding | None = None
        self.meta: dict[str, str] = {}
        self.written = 0
        self._lock = threading.Lock()  # lookups come from the main thread; the lock only guards misuse
        self._open = True

    # --- opening -------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str], expect_sha256: str | None = None) -> "StateStore":
        """Open (or create) and lock the state file, and check it before anything is read from it."""
        p = Path(path)
        expect = expect_sha256.strip().lower() if expect_sha256 else None
        if expect is not None and (len(expect) != 64 or any(c not in "0123456789abcdef" for c in expect)):
            raise StateError(f"--state-sha256 takes the 64 hex digits the previous run printed, not {expect_sha256!r}")
        if p.is_dir():
            raise StateError(f"--state {path}: is a directory")
        exists = p.exists()
        if p.is_symlink():
            raise StateError(f"--state {path}: is a symbolic link; refused")
        if not exists:
            if expect is not None:
                raise StateError(f"state file {path} does not exist, but --state-sha256 expects one")
            if not p.parent.is_dir():
                raise StateError(f"--state {path}: no directory {p.parent}")
        else:
            cls._check_header(p)
        try:
            conn = sqlite3.connect(str(p), timeout=LOCK_TIMEOUT, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StateError(f"cannot open the state file {path}: {exc}") from None
        fd: int | None = None
        try:
            conn.execute("PRAGMA trusted_schema=OFF")
            conn.execute("PRAGMA journal_mode=DELETE")  # one self-contained file after each commit
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    raise StateError(f"state file {path} is in use by another run (locked); run again when it "
                                     "has finished") from None
                raise
            fd = os.open(p, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            previous = _fd_sha256(fd) if os.fstat(fd).st_size > 0 else None
            if expect is not None and previous != expect:
                raise StateError(f"state file {path} hashes to {previous}, not to --state-sha256 {expect}: "
                                 "it was changed or replaced since the run that printed that hash")
            store = cls(p, conn, anchored=expect is not None, created=previous is None, previous_sha256=previous,
                        fd=fd)
            if previous is None:
                store._create()
            else:
                try:
                    store._verify()
                except (TypeError, ValueError, OverflowError) as exc:  # a hostile file's odd values
                    raise StateError(f"state file {path} is refused: malformed ({exc})") from None
            return store
        except StateError:
            conn.close()
            _close_fd(fd)
            raise
        except OSError as exc:
            conn.close()
            _close_fd(fd)
            raise StateError(f"cannot read the state file {path}: {exc.strerror}") from None
        except sqlite3.DatabaseError as exc:
            conn.close()
            _close_fd(fd)
            raise StateError(f"state file {path} is refused: not a readable ctvalidate state ({exc})") from None

    @staticmethod
    def _check_header(p: Path) -> None:
        size = p.stat().st_size
        if size == 0:
            return
        if size > MAX_STATE_BYTES:
            raise StateError(f"state file {p} is larger than {MAX_STATE_BYTES} bytes")
        with open(p, "rb") as f:
            if f.read(16) != SQLITE_MAGIC:
                raise StateError(f"state file {p} is not an SQLite database; refused")

    def _create(self) -> None:
        for sql in _SCHEMA.values():
            self._db.execute(sql)
        self.meta = {"format": FORMAT, "version": str(VERSION), "created_at": _now(), "runs": "0"}
        self._write_meta()

    def _verify(self) -> None:
        tables = {(t, n): s for t, n, s in self._db.execute("SELECT type, name, sql FROM sqlite_master")}
        expected = {("table", n): s for n, s in _SCHEMA.items()}
        expected.update({("index", f"sqlite_autoindex_{n}_1"): None for n in _SCHEMA})
        if tables != expected:
            raise StateError(f"state file {self.path} is refused: its schema is not ctvalidate's (edited, or "
                             "another program's database)")
        self.meta = dict(self._db.execute("SELECT k, v FROM meta"))
        if self.meta.get("format") != FORMAT or self.meta.get("version") != str(VERSION):
            raise StateError(f"state file {self.path} is not a {FORMAT} version {VERSION} file")
        if self._rows_sha256() != self.meta.get("rows_sha256"):
            raise StateError(f"state file {self.path} is refused: its rows do not hash to the digest stored with "
                             "them (changed behind the tool's back)")

    # --- binding -------------------------------------------------------------------------------

    def bind(self, binding: Binding) -> None:
        """Refuse another trail's (or location's, or source kind's) state; a new file takes this binding."""
        recorded = {k: self.meta.get(k) for k in binding.as_meta()}
        if self.meta.get("trail_arn") is None:
            self.meta.update(binding.as_meta())
        elif recorded != binding.as_meta():
            diff = ", ".join(f"{k} {recorded[k]!r} (this run: {v!r})" for k, v in binding.as_meta().items()
                             if recorded[k] != v)
            raise StateError(f"state file {self.path} belongs to another trail or location: {diff}")
        self.binding = binding

    # --- reading -------------------------------------------------------------------------------

    def get(self, ref: ObjectRef) -> Row | None:
        with self._lock:
            cur = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM objects WHERE bucket = ? AND key = ?",
                                   (ref.bucket, ref.key))
            found = cur.fetchone()
        return _row(found) if found else None

    def rows_under(self, bucket: str, prefix: str, kind: str) -> Iterator[Row]:
        """Every row of `kind` whose key starts with `prefix`, in key order."""
        with self._lock:
            found = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM objects WHERE bucket = ? AND key >= ? AND key < ? AND kind = ? "
                "ORDER BY key", (bucket, prefix, prefix + "\U0010ffff", kind)).fetchall()
        for values in found:
            row = _row(values)
            if row is not None:
                yield row

    def trusted_digest_spans(self, bucket: str) -> Iterator[tuple[str, str | None, str | None]]:
        """(key, start_time, end_time) of every digest in `bucket` the state recorded valid or warning."""
        with self._lock:
            rows = self._db.execute("SELECT key, start_time, end_time FROM objects WHERE bucket = ? AND "
                                    "kind = 'digest' AND status IN ('valid', 'warning') ORDER BY key",
                                    (bucket,)).fetchall()
        for key, start, end in rows:
            if isinstance(key, str) and isinstance(start, (str, type(None))) and isinstance(end, (str, type(None))):
                yield key, start, end

    # --- writing -------------------------------------------------------------------------------

    def put(self, row: Row) -> None:
        with self._lock:
            self._db.execute(f"INSERT OR REPLACE INTO objects ({', '.join(_COLUMNS)}) VALUES "
                             f"({', '.join('?' * len(_COLUMNS))})", tuple(getattr(row, c) for c in _COLUMNS))
            self._db.execute("DELETE FROM events WHERE bucket = ? AND key = ?", (row.bucket, row.key))
            self.written += 1

    def put_events(self, ref: ObjectRef, records: bytes) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO events (bucket, key, records) VALUES (?, ?, ?)",
                             (ref.bucket, ref.key, records))

    def events(self, ref: ObjectRef) -> bytes | None:
        with self._lock:
            found = self._db.execute("SELECT records FROM events WHERE bucket = ? AND key = ?",
                                     (ref.bucket, ref.key)).fetchone()
        return bytes(found[0]) if found else None

    def commit(self) -> str:
        """Write this run's updates in one transaction; returns the file's new SHA-256 (the next anchor)."""
        with self._lock:
            self.meta["runs"] = str(int(self.meta.get("runs", "0") or 0) + 1)
            self.meta["updated_at"] = _now()
            self.meta["rows_sha256"] = self._rows_sha256()
            self._write_meta()
            self._db.execute("COMMIT")
            self.sha256 = _fd_sha256(self._fd) if self._fd is not None else None
            self._db.close()
            self._open = False
            _close_fd(self._fd)
            self._fd = None
        return self.sha256

    def close(self) -> None:
        """Without commit: roll back, the file stays as it was (interrupted or failed run)."""
        with self._lock:
            if self._open:
                try:
                    self._db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                self._db.close()
                self._open = False
            _close_fd(self._fd)
            self._fd = None
        if self.created and self.previous_sha256 is None:
            try:  # a file this run created and never committed holds nothing: leave no empty state behind
                if self.path.stat().st_size == 0:
                    self.path.unlink()
            except OSError:
                pass

    def _write_meta(self) -> None:
        self._db.execute("DELETE FROM meta")
        self._db.executemany("INSERT INTO meta (k, v) VALUES (?, ?)", sorted(self.meta.items()))

    def _rows_sha256(self) -> str:
        """SHA-256 over the binding and every row, in key order (bodies by their own hash)."""
        h = hashlib.sha256()
        bound = {k: self.meta.get(k) for k in ("format", "version", "trail_arn", "bucket", "prefix", "source",
                                               "copy_of", "created_at")}
        h.update(orjson.dumps(bound, option=orjson.OPT_SORT_KEYS) + b"\n")
        cur = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM objects ORDER BY bucket, key")
        for values in cur:
            *cols, body = values
            h.update(_canon([*cols, _blob_sha256(body)]))
        h.update(b"events\n")
        for bucket, key, records in self._db.execute("SELECT bucket, key, records FROM events ORDER BY bucket, key"):
            h.update(_canon([bucket, key, _blob_sha256(records)]))
        return h.hexdigest()


def _blob_sha256(value: Any) -> Any:
    return hashlib.sha256(value).hexdigest() if isinstance(value, bytes) else value


def _canon(values: list[Any]) -> bytes:
    """One row's canonical bytes, whatever types a hostile file put in its columns."""
    return orjson.dumps(values, default=lambda o: {"blob": bytes(o).hex()} if isinstance(
        o, (bytes, bytearray, memoryview)) else repr(o)) + b"\n"


_INTS = {"size"}
_BLOBS = {"body"}


def _row(values: tuple) -> Row | None:
    """A row as read back, with every column of the type it was written with; else None (fetched again).
    Its digest covers only edits made without recomputing it, so the types are checked here too."""
    for name, value in zip(_COLUMNS, values):
        want = int if name in _INTS else bytes if name in _BLOBS else str
        if value is not None and (type(value) is not want):
            return None
    row = Row(*values)
    return row if row.kind in ("digest", "log") and isinstance(row.status, str) else None


def _close_fd(fd: int | None) -> None:
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass


# --- rows from what a run verified ----------------------------------------------------------------


def _time(text: str | None) -> datetime | None:
    try:
        return parse_time(text) if text else None
    except Exception:
        return None


def _now() -> str:
    return format_time(datetime.now(timezone.utc)) or ""


def digest_row(listed: ListedObject, meta: ObjectMeta | None, body: bytes | None, status: str, reason: str | None,
               sha256: str | None, signature: str | None, start: datetime | None, end: datetime | None) -> Row:
    kept = body if body is not None and len(body) <= MAX_KEPT_DIGEST else None
    return Row(bucket=listed.ref.bucket, key=listed.ref.key, kind="digest", **_listing_columns(listed, meta),
               status=status, reason=reason, verified_at=_now(), hash=sha256, **_meta_columns(meta),
               metadata=orjson.dumps(dict(meta.metadata)).decode() if meta is not None else None,
               signature=signature, start_time=format_time(start), end_time=format_time(end), body=kept)


def log_row(listed: ListedObject, meta: ObjectMeta | None, status: str, reason: str | None,
            expected_hash: str | None) -> Row:
    return Row(bucket=listed.ref.bucket, key=listed.ref.key, kind="log", **_listing_columns(listed, meta),
               status=status, reason=reason, verified_at=_now(), hash=expected_hash, **_meta_columns(meta))


def _listing_columns(listed: ListedObject, meta: ObjectMeta | None) -> dict[str, Any]:
    vid = getattr(listed, "version_id", None) or (meta.version_id if meta is not None else None)
    return {"etag": listed.etag, "size": listed.size, "last_modified": _precise(listed.last_modified),
            "storage_class": listed.storage_class, "version_id": vid}


def _precise(t: datetime | None) -> str | None:
    """A listing's last-modified to the microsecond it gives (ISO 8601, Z): two writes in one second differ
    wherever the listing tells them apart."""
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if t is not None else None


def _meta_columns(meta: ObjectMeta | None) -> dict[str, Any]:
    if meta is None:
        return {}
    return {"sse": meta.sse, "kms_key_id": meta.kms_key_id, "sse_c": meta.sse_customer_algorithm,
            "written_at": format_time(meta.last_modified), "lock_mode": meta.lock_mode,
            "lock_until": format_time(meta.lock_until), "legal_hold": meta.legal_hold}


# --- watching the source ------------------------------------------------------------------------


class ObservingSource:
    """Everything as the wrapped source does it, while remembering what the run needs for its state:
    what each listing said of each object, the metadata of each object opened, and the bytes of each
    digest read (capped). A listing can be taken ahead (`prefetch`) and is then replayed once to the
    pipeline's own identical `list` call, so the state costs no second LIST."""

    def __init__(self, source: Any):
        self._source = source
        self.listed: dict[ObjectRef, ListedObject] = {}
        self.metas: dict[ObjectRef, ObjectMeta] = {}
        self.bodies: dict[ObjectRef, bytes] = {}
        self._replay: dict[tuple[str, str, str | None], list[ListedObject]] = {}

    def list(self, bucket: str, prefix: str, start_after: str | None = None) -> Iterator[ListedObject]:
        kept = self._replay.pop((bucket, prefix, start_after), None)
        if kept is not None:
            yield from kept
            return
        for obj in self._source.list(bucket, prefix, start_after):
            self.listed[obj.ref] = obj
            yield obj

    def prefetch(self, bucket: str, prefix: str, start_after: str | None, stop_after_day: str) -> None:
        """List `prefix` now, up to the first key of a day after `stop_after_day` (as the pipeline stops)."""
        kept: list[ListedObject] = []
        for obj in self._source.list(bucket, prefix, start_after):
            self.listed[obj.ref] = obj
            kept.append(obj)
            if obj.ref.key[len(prefix):len(prefix) + 10] > stop_after_day:
                break
        self._replay[(bucket, prefix, start_after)] = kept

    def list_range(self, bucket: str, prefix: str, after: str, until: str,
                   expected: int | None = None) -> Iterator[ListedObject]:
        return keys_until(self.list(bucket, prefix, after), until)  # observed, as every listing

    def open(self, ref: ObjectRef) -> Any:
        stream = self._source.open(ref)
        self.metas[ref] = stream.meta
        if "/CloudTrail-Digest/" in ref.key:
            self.bodies.pop(ref, None)
            return _KeepingStream(stream, ref, self.bodies)
        return stream

    def forget(self, keep_replay: bool = False) -> None:
        """Drop what was remembered (after each group: memory stays bounded by one group)."""
        self.listed.clear()
        self.metas.clear()
        self.bodies.clear()
        if not keep_replay:
            self._replay.clear()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)


class _KeepingStream:
    def __init__(self, stream: Any, ref: ObjectRef, into: dict[ObjectRef, bytes]):
        self._stream, self._ref, self._into = stream, ref, into

    def chunks(self) -> Iterator[bytes]:
        buf = bytearray()
        for chunk in self._stream.chunks():
            if buf is not None:
                buf += chunk
                if len(buf) > MAX_KEPT_DIGEST:
                    buf = None
            yield chunk
        if buf is not None:
            self._into[self._ref] = bytes(buf)

    def __enter__(self) -> "_KeepingStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self._stream.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def changed_note(row: Row | None, changes: list[str]) -> str | None:
    """The message suffix for an object that changed since the state's record of it."""
    if row is None or not changes:
        return None
    return (f"changed since the state recorded it {row.status} at {row.verified_at}: " + ", ".join(changes))


__all__ = ["Binding", "ObservingSource", "Row", "StateError", "StateStore", "changed_note", "digest_row",
           "file_sha256", "listing_changes", "log_row"]
