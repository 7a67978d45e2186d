"""The evidence directory: a trail's objects as S3 returned them, sealed by a manifest.

Layout (format `ctvalidate-evidence`, version 1)::

    DEST/
      manifest.jsonl      line 1: header {format, version, acquired_at, trail, source, public_keys: {file, sha256}}
                          then one line per object, sorted by bucket and key:
                          {bucket, key, file, sha256, size, etag, version_id, last_modified,
                           storage_class, sse, kms_key_id, sse_customer_algorithm, metadata, error}
      public-keys.json    the public keys, in the shape `aws cloudtrail list-public-keys` prints
      objects/BUCKET/KEY  each object byte for byte (keys that are not safe paths: objects/_/SHA256)
      objects/_versions/SHA256   older versions of an object, from a versioned bucket

From a versioned bucket, the history of every altered key (overwritten or deleted) follows
the object's own line: one line per version or delete marker, newest first, with
`version_id`, `is_latest` and `delete_marker` (a line with `is_latest` is a version line;
old evidence has none, and validates as before). A version line names its own file, or
`file: null` for a delete marker and for the current version (the object's line holds it).
The header's `buckets` records each bucket's versioning and Object Lock configuration.

The SHA-256 of manifest.jsonl is the seal; the manifest is written last, through
a temporary name, so a directory without it is an interrupted acquisition.
An object that could not be read at acquisition has `file: null` and `error:
{reason, message}` with the metadata HEAD gave.

Everything read back is hostile: the manifest may have been edited, files
replaced or linked elsewhere. Object files are opened only below `objects/`,
never through a symbolic link.

Reading keeps no per-object state in memory: the manifest's lines are copied, as they are
hashed and checked, into a private temporary SQLite database (`_ManifestIndex`: SQLite's temp
directory, TMPDIR or /var/tmp, about the manifest's size; unlinked at once, freed on close), and
read back from there, never from manifest.jsonl again.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import orjson

from ..core.keys import KeyRing, parse_public_key
from ..errors import (AccessDeniedError, ArchivedError, ConfigError, EvidenceModifiedError, FormatError,
                      KmsAccessDeniedError, NotFoundError, SourceError, TransportError)
from ..model import ObjectMeta, ObjectRef, TrailArn, format_time, parse_time
from .base import CHUNK, BucketProtection, ListedObject, ObjectStream, ObjectVersion, Source, TrailInfo

FORMAT = "ctvalidate-evidence"
VERSION = 1
MANIFEST = "manifest.jsonl"
KEYS_FILE = "public-keys.json"
MAX_MANIFEST_LINE = 1 << 20
MAX_MANIFEST_BYTES = 8 << 30

_ERRORS: dict[str, type[SourceError]] = {
    "not_found": NotFoundError, "access_denied": AccessDeniedError,
    "kms_access_denied": KmsAccessDeniedError, "archived": ArchivedError,
    "transport_error": TransportError,  # could not be read at acquisition, even after retries
}


def object_path(bucket: str, key: str) -> str:
    """The relative file name for an object: its bucket and key when they are a safe path."""
    parts = [bucket, *key.split("/")]
    safe = all(p and p not in (".", "..") and "\\" not in p and "\x00" not in p and len(p) < 256
               for p in parts) and len(key) < 900 and not key.startswith("/")
    if safe:
        return "objects/" + "/".join(parts)
    return "objects/_/" + hashlib.sha256(f"{bucket}/{key}".encode()).hexdigest()


def version_path(bucket: str, key: str, version_id: str) -> str:
    """The file of an older version: named by a hash, so that no key or version id can collide with another."""
    return "objects/_versions/" + hashlib.sha256(f"{bucket}\0{key}\0{version_id}".encode()).hexdigest()


def trail_to_json(t: TrailInfo | None) -> dict[str, Any] | None:
    if t is None:
        return None
    return {
        "name": t.name, "home_region": t.home_region, "account_id": t.account_id, "bucket": t.bucket,
        "prefix": t.prefix, "kms_key_id": t.kms_key_id, "is_organization_trail": t.is_organization_trail,
        "organization_id": t.organization_id, "is_multi_region": t.is_multi_region,
        "log_file_validation": t.log_file_validation, "is_logging": t.is_logging,
        "latest_digest_delivery": format_time(t.latest_digest_delivery),
        "latest_delivery": format_time(t.latest_delivery),
        "bucket_default_key": t.bucket_default_key, "raw": t.raw,
    }


def trail_from_json(d: Any) -> TrailInfo | None:
    if not isinstance(d, dict):
        return None

    def s(name: str) -> str | None:
        v = d.get(name)
        return v if isinstance(v, str) else None

    def t(name: str) -> datetime | None:
        v = s(name)
        try:
            return parse_time(v) if v else None
        except FormatError:
            return None

    def b(name: str) -> bool | None:
        v = d.get(name)
        return v if isinstance(v, bool) else None

    return TrailInfo(
        name=s("name") or "", home_region=s("home_region") or "", account_id=s("account_id") or "",
        bucket=s("bucket"), prefix=s("prefix") or "", kms_key_id=s("kms_key_id"),
        is_organization_trail=bool(b("is_organization_trail")), organization_id=s("organization_id"),
        is_multi_region=b("is_multi_region"), log_file_validation=b("log_file_validation"),
        is_logging=b("is_logging"), latest_digest_delivery=t("latest_digest_delivery"),
        latest_delivery=t("latest_delivery"), bucket_default_key=s("bucket_default_key"),
        raw=d.get("raw") if isinstance(d.get("raw"), dict) else {},
    )


def meta_to_json(meta: ObjectMeta) -> dict[str, Any]:
    return {
        "bucket": meta.ref.bucket, "key": meta.ref.key, "size": meta.size, "etag": meta.etag,
        "version_id": meta.version_id, "last_modified": format_time(meta.last_modified),
        "storage_class": meta.storage_class, "sse": meta.sse, "kms_key_id": meta.kms_key_id,
        "sse_customer_algorithm": meta.sse_customer_algorithm, "metadata": dict(meta.metadata),
        **({"lock_mode": meta.lock_mode, "lock_until": format_time(meta.lock_until), "legal_hold": meta.legal_hold}
           if meta.lock_mode or meta.legal_hold else {}),
    }


def _version_fields(v: ObjectVersion) -> dict[str, Any]:
    return {"version_id": v.version_id, "is_latest": v.is_latest, "delete_marker": v.delete_marker}


# --- writing ------------------------------------------------------------------------


class EvidenceWriter:
    """Writes an evidence directory; `finish` writes the manifest last and returns the seal."""

    def __init__(self, dest: str | os.PathLike[str]):
        self.root = Path(dest)
        if (self.root / MANIFEST).exists():
            raise ConfigError(f"{self.root} already holds an evidence directory (manifest.jsonl exists)")
        self.root.mkdir(parents=True, exist_ok=True)
        self._entries: dict[tuple[str, str], dict[str, Any]] = {}
        self._versions: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}  # (bucket, key) -> vid -> line
        self.buckets: dict[str, dict[str, Any]] = {}  # bucket -> BucketProtection.to_json()

    def add_version(self, version: ObjectVersion, meta: ObjectMeta | None = None,
                    chunks: Iterator[bytes] | list[bytes] | None = None) -> dict[str, Any]:
        """A version line: with its bytes (an older version), or without (a delete marker, the current one)."""
        ref = version.ref
        if chunks is not None and meta is not None:
            entry = self.add(meta, chunks, rel=version_path(ref.bucket, ref.key, version.version_id), current=False)
        else:
            entry = meta_to_json(meta or ObjectMeta(ref=ref, size=version.size, etag=version.etag,
                                                    last_modified=version.last_modified))
            entry.update(file=None, sha256=None, error=None)
        entry.update(_version_fields(version))
        if entry.get("last_modified") is None:
            entry["last_modified"] = format_time(version.last_modified)
        self._versions.setdefault((ref.bucket, ref.key), {})[version.version_id] = entry
        return entry

    def has_version(self, version: ObjectVersion) -> bool:
        e = self._versions.get((version.ref.bucket, version.ref.key), {}).get(version.version_id)
        return e is not None and (e.get("file") is not None or version.delete_marker or version.is_latest)

    def add(self, meta: ObjectMeta, chunks: Iterator[bytes] | list[bytes], rel: str | None = None,
            current: bool = True) -> dict[str, Any]:
        rel = rel or object_path(meta.ref.bucket, meta.ref.key)
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        sha = hashlib.sha256()
        size = 0
        tmp = path.with_name(path.name + ".part")
        with open(tmp, "wb") as f:
            for c in chunks:
                sha.update(c)
                size += len(c)
                f.write(c)
        os.replace(tmp, path)
        entry = meta_to_json(meta)
        entry.update(file=rel, sha256=sha.hexdigest(), size=size, error=None)
        if current:
            self._entries[(meta.ref.bucket, meta.ref.key)] = entry
        return entry

    def add_unreadable(self, meta: ObjectMeta, error: SourceError) -> None:
        entry = meta_to_json(meta)
        entry.update(file=None, sha256=None, error={"reason": error.reason, "message": str(error)[:500]})
        self._entries[(meta.ref.bucket, meta.ref.key)] = entry

    def has(self, ref: ObjectRef) -> bool:
        return (ref.bucket, ref.key) in self._entries

    def finish(self, *, acquired_at: datetime, trail: TrailInfo | None, public_keys: list[dict[str, Any]],
               source: str = "s3") -> str:
        keys_bytes = orjson.dumps({"PublicKeyList": public_keys}, option=orjson.OPT_INDENT_2)
        (self.root / KEYS_FILE).write_bytes(keys_bytes)
        header = {
            "format": FORMAT, "version": VERSION, "acquired_at": format_time(acquired_at),
            "source": source, "trail": trail_to_json(trail),
            "public_keys": {"file": KEYS_FILE, "sha256": hashlib.sha256(keys_bytes).hexdigest()},
            "objects": len(self._entries),
        }
        if self._versions:
            header["versions"] = sum(len(v) for v in self._versions.values())
        if self.buckets:
            header["buckets"] = dict(sorted(self.buckets.items()))
        lines = [orjson.dumps(header)]
        for k in sorted(set(self._entries) | set(self._versions)):
            if k in self._entries:
                lines.append(orjson.dumps(self._entries[k]))
            versions = self._versions.get(k, {})
            lines += [orjson.dumps(e) for e in versions.values()]  # as listed: newest first
        data = b"\n".join(lines) + b"\n"
        tmp = self.root / (MANIFEST + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, self.root / MANIFEST)
        return hashlib.sha256(data).hexdigest()


# --- reading -------------------------------------------------------------------------


@dataclass(slots=True)
class _Entry:
    bucket: str
    key: str
    file: str | None
    sha256: str | None
    meta: ObjectMeta
    error: dict[str, Any] | None
    version: ObjectVersion | None = None  # a version line (versioned bucket)


class EvidenceStream(ObjectStream):
    def __init__(self, entry: _Entry, fd: int):
        self.meta = entry.meta
        self._entry = entry
        self._file = os.fdopen(fd, "rb", buffering=0)
        self._sha = hashlib.sha256()
        self._done = False

    def chunks(self) -> Iterator[bytes]:
        while True:
            c = self._file.read(CHUNK)
            if not c:
                break
            self._sha.update(c)
            yield c
        self._done = True
        self._check()

    def _check(self) -> None:
        if self._sha.hexdigest() != self._entry.sha256:
            raise EvidenceModifiedError(
                f"bytes differ from the manifest (SHA-256 {self._sha.hexdigest()[:16]}…, "
                f"acquired {str(self._entry.sha256)[:16]}…)")

    def verify_rest(self) -> None:
        if not self._done:
            for c in iter(lambda: self._file.read(CHUNK), b""):
                self._sha.update(c)
            self._done = True
            self._check()

    def close(self) -> None:
        self._file.close()


def _b(text: str) -> bytes:
    """A bucket, key or version id as the index stores it: UTF-8, whose byte order is Python's str order.
    (surrogatepass: a prefix from a non-UTF-8 command line still compares, and in the same order)"""
    return text.encode("utf-8", "surrogatepass")


def _upper(prefix: bytes) -> bytes | None:
    """The least byte string after every string that starts with `prefix` (None: no bound)."""
    p = prefix.rstrip(b"\xff")
    return p[:-1] + bytes([p[-1] + 1]) if p else None


def _manifest_lines(f: BinaryIO, sha: Any, manifest: Path) -> Iterator[tuple[int, bytes]]:
    """The manifest's lines, numbered from 1, read in chunks and hashed as they are read.

    A line longer than MAX_MANIFEST_LINE is refused as soon as it is seen to be, without keeping more than
    the limit and a chunk of it; a longer line of nothing but whitespace is a blank line (skipped, as ever).
    """
    n, total, pending, overlong = 1, 0, b"", False

    def check(line: bytes) -> bytes:
        if (overlong or len(line) > MAX_MANIFEST_LINE) and line.strip():
            raise ConfigError(f"manifest line {n} is too long")
        return b"" if overlong else line

    while chunk := f.read(CHUNK):
        total += len(chunk)
        if total > MAX_MANIFEST_BYTES:
            raise ConfigError(f"{manifest} is larger than {MAX_MANIFEST_BYTES} bytes")
        sha.update(chunk)
        *done, rest = chunk.split(b"\n")
        for part in done:
            line, pending = check(pending + part), b""
            yield n, line
            n, overlong = n + 1, False
        pending += rest
        if len(pending) > MAX_MANIFEST_LINE or overlong:
            check(pending)  # raises unless blank so far
            pending, overlong = b"", True
    yield n, check(pending)


class _ManifestIndex:
    """The manifest's lines in a private temporary SQLite database, deleted when it is closed.

    `objects`: the current object of each (bucket, key), a later line replacing an earlier one; `versions`:
    every version line, by (bucket, key) then manifest order. Keys are UTF-8 BLOBs (memcmp order == str
    order). One connection shared by the pipeline's threads under a lock; listings fetch a page at a time
    (at most PAGE rows or PAGE_BYTES of lines) and hold no cursor while their caller works.
    """

    PAGE = 512
    PAGE_BYTES = 4 << 20
    BATCH = 1024

    def __init__(self, db: sqlite3.Connection):
        self._db: sqlite3.Connection | None = db
        self._lock = threading.Lock()
        self._objects: list[tuple[bytes, bytes, bytes]] = []
        self._versions: list[tuple[bytes, bytes, int, bytes, bytes]] = []

    @classmethod
    def create(cls, manifest: Path) -> "_ManifestIndex":
        try:
            db = sqlite3.connect("", check_same_thread=False, isolation_level=None)  # "": a private temp file
            db.executescript("""
                PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA temp_store = FILE;
                CREATE TABLE objects (bucket BLOB NOT NULL, key BLOB NOT NULL, line BLOB NOT NULL,
                                      PRIMARY KEY (bucket, key));
                CREATE TABLE versions (bucket BLOB NOT NULL, key BLOB NOT NULL, seq INTEGER NOT NULL,
                                       vid BLOB NOT NULL, line BLOB NOT NULL, PRIMARY KEY (bucket, key, seq));
                BEGIN;
            """)
        except sqlite3.Error as exc:
            raise ConfigError(f"{manifest}: cannot create a temporary database to index it: {exc}") from None
        return cls(db)

    # --- building (one thread, at open)

    def add(self, entry: _Entry, line: bytes, n: int) -> None:
        b, k = _b(entry.bucket), _b(entry.key)
        if entry.version is not None:
            self._versions.append((b, k, n, _b(entry.version.version_id), line))
        else:
            self._objects.append((b, k, line))
        if len(self._objects) + len(self._versions) >= self.BATCH:
            self._flush()

    def _flush(self) -> None:
        db = self._conn()
        db.executemany("INSERT OR REPLACE INTO objects VALUES (?, ?, ?)", self._objects)
        db.executemany("INSERT INTO versions VALUES (?, ?, ?, ?, ?)", self._versions)
        self._objects.clear()
        self._versions.clear()

    def commit(self) -> None:
        self._flush()
        self._conn().execute("COMMIT")

    # --- reading (any thread)

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise SourceError("the evidence directory's index is closed")
        return self._db

    def _fetch(self, sql: str, params: tuple[Any, ...], limit: int | None = None) -> list[tuple[Any, ...]]:
        """Rows of one query, the cursor closed before returning; at most `limit` rows or PAGE_BYTES."""
        with self._lock:
            try:
                cur = self._conn().execute(sql, params)
                try:
                    if limit is None:
                        return cur.fetchall()
                    rows, size = [], 0
                    for row in cur:
                        rows.append(row)
                        size += len(row[-1])
                        if len(rows) >= limit or size >= self.PAGE_BYTES:
                            break
                    return rows
                finally:
                    cur.close()
            except sqlite3.Error as exc:
                raise SourceError(f"the evidence directory's index could not be read: {exc}") from None

    def object_line(self, bucket: bytes, key: bytes) -> bytes | None:
        rows = self._fetch("SELECT line FROM objects WHERE bucket = ? AND key = ?", (bucket, key))
        return rows[0][0] if rows else None

    def version_line(self, bucket: bytes, key: bytes, vid: bytes) -> bytes | None:
        """The first line (in manifest order) of this version of the key."""
        rows = self._fetch("SELECT line FROM versions WHERE bucket = ? AND key = ? AND vid = ? ORDER BY seq "
                           "LIMIT 1", (bucket, key, vid))
        return rows[0][0] if rows else None

    def buckets(self) -> list[bytes]:
        """The buckets with objects, one index seek each (not a scan of every key)."""
        out: list[bytes] = []
        while rows := self._fetch("SELECT bucket FROM objects WHERE bucket > ? ORDER BY bucket LIMIT 1" if out
                                  else "SELECT bucket FROM objects ORDER BY bucket LIMIT 1", tuple(out[-1:])):
            out.append(rows[0][0])
        return out

    def objects(self, bucket: bytes, lo: bytes, after: bool, hi: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        """(key, line) of the objects from `lo` (past it when `after`) to before `hi`, in key order."""
        return self._pages("key, line", bucket, lo, after, hi, self.PAGE)

    def keys(self, bucket: bytes, lo: bytes, hi: bytes | None) -> Iterator[bytes]:
        """The keys from `lo` on, a small page at a time (list_folders jumps after the first folder)."""
        return (row[0] for row in self._pages("key", bucket, lo, False, hi, 32))

    def _pages(self, cols: str, bucket: bytes, lo: bytes, after: bool, hi: bytes | None,
               limit: int) -> Iterator[tuple[Any, ...]]:
        bound = " AND key < ?" if hi is not None else ""
        extra = (hi,) if hi is not None else ()
        while True:
            op = ">" if after else ">="
            rows = self._fetch(f"SELECT {cols} FROM objects WHERE bucket = ? AND key {op} ?{bound} ORDER BY key",
                               (bucket, lo, *extra), limit)
            yield from rows
            if not rows or (len(rows) < limit and sum(len(r[-1]) for r in rows) < self.PAGE_BYTES):
                return
            lo, after = rows[-1][0], True

    def versions(self, bucket: bytes, lo: bytes, after: bool, hi: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        """(key, line) of the version lines from key `lo` (past it when `after`), by key then manifest order."""
        bound = " AND key < ?" if hi is not None else ""
        extra = (hi,) if hi is not None else ()
        seq = 1 << 62 if after else -1
        while True:
            rows = self._fetch(f"SELECT key, seq, line FROM versions WHERE bucket = ? AND (key, seq) > (?, ?){bound} "
                               "ORDER BY key, seq", (bucket, lo, seq, *extra), self.PAGE)
            for key, _, line in rows:
                yield key, line
            if not rows or (len(rows) < self.PAGE and sum(len(r[-1]) for r in rows) < self.PAGE_BYTES):
                return
            lo, seq = rows[-1][0], rows[-1][1]

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


class EvidenceSource(Source):
    """An evidence directory, read through an index of its manifest that lives on disk, not in memory.

    The manifest is read once, in chunks, hashed as it is read (the seal is the hash of exactly the lines
    indexed), and every line is checked at open as before; the lines themselves go to a private temporary
    SQLite database (`_ManifestIndex`), so memory stays flat however many objects the directory holds.
    Lookups parse their one line again; listings page through the index in key order.
    """

    key_origin = "evidence"
    original_write_times = True

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        manifest = self.root / MANIFEST
        if not self.root.is_dir():
            raise ConfigError(f"evidence directory {root} does not exist or is not a directory")
        if not manifest.is_file():
            raise ConfigError(f"{root} has no {MANIFEST}: not an evidence directory, or its acquisition "
                              "was interrupted")
        self._root_real = os.path.realpath(self.root)
        self._index = _ManifestIndex.create(manifest)
        try:
            self._load(manifest)
        except BaseException:
            self._index.close()
            raise
        buckets = self.header.get("buckets")
        self._protection = ({b: BucketProtection.from_json(p) for b, p in buckets.items() if isinstance(b, str)}
                            if isinstance(buckets, dict) else {})
        self.problems: list[str] = []

    # --- manifest

    def _load(self, manifest: Path) -> None:
        """Read, hash, check and index the manifest in one pass."""
        sha = hashlib.sha256()
        with self._read_manifest(manifest) as f:
            lines = _manifest_lines(f, sha, manifest)
            self._read_header(manifest, next(lines)[1])
            try:
                for n, line in lines:
                    if line.strip():
                        self._index.add(self._parse_entry(line, n), line, n)
                self._index.commit()
            except sqlite3.Error as exc:
                raise ConfigError(f"{manifest}: could not index it in a temporary database: {exc}") from None
        self.manifest_sha256 = sha.hexdigest()

    def _read_header(self, manifest: Path, line: bytes) -> None:
        try:
            header = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"{manifest}: the header line is not JSON") from exc
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ConfigError(f"{manifest}: not a {FORMAT} manifest")
        if header.get("version") != VERSION:
            raise ConfigError(f"{manifest}: unsupported evidence format version {header.get('version')!r}")
        self.header = header
        try:
            self.acquired_at = parse_time(header.get("acquired_at"))
        except FormatError as exc:
            raise ConfigError(f"{manifest}: acquired_at is not a time") from exc
        self.trail = trail_from_json(header.get("trail"))

    def _read_manifest(self, manifest: Path) -> BinaryIO:
        st = os.lstat(manifest)
        if stat.S_ISLNK(st.st_mode):
            raise ConfigError(f"{manifest} is a symbolic link; refused")
        if st.st_size > MAX_MANIFEST_BYTES:
            raise ConfigError(f"{manifest} is larger than {MAX_MANIFEST_BYTES} bytes")
        try:
            fd = os.open(manifest, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError as exc:  # replaced by a link since lstat, or unreadable
            raise ConfigError(f"{manifest}: cannot be read: {exc.strerror}") from None
        return os.fdopen(fd, "rb", buffering=0)

    def _parse_entry(self, line: bytes, n: int) -> _Entry:
        if len(line) > MAX_MANIFEST_LINE:
            raise ConfigError(f"manifest line {n} is too long")
        try:
            d = orjson.loads(line)
            if not isinstance(d, dict):
                raise ValueError("not an object")
            bucket, key = d["bucket"], d["key"]
            if not isinstance(bucket, str) or not isinstance(key, str):
                raise ValueError("bucket/key not strings")
            md = d.get("metadata") or {}
            if not isinstance(md, dict):
                raise ValueError("metadata not an object")
            lm = d.get("last_modified")
            meta = ObjectMeta(
                ref=ObjectRef(bucket, key),
                size=d.get("size") if isinstance(d.get("size"), int) else None,
                etag=_opt_str(d.get("etag")), version_id=_opt_str(d.get("version_id")),
                last_modified=parse_time(lm) if isinstance(lm, str) else None,
                storage_class=_opt_str(d.get("storage_class")), sse=_opt_str(d.get("sse")),
                kms_key_id=_opt_str(d.get("kms_key_id")),
                sse_customer_algorithm=_opt_str(d.get("sse_customer_algorithm")),
                metadata={str(k).lower(): str(v) for k, v in md.items() if isinstance(v, (str, int, float))},
                lock_mode=_opt_str(d.get("lock_mode")),
                lock_until=parse_time(d["lock_until"]) if isinstance(d.get("lock_until"), str) else None,
                legal_hold=_opt_str(d.get("legal_hold")),
            )
            version = None
            if "is_latest" in d:
                vid = d.get("version_id")
                if not isinstance(vid, str) or not vid or len(vid) > 1024:
                    raise ValueError("a version line without a version_id")
                version = ObjectVersion(meta.ref, vid, d.get("is_latest") is True, d.get("delete_marker") is True,
                                        meta.last_modified, meta.size, meta.etag)
            err = d.get("error")
            return _Entry(bucket, key, _opt_str(d.get("file")), _opt_str(d.get("sha256")), meta,
                          err if isinstance(err, dict) else None, version)
        except (orjson.JSONDecodeError, KeyError, ValueError, FormatError) as exc:
            raise ConfigError(f"manifest line {n} is malformed: {exc}") from None

    def close(self) -> None:
        """Close (and so delete) the index; the source cannot be read afterwards."""
        self._index.close()

    def buckets(self) -> list[str]:
        """The buckets that have objects in the directory, in order."""
        return [b.decode("utf-8", "surrogatepass") for b in self._index.buckets()]

    # --- Source

    def list(self, bucket: str, prefix: str, start_after: str | None = None) -> Iterator[ListedObject]:
        p = _b(prefix)
        lo, after = (_b(start_after), True) if start_after is not None and start_after >= prefix else (p, False)
        for key, line in self._index.objects(_b(bucket), lo, after, _upper(p)):
            if not key.startswith(p):
                break
            yield _listed(line)

    def list_folders(self, bucket: str, prefix: str) -> list[str]:
        out: list[str] = []
        b, p = _b(bucket), _b(prefix)
        lo: bytes | None = p
        while lo is not None:
            lo, name = self._next_folder(b, p, lo)
            if name is not None:
                out.append(name.decode("utf-8", "surrogatepass"))
        return out

    def _next_folder(self, bucket: bytes, prefix: bytes, lo: bytes) -> tuple[bytes | None, bytes | None]:
        """The first folder at or after `lo` under `prefix`, and where to look for the next ("/" < "0": past it)."""
        for key in self._index.keys(bucket, lo, _upper(prefix)):
            if not key.startswith(prefix):
                break
            rest = key[len(prefix):]
            if b"/" in rest:
                name = rest.split(b"/", 1)[0]
                return prefix + name + b"0", name
        return None, None

    def _entry(self, ref: ObjectRef) -> _Entry:
        line = self._index.object_line(_b(ref.bucket), _b(ref.key))
        if line is None:
            raise NotFoundError(f"{ref.uri} is not in the evidence directory")
        return self._parse_entry(line, 0)

    def head(self, ref: ObjectRef) -> ObjectMeta:
        return self._entry(ref).meta

    def open(self, ref: ObjectRef) -> ObjectStream:
        e = self._entry(ref)
        if e.error is not None:
            cls = _ERRORS.get(str(e.error.get("reason")), AccessDeniedError)
            raise cls(f"at acquisition: {e.error.get('message', '')}"[:500])
        if e.file is None or e.sha256 is None:
            raise EvidenceModifiedError("the manifest names no file for this object")
        return EvidenceStream(e, self._open_inside(e.file))

    def _open_inside(self, rel: str) -> int:
        """Open `rel` below objects/ without following any symbolic link."""
        parts = rel.split("/")
        if (parts[0] != "objects" or rel.startswith("/") or any(p in ("", ".", "..") for p in parts)
                or "\x00" in rel or "\\" in rel):
            raise EvidenceModifiedError(f"the manifest names a file outside objects/: {rel[:200]!r}")
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_DIRECTORY", 0)
        try:
            dir_fd = os.open(self.root, flags)
        except OSError as exc:
            raise AccessDeniedError(f"cannot open the evidence directory: {exc.strerror}") from None
        try:
            for p in parts[:-1]:
                try:
                    nxt = os.open(p, flags, dir_fd=dir_fd)
                except OSError as exc:
                    raise EvidenceModifiedError(f"{rel[:200]}: {exc.strerror} (a folder was removed or is a link)") from None
                os.close(dir_fd)
                dir_fd = nxt
            try:
                fd = os.open(parts[-1], os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0), dir_fd=dir_fd)
            except OSError as exc:
                raise EvidenceModifiedError(f"{rel[:200]}: {exc.strerror} (removed, or a link)") from None
        finally:
            os.close(dir_fd)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise EvidenceModifiedError(f"{rel[:200]} is not a regular file")
        return fd

    def trail_info(self, arn: TrailArn) -> TrailInfo | None:
        """The trail recorded at acquisition; for another trail's ARN only where it delivers (bucket, prefix,
        the bucket's default key), never the recorded trail's KMS key or status."""
        t = self.trail
        if t is None or (t.name, t.home_region, t.account_id) == (arn.name, arn.home_region, arn.account_id):
            return t
        self.problems.append(f"the evidence was acquired for trail {t.home_region}:{t.account_id}:{t.name}, "
                             f"not {arn}: that trail's configuration and status are not used")
        return TrailInfo(name=arn.name, home_region=arn.home_region, account_id=arn.account_id, bucket=t.bucket,
                         prefix=t.prefix, bucket_default_key=t.bucket_default_key)

    # --- history kept at acquisition

    def bucket_protection(self, bucket: str) -> BucketProtection | None:
        return self._protection.get(bucket)

    def list_versions(self, bucket: str, prefix: str, key_marker: str | None = None) -> Iterator[ObjectVersion]:
        p = _b(prefix)
        lo, after = (_b(key_marker), True) if key_marker is not None and key_marker >= prefix else (p, False)
        for key, line in self._index.versions(_b(bucket), lo, after, _upper(p)):
            if not key.startswith(p):
                break
            version = self._parse_entry(line, 0).version
            assert version is not None
            yield version

    def open_version(self, ref: ObjectRef, version_id: str) -> ObjectStream:
        line = self._index.version_line(_b(ref.bucket), _b(ref.key), _b(version_id))
        if line is None:
            raise NotFoundError(f"version {version_id} of {ref.uri} is not in the evidence directory")
        e = self._parse_entry(line, 0)
        assert e.version is not None
        if e.version.delete_marker:
            raise NotFoundError("a delete marker has no bytes")
        if e.file is None and e.version.is_latest:
            current = self._entry(ref)
            if current.meta.version_id not in (None, version_id):
                raise EvidenceModifiedError(f"the current object is version {current.meta.version_id}, "
                                            f"not {version_id}")
            return self.open(ref)
        if e.error is not None:
            cls = _ERRORS.get(str(e.error.get("reason")), AccessDeniedError)
            raise cls(f"at acquisition: {e.error.get('message', '')}"[:500])
        if e.file is None or e.sha256 is None:
            raise NotFoundError(f"version {version_id} was not acquired")
        return EvidenceStream(e, self._open_inside(e.file))

    def public_keys(self, regions: list[str], start: datetime, end: datetime) -> KeyRing:
        ring = KeyRing()
        info = self.header.get("public_keys") or {}
        path = self.root / KEYS_FILE
        try:
            if os.path.islink(path):
                raise OSError("is a symbolic link")
            data = path.read_bytes()
        except OSError as exc:
            self.problems.append(f"{KEYS_FILE}: {exc}")
            return ring
        modified = not isinstance(info, dict) or info.get("sha256") != hashlib.sha256(data).hexdigest()
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            self.problems.append(f"{KEYS_FILE} is not JSON")
            return ring
        if modified:
            self.problems.append(f"{KEYS_FILE} differs from the manifest; none of its keys is used")
        entries = doc.get("PublicKeyList") if isinstance(doc, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            if modified:
                fp = entry.get("Fingerprint") if isinstance(entry, dict) else None
                if isinstance(fp, str):
                    ring.reject(fp, f"{KEYS_FILE} in the evidence directory differs from its manifest")
                continue
            try:
                ring.add(parse_public_key(entry, origin="evidence"))
            except FormatError as exc:
                fp = entry.get("Fingerprint") if isinstance(entry, dict) else None
                if isinstance(fp, str):
                    ring.reject(fp, f"the evidence key file's key for it was refused: {exc}")
                self.problems.append(f"{KEYS_FILE}: {exc}")
        return ring

    def reference_time(self) -> datetime:
        return self.acquired_at


def _opt_str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _listed(line: bytes) -> ListedObject:
    """A listing's fields of a line `_parse_entry` accepted at open, read as it reads them (and no more:
    a listing of every object parses every line again)."""
    d = orjson.loads(line)
    size, lm = d.get("size"), d.get("last_modified")
    return ListedObject(ObjectRef(d["bucket"], d["key"]), size if isinstance(size, int) else None,
                        _opt_str(d.get("etag")), parse_time(lm) if isinstance(lm, str) else None,
                        _opt_str(d.get("storage_class")), _opt_str(d.get("version_id")))
