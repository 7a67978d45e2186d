"""`ctvalidate acquire`: copy what a validation reads from S3 into a sealed evidence directory.

The simplest correct way to know which objects an offline validation will need
is to run the validation and keep what it touches. So the S3 source is wrapped
in a recording source that

 - writes every object the validation opens into the evidence directory, byte
   for byte with the metadata of its GET, and serves the validation from that
   file (so what was checked is exactly what was stored);
 - records objects it could not read with the metadata HEAD gives (SSE-C, the
   KMS key) and the reason, so that the offline verdict is the same;
 - remembers every CloudTrail object it lists, and afterwards copies those near
   the window that the validation did not read (log files no digest lists, other
   trails' digests in the same folder);
 - in a versioned bucket, keeps the history of every altered key it lists (each
   version's bytes, each delete marker), so that the offline validation sees the
   same history.

The manifest is written last, through a temporary name (EvidenceWriter.finish):
an interrupted acquisition leaves no manifest and never looks complete.
"""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any, Iterator

import orjson

from .core.keys import KeyRing
from .errors import ConfigError, NotFoundError, SourceError
from .model import ObjectMeta, ObjectRef, TrailArn, format_time, parse_key
from .policy import RunConfig
from .history import altered
from .sources.base import CHUNK, BucketProtection, ListedObject, ObjectStream, ObjectVersion, Source, TrailInfo
from .sources.evidence import MANIFEST, EvidenceWriter, object_path

UTC = timezone.utc
#: how far outside the window listed-but-unread objects are still copied (the pipeline's own margins)
COPY_MARGIN = timedelta(hours=2)


@dataclass(frozen=True)
class AcquireRequest:
    config: RunConfig
    dest: str
    public_key_files: tuple[str, ...] = ()
    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None


class _FileStream(ObjectStream):
    """An acquired object, read back from the evidence directory."""

    def __init__(self, meta: ObjectMeta, path: Path):
        self.meta = meta
        self._file = open(path, "rb", buffering=0)

    def chunks(self) -> Iterator[bytes]:
        for c in iter(lambda: self._file.read(CHUNK), b""):
            yield c

    def close(self) -> None:
        self._file.close()


class RecordingSource(Source):
    """A source that copies into an EvidenceWriter everything the validation reads, and notes what it lists."""

    def __init__(self, inner: Source, writer: EvidenceWriter):
        self.inner = inner
        self.writer = writer
        self.key_origin = inner.key_origin
        self.original_write_times = inner.original_write_times
        self.listed: dict[ObjectRef, ListedObject] = {}
        self.acquired: dict[ObjectRef, tuple[ObjectMeta, Path]] = {}
        self.unreadable: dict[ObjectRef, SourceError] = {}
        self.trail: TrailInfo | None = None
        self.key_entries: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._ref_locks: dict[ObjectRef, threading.Lock] = {}
        self.versions: dict[tuple[ObjectRef, str], ObjectVersion] = {}  # the altered keys' history, as listed
        self.acquired_versions: set[tuple[ObjectRef, str]] = set()

    @property
    def problems(self) -> list[str]:
        return getattr(self.inner, "problems", [])

    def _ref_lock(self, ref: ObjectRef) -> threading.Lock:
        with self._lock:
            return self._ref_locks.setdefault(ref, threading.Lock())

    # --- Source

    def list(self, bucket: str, prefix: str, start_after: str | None = None) -> Iterator[ListedObject]:
        for obj in self.inner.list(bucket, prefix, start_after):
            if parse_key(obj.ref.key) is not None:
                self.listed[obj.ref] = obj
            yield obj

    def list_folders(self, bucket: str, prefix: str) -> list[str]:
        return self.inner.list_folders(bucket, prefix)

    def head(self, ref: ObjectRef) -> ObjectMeta:
        return self.inner.head(ref)

    def bucket_protection(self, bucket: str) -> BucketProtection | None:
        protection = self.inner.bucket_protection(bucket)
        if protection is not None:
            self.writer.buckets[bucket] = protection.to_json()
        return protection

    def list_versions(self, bucket: str, prefix: str, key_marker: str | None = None) -> Iterator[ObjectVersion]:
        for versions in altered(self.inner.list_versions(bucket, prefix, key_marker), keep_all=True):
            if len(versions) > 1 or versions[0].delete_marker:
                with self._lock:
                    for v in versions:
                        if (v.ref, v.version_id) not in self.versions:
                            self.versions[(v.ref, v.version_id)] = v
                            self.writer.add_version(v)  # placeholder, in listing order; bytes come on open
            yield from versions

    def open_version(self, ref: ObjectRef, version_id: str) -> ObjectStream:
        with self._ref_lock(ref):
            v = self.versions.get((ref, version_id))
            if v is None or v.delete_marker or v.is_latest:  # not recorded history, or held by the object's line
                return self.inner.open_version(ref, version_id)
            stream = self.inner.open_version(ref, version_id)
            with stream:
                try:
                    entry = self.writer.add_version(v, stream.meta, stream.chunks())
                except BaseException:
                    self.writer.add_version(v)
                    raise
            self.acquired_versions.add((ref, version_id))
            return _FileStream(stream.meta, self.writer.root / entry["file"])

    def open(self, ref: ObjectRef) -> ObjectStream:
        with self._ref_lock(ref):
            got = self.acquired.get(ref)
            if got is None:
                got = self._acquire(ref)
        return _FileStream(*got)

    def _acquire(self, ref: ObjectRef) -> tuple[ObjectMeta, Path]:
        try:
            stream = self.inner.open(ref)
        except NotFoundError:
            raise  # absent objects are absent from the evidence too
        except SourceError as exc:
            self._unreadable(ref, exc, None)
            raise
        with stream:
            try:
                entry = self.writer.add(stream.meta, stream.chunks())
            except SourceError as exc:  # broke mid-stream: the pipeline reads it again
                self._discard_part(ref)
                self._unreadable(ref, exc, stream.meta)
                raise
            except BaseException:
                self._discard_part(ref)
                raise
        got = (stream.meta, self.writer.root / entry["file"])
        self.acquired[ref] = got
        self.unreadable.pop(ref, None)
        return got

    def _unreadable(self, ref: ObjectRef, exc: SourceError, meta: ObjectMeta | None) -> None:
        if meta is None:
            try:
                meta = self.inner.head(ref)
            except SourceError:
                meta = ObjectMeta(ref=ref)
        self.writer.add_unreadable(meta, exc)
        self.unreadable[ref] = exc

    def _discard_part(self, ref: ObjectRef) -> None:
        part = self.writer.root / (object_path(ref.bucket, ref.key) + ".part")
        try:
            part.unlink()
        except OSError:
            pass

    def trail_info(self, arn: TrailArn) -> TrailInfo | None:
        self.trail = self.inner.trail_info(arn)
        return self.trail

    def public_keys(self, regions: list[str], start: datetime | None, end: datetime) -> KeyRing:
        ring = self.inner.public_keys(regions, start, end)
        self.key_entries.update(getattr(self.inner, "public_key_entries", {}) or {})
        return ring

    def reference_time(self) -> datetime:
        return self.inner.reference_time()

    def close(self) -> None:
        self.inner.close()

    # --- after the validation

    def copy_unread(self, lo: datetime | None, hi: datetime, workers: int) -> int:
        """Copy listed CloudTrail objects near [lo, hi] that the validation did not read. Returns how many."""
        todo = []
        for ref in sorted(self.listed):
            if ref in self.acquired or ref in self.unreadable:
                continue
            name = parse_key(ref.key)
            if name is None:
                continue
            t_end = name.time + timedelta(minutes=1)
            if (lo is None or t_end >= lo - COPY_MARGIN) and name.time <= hi + COPY_MARGIN:
                todo.append(ref)

        def copy(ref: ObjectRef) -> bool:
            try:
                self.open(ref).close()
                return True
            except NotFoundError:
                return False  # deleted since it was listed
            except SourceError:
                return False  # recorded as unreadable

        def copy_version(item: tuple[ObjectRef, str]) -> bool:
            try:
                self.open_version(*item).close()
                return True
            except SourceError:
                return False

        versions = sorted(k for k, v in self.versions.items()
                          if not v.delete_marker and not v.is_latest and k not in self.acquired_versions)
        pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="ctv-copy")
        try:
            return sum(pool.map(copy, todo)) + sum(pool.map(copy_version, versions))
        finally:  # on Ctrl-C, do not wait for the queued copies
            pool.shutdown(wait=False, cancel_futures=True)


def _key_file_entries(paths: tuple[str, ...]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for path in paths:
        doc = orjson.loads(Path(path).read_bytes())  # load_key_files checked them already
        items = doc.get("PublicKeyList") if isinstance(doc, dict) else doc
        entries += [e for e in items or [] if isinstance(e, dict)]
    return entries


def _dedupe(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[tuple[Any, Any]] = set()
    out = []
    for e in entries:
        k = (e.get("Fingerprint"), e.get("Value"))
        if k not in seen:
            seen.add(k)
            out.append(e)
    return out


def _counts(counter: Any) -> str:
    return ", ".join(f"{n} {status}" for status, n in sorted(counter.items())) or "none"


def run_acquire(req: AcquireRequest, out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    """Acquire; 0 when every object was copied, 3 when some could not be read (recorded), 2 before starting,
    130 when interrupted (no manifest is written)."""
    out = out or sys.stdout
    err = err or sys.stderr
    dest = Path(req.dest)
    try:
        return _acquire(req, dest, out, err)
    except KeyboardInterrupt:
        err.write(f"ctvalidate: interrupted; {dest} is incomplete and has no {MANIFEST}\n")
        err.flush()
        return 130
    except (ConfigError, SourceError) as exc:
        err.write(f"ctvalidate: error: {exc}\n")
        return 2


def _acquire(req: AcquireRequest, dest: Path, out: IO[str], err: IO[str]) -> int:
    from .app import ValidateRequest, load_keys
    from .pipeline import Validation
    from .sources.s3 import S3Source

    keys, origin = load_keys(ValidateRequest(config=req.config, public_key_files=req.public_key_files))
    if dest.exists() and not dest.is_dir():
        raise ConfigError(f"{dest} exists and is not a directory")
    if dest.is_dir() and any(dest.iterdir()) and not (dest / MANIFEST).exists():
        raise ConfigError(f"{dest} is not empty: acquire into a new or empty directory")
    s3 = S3Source.create(endpoint_url=req.endpoint_url, region=req.region, profile=req.profile,
                         workers=req.config.workers)
    writer = EvidenceWriter(dest)
    source = RecordingSource(s3, writer)
    try:
        validation = Validation(source, req.config, keys, origin)
        for problem in source.problems:
            err.write(f"ctvalidate: warning: {problem}\n")
        for _ in validation.records():
            pass
        for problem in validation.history.problems:
            err.write(f"ctvalidate: warning: {problem}\n")
        lo = req.config.start or validation.oldest_found
        copied = source.copy_unread(lo, validation.window_end, req.config.workers)
        acquired_at = validation.reference_time  # "now" for the verdicts at acquisition, and offline
        if req.public_key_files:
            entries = _key_file_entries(req.public_key_files)
        else:
            entries = [e for r in sorted(source.key_entries) for e in source.key_entries[r]]
        entries = _dedupe(entries)
        seal = writer.finish(acquired_at=acquired_at, trail=source.trail, public_keys=entries, source="s3")
    finally:
        source.close()
    summary = validation.summary
    digests = sum(1 for r in source.acquired if "/CloudTrail-Digest/" in r.key)
    err.write(f"ctvalidate: acquired {len(source.acquired)} objects ({digests} digests, "
              f"{len(source.acquired) - digests} log files; {copied} of them listed but not read by the "
              f"validation), {len(source.unreadable)} unreadable, into {dest}\n")
    err.write(f"ctvalidate: at acquisition: digests {_counts(summary.digests)}; log files "
              f"{_counts(summary.logs)}; gaps {summary.gaps}; acquired at {format_time(acquired_at)}\n")
    if source.trail is None:
        err.write(f"ctvalidate: note: the trail's configuration was not available; validate this evidence with "
                  f"--s3-bucket {validation.plan.bucket}"
                  + (f" --s3-prefix {validation.plan.prefix.rstrip('/')}" if validation.plan.prefix else "") + "\n")
    for ref, exc in sorted(source.unreadable.items()):
        err.write(f"ctvalidate: unreadable: {ref.uri}: {exc.reason}: {str(exc)[:200]}\n")
    out.write(f"manifest-sha256: {seal}\n")
    for e in entries:
        out.write(f"key-fingerprint: {e.get('Fingerprint')}\n")
    out.flush()
    return 3 if source.unreadable else 0


__all__ = ["AcquireRequest", "RecordingSource", "run_acquire"]
