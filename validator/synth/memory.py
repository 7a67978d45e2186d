"""An in-memory Source over a synthetic trail: the pipeline with no storage at all (tests, benchmarks)."""

from __future__ import annotations

import bisect
from datetime import datetime
from typing import Iterator

from ..core.keys import KeyRing, parse_key_list
from ..errors import NotFoundError
from ..model import ObjectMeta, ObjectRef, TrailArn
from ..sources.base import CHUNK, ListedObject, ObjectStream, Source, TrailInfo
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
