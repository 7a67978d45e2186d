"""Chain linking for one (account, region, regular|backfill) group of digests.

Pure: the digests were fetched and checked already; this decides which links
hold, what is missing, where chains restart (gaps), where a chain was cut, and
which spans valid digests cover.

The rules (CONTRACT.md, "What is in range, what covers what"):
 1. Pointers are followed only from trusted (valid or warning) digests.
 2. A trusted digest's previousDigestHashValue and previousDigestSignature must
    match the previous digest actually loaded; a mismatch condemns the previous one.
 3. A pointer to an absent digest is `missing`/`not_found` with that key; when the
    time between it and the next older digest found is longer than a digest
    period, further digests were deleted whose keys nothing names: `key: null`.
 4. A chain start after an older digest of the same group is a `gap`.
 5. A regular chain must reach `chain_end_ref` within two hours, else `truncated`.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from ..model import ObjectRef, format_time, parse_key
from ..results import INVALID, MISSING, DigestRecord, GapRecord, Verdict
from .verify import CheckedDigest, same_signature

DIGEST_PERIOD = timedelta(hours=1)
PERIOD_SLACK = timedelta(minutes=30)
TRUNCATION_SLACK = timedelta(hours=2)


@dataclass(slots=True)
class ChainFindings:
    missing: list[DigestRecord] = field(default_factory=list)
    gaps: list[GapRecord] = field(default_factory=list)
    coverage: list[tuple[datetime, datetime]] = field(default_factory=list)
    newest_end: datetime | None = None


def end_of(d: CheckedDigest) -> datetime | None:
    """The digest's end time: from its content when it parsed, else from its key name."""
    if d.digest is not None:
        return d.digest.end_time
    name = parse_key(d.original.key)
    return name.time if name else None


def start_of(d: CheckedDigest) -> datetime | None:
    return d.digest.start_time if d.digest is not None else None


def _condemn(prev: CheckedDigest, reason: str, message: str) -> None:
    if prev.verdict.status != INVALID:
        prev.verdict = Verdict(INVALID, reason, message)


def _check_link(newer: CheckedDigest, prev: CheckedDigest) -> None:
    d = newer.digest
    assert d is not None
    if not prev.trusted:
        return
    if d.previous_hash is None or prev.sha256 is None or d.previous_hash != prev.sha256:
        _condemn(prev, "chain_hash_mismatch",
                 f"previousDigestHashValue of {newer.original.key} is not the SHA-256 of this digest")
    elif not same_signature(d.previous_signature, prev.signature):
        _condemn(prev, "chain_signature_mismatch",
                 f"previousDigestSignature of {newer.original.key} is not this digest's signature")


def link_group(digests: list[CheckedDigest], *, account_id: str, region: str, backfill: bool,
               window_start: datetime, window_end: datetime,
               chain_end_ref: datetime | None,
               owns: Callable[[CheckedDigest], bool] | None = None) -> ChainFindings:
    """Check links among `digests` (one group, any order) and find what is missing.

    `owns`: when the group's window is checked in parts, whether a digest is this part's; what is missing
    before a digest, and the gap a chain start opens, are reported by the part that owns that digest (its
    neighbours, listed with a margin, are there to check its links)."""
    found = ChainFindings()
    ordered = sorted((d for d in digests if end_of(d) is not None), key=lambda d: (end_of(d), d.original.key))
    by_location: dict[ObjectRef, CheckedDigest] = {d.original: d for d in ordered}
    reported_missing: set[ObjectRef] = set()

    ends = [end_of(d) for d in ordered]

    def older_than(t: datetime, exclude: CheckedDigest) -> CheckedDigest | None:
        i = bisect_left(ends, t) - 1
        while i >= 0 and ordered[i] is exclude:
            i -= 1
        return ordered[i] if i >= 0 else None

    for d in ordered:
        if not d.trusted or d.digest is None:
            continue
        digest = d.digest
        reports = owns is None or owns(d)
        if digest.previous is None:
            if backfill or not reports:
                continue
            q = older_than(digest.start_time, d)
            q_end = end_of(q) if q else None
            if q_end is not None and q_end >= window_start and q_end < digest.start_time:
                found.gaps.append(GapRecord(
                    region=region, account_id=account_id, start_time=q_end, end_time=digest.start_time,
                    message=f"No log files were delivered by CloudTrail between {format_time(q_end)} "
                            f"and {format_time(digest.start_time)}"))
            continue
        prev = by_location.get(digest.previous)
        if prev is not None:
            _check_link(d, prev)
            continue
        # rule 3: the previous digest is absent
        if digest.previous in reported_missing or not reports:
            continue
        reported_missing.add(digest.previous)
        prev_end = digest.start_time
        if prev_end < window_start:
            continue  # out of range: not ours to report
        q = older_than(prev_end, d)
        q_end = end_of(q) if q else None
        est_start = prev_end - DIGEST_PERIOD
        if q_end is not None and q_end > est_start - PERIOD_SLACK:
            est_start = q_end
        found.missing.append(DigestRecord(
            bucket=digest.previous.bucket, key=digest.previous.key, region=region, account_id=account_id,
            verdict=Verdict(MISSING, "not_found", f"not found (named as previous digest by {d.original.key})"),
            start_time=est_start, end_time=prev_end, backfill=backfill))
        if not backfill and q_end is not None and est_start - q_end > PERIOD_SLACK and est_start >= window_start:
            found.missing.append(DigestRecord(
                bucket=None, key=None, region=region, account_id=account_id,
                verdict=Verdict(MISSING, "not_found",
                                f"digests deleted between {format_time(q_end)} and {format_time(est_start)}; "
                                "no surviving digest names them"),
                start_time=q_end, end_time=est_start, backfill=backfill))

    found.newest_end = ends[-1] if ends else None
    if not backfill:
        found.coverage = [(d.digest.start_time, d.digest.end_time) for d in ordered
                          if d.trusted and d.digest is not None]
        if chain_end_ref is not None and found.newest_end is not None:
            reach = min(chain_end_ref, window_end)
            if found.newest_end < reach - TRUNCATION_SLACK:
                found.missing.append(DigestRecord(
                    bucket=None, key=None, region=region, account_id=account_id,
                    verdict=Verdict(MISSING, "truncated",
                                    f"chain stops at {format_time(found.newest_end)}, "
                                    f"but the trail delivered digests until {format_time(reach)}"),
                    start_time=found.newest_end, end_time=reach))
    return found
