"""What a run expects: the trail, the window, regions and accounts, copies, tolerances."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .model import ObjectRef, TrailArn, normalize_prefix


@dataclass(frozen=True)
class LocationMap:
    """Maps the locations digests name (the original bucket) to where a copy of them lies.

    Keys below `original_prefix` in `original_bucket` lie below `copy_prefix` in `copy_bucket`.
    """

    original_bucket: str
    original_prefix: str
    copy_bucket: str
    copy_prefix: str

    def to_copy(self, ref: ObjectRef) -> ObjectRef:
        if ref.bucket == self.original_bucket and ref.key.startswith(self.original_prefix):
            return ObjectRef(self.copy_bucket, self.copy_prefix + ref.key[len(self.original_prefix):])
        return ref

    def to_original(self, ref: ObjectRef) -> ObjectRef:
        if ref.bucket == self.copy_bucket and ref.key.startswith(self.copy_prefix):
            return ObjectRef(self.original_bucket, self.original_prefix + ref.key[len(self.copy_prefix):])
        return ref

    @classmethod
    def parse(cls, uri: str, copy_bucket: str, copy_prefix: str) -> "LocationMap":
        if not uri.startswith("s3://") or len(uri) <= 5:
            raise ValueError(f"--copy-of takes s3://BUCKET[/PREFIX], not {uri!r}")
        bucket, _, prefix = uri[5:].partition("/")
        if not bucket:
            raise ValueError(f"--copy-of names no bucket: {uri!r}")
        return cls(bucket, normalize_prefix(prefix), copy_bucket, normalize_prefix(copy_prefix))


class IdentityMap(LocationMap):
    def __init__(self) -> None:
        super().__init__("", "", "", "")

    def to_copy(self, ref: ObjectRef) -> ObjectRef:
        return ref

    def to_original(self, ref: ObjectRef) -> ObjectRef:
        return ref


def default_workers(local: bool = False) -> int:
    """I/O-bound GETs overlap well beyond the core count; CPU work is bounded by the cores anyway.

    `local`: an evidence directory, where reading costs no latency and the work is gunzip + SHA-256:
    one thread per core and one more (measured in benchmarks/: more threads than that only contend
    for the GIL between the C calls, and are slower)."""
    if local:
        return max(2, (os.cpu_count() or 2) + 1)
    return max(4, min(32, (os.cpu_count() or 2) * 8))


@dataclass(frozen=True)
class RunConfig:
    trail: TrailArn
    start: datetime | None = None
    end: datetime | None = None
    bucket: str | None = None
    prefix: str | None = None
    account_id: str | None = None
    regions: frozenset[str] | None = None
    expect_regions: frozenset[str] = frozenset()
    expect_accounts: frozenset[str] = frozenset()
    backfill_horizon: timedelta = timedelta(hours=24)
    copy_of: str | None = None
    workers: int = field(default_factory=default_workers)
    check_write_times: bool = False
    write_time_tolerance: timedelta = timedelta(hours=1)
    require_explained_gaps: bool = False
    extra_log_keys: frozenset[str] = frozenset()
