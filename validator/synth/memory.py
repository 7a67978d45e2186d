"""An in-memory Source over a synthetic trail: the pipeline with no storage at all (tests, benchmarks)."""

from __future__ import annotations

import bisect
from datetime import datetime
from typing import Iterator

from ..core.keys import KeyRing, parse_key_list
from ..errors import NotFoundError
from ..model import ObjectMeta, ObjectRef, TrailArn
from ..sources.base import CHUNK, BucketProtection, ListedObject, ObjectStream, ObjectVersion, Source, TrailInfo
from .trail import StoredObject, SyntheticTrail


class _Stream(ObjectStream):
    def __init__(self, obj: StoredObject):
        self.meta = obj.meta
        self._body = obj.body

    def chunks(self) -> Iterator[bytes]:
        for i in range(0, len(self._body), CHUNK):
            yield self._body[i:i + CHUNK]


class MemorySource(Source):
    key_origin = "evidence"

    def __init__(self, trail: SyntheticTrail, with_trail_info: bool = True):
        self.trail = trail
        self._with_info = with_trail_info
        self._keys: dict[str, list[str]] = {}
        for ref in trail.objects:
            self._keys.setdefault(ref.bucket, []).append(ref.key)
        for keys in self._keys.values():
            keys.sort()

    def list(self, bucket: str, prefix: str, start_after: str | None = None) -> Iterator[ListedObject]:
        keys = self._keys.get(bucket, [])
        i = bisect.bisect_left(keys, prefix)
        if start_after is not None and start_after >= prefix:
            i = bisect.bisect_right(keys, start_after)
        while i < len(keys) and keys[i].startswith(prefix):
            m = self.trail.objects[ObjectRef(bucket, keys[i])].meta
            yield ListedObject(m.ref, m.size, m.etag, m.last_modified, m.storage_class)
            i += 1

    def list_folders(self, bucket: str, prefix: str) -> list[str]:
        seen: list[str] = []
        for o in self.list(bucket, prefix):
            rest = o.ref.key[len(prefix):]
            if "/" in rest:
                name = rest.split("/", 1)[0]
                if not seen or seen[-1] != name:
                    seen.append(name)
        return seen

    def open(self, ref: ObjectRef) -> ObjectStream:
        obj = self.trail.objects.get(ref)
        if obj is None:
            raise NotFoundError(f"{ref.uri} not found")
        return _Stream(obj)

    def head(self, ref: ObjectRef) -> ObjectMeta:
        obj = self.trail.objects.get(ref)
        if obj is None:
            raise NotFoundError(f"{ref.uri} not found")
        return obj.meta

    def trail_info(self, arn: TrailArn) -> TrailInfo | None:
        return self.trail.trail if self._with_info else None

    def public_keys(self, regions: list[str], start: datetime | None, end: datetime) -> KeyRing:
        return KeyRing(parse_key_list(self.trail.public_keys_doc()))

    def reference_time(self) -> datetime:
        return self.trail.acquired_at


class VersionedMemorySource(MemorySource):
    """A versioned bucket in memory: the trail's objects are the current versions; `older[ref]` lists the
    versions under them (newest first); `deleted[ref]` puts a delete marker (at that time) on top."""

    def __init__(self, trail: SyntheticTrail, older: dict[ObjectRef, list[StoredObject]] | None = None,
                 deleted: dict[ObjectRef, datetime] | None = None,
                 protection: BucketProtection | None = None):
        super().__init__(trail)
        self.older = older or {}
        self.deleted = deleted or {}
        self.protection = protection or BucketProtection(versioning="Enabled")

    def bucket_protection(self, bucket: str) -> BucketProtection | None:
        return self.protection

    def _versions(self, ref: ObjectRef) -> list[tuple[ObjectVersion, StoredObject | None]]:
        out: list[tuple[ObjectVersion, StoredObject | None]] = []
        if ref in self.deleted:
            out.append((ObjectVersion(ref, "marker", True, True, self.deleted[ref]), None))
        current = self.trail.objects.get(ref)
        if current is not None and ref not in self.deleted:
            out.append((ObjectVersion(ref, "current", True, False, current.meta.last_modified, current.meta.size),
                        current))
        for i, obj in enumerate(self.older.get(ref, [])):
            out.append((ObjectVersion(ref, f"v{i}", False, False, obj.meta.last_modified, len(obj.body)), obj))
        return out

    def list_versions(self, bucket: str, prefix: str, key_marker: str | None = None) -> Iterator[ObjectVersion]:
        refs = {r for r in (*self.trail.objects, *self.older, *self.deleted) if r.bucket == bucket}
        for ref in sorted(refs):
            if ref.key.startswith(prefix) and (key_marker is None or ref.key > key_marker):
                yield from (v for v, _ in self._versions(ref))

    def open_version(self, ref: ObjectRef, version_id: str) -> ObjectStream:
        for v, obj in self._versions(ref):
            if v.version_id == version_id and obj is not None:
                return _Stream(obj)
        raise NotFoundError(f"no version {version_id} of {ref.uri}")
