"""`ctvalidate inspect`: explain a trail's encryption, digests and object-level logging as they really are.

The AWS reads happen here and in sources (DescribeTrails, GetTrailStatus, GetEventSelectors,
GetBucketEncryption, ListTrails, ListObjectsV2 and HeadObject on a small sample); what they mean
is core.inspect's business; how it is shown, report.inspection's.

Sampling: for each (account, region) folder the validator would walk, the `sample` log files and
digests most recently written (by LastModified, so that a recent re-upload is among them) out of
the newest SCAN_CAP keys (newest date folders first); and the `sample` most recently written
objects of the bucket outside any CloudTrail folder (`.../AWSLogs/[ORG/]ACCOUNT/CloudTrail*/`),
out of the first SCAN_CAP such keys. Objects written in the same second as the last one chosen
are taken too (see _most_recent).
"""

from __future__ import annotations

import re
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from itertools import islice
from typing import IO, TYPE_CHECKING, Iterator

from .core.encryption import EncryptionPolicy
from .core.inspect import (CLASSES, DIGEST, LOG, OTHER, ClassReport, Expected, Inspection, Location, Sample,
                           count_trails, expected_digest, expected_log, expected_other, object_level_logging,
                           sample_of)
from .errors import ConfigError, SourceError
from .model import TrailArn, format_time
from .pipeline import Group, Plan, _encryption_from, plan_locations
from .policy import RunConfig
from .sources.base import ListedObject, Source, TrailInfo

if TYPE_CHECKING:
    from .sources.s3 import S3Source

SCAN_CAP = 2000  # keys listed per class and folder to find the most recently written ones
TIE_CAP = 200  # further objects sampled that were written in the same second as the last one chosen
MAX_GROUPS = 32  # (account, region) folders sampled; an organization may have thousands
MAX_FOLDER_JUMPS = 200  # listings restarted past CloudTrail folders while looking for other objects
HEAD_WORKERS = 8
MAX_TEXT = 1000  # characters kept of an error text AWS returns
_YEAR, _MONTH_OR_DAY = re.compile(r"\d{4}"), re.compile(r"\d{2}")
_TRAIL_FOLDER = re.compile(r"^(.*?AWSLogs/(?:o-[a-z0-9]{10,32}/)?\d{12}/CloudTrail(?:-Digest|-Insight)?/)")
_LAST_CHAR = "\U0010ffff"  # sorts after every character S3 keys may hold: StartAfter=FOLDER+this skips FOLDER


@dataclass(frozen=True)
class InspectRequest:
    trail: TrailArn
    bucket: str | None = None
    prefix: str | None = None
    account_id: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    output: str = "text"
    sample: int = 20  # per class and folder; 0: every object listed (up to SCAN_CAP)


def run_inspect(req: InspectRequest, out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    from .report.inspection import write_json, write_text
    from .sources.s3 import S3Source
    source = None
    try:
        source = S3Source.create(endpoint_url=req.endpoint_url, region=req.region, profile=req.profile,
                                 workers=HEAD_WORKERS)
        inspection = inspect_trail(source, req)
    except (ConfigError, SourceError) as exc:
        err.write(f"ctvalidate: error: {exc}\n")
        return 2
    finally:
        if source is not None:
            source.close()
    (write_json if req.output == "json" else write_text)(inspection, out)
    return inspection.exit_code


def inspect_trail(source: "S3Source", req: InspectRequest) -> Inspection:
    """Read the trail and its bucket through an S3Source; raise ConfigError/SourceError when they cannot be read."""
    from .sources.s3inspect import event_selectors, list_trails
    arn = req.trail
    info = source.trail_info(arn)
    if info is None:
        why = source.problems.pop() if source.problems else f"DescribeTrails does not know {arn}"
        raise ConfigError(f"cannot read the trail: {why}")
    cfg = RunConfig(trail=arn, bucket=req.bucket, prefix=req.prefix, account_id=req.account_id)
    plan = plan_locations(source, cfg, info)
    bucket_enc = source.bucket_encryption(plan.bucket)
    policy = replace(_encryption_from(info, cfg), bucket_default_key=bucket_enc.kms_key)
    notes = list(source.problems)
    classes = _sampled_classes(source, plan, policy, expected_other(bucket_enc), req.sample, notes)
    resp, error = event_selectors(source, arn)
    entries, trails_error = list_trails(source, info.home_region)
    trails = replace(count_trails(entries, info.home_region, arn.account_id), error=trails_error)
    inspection = Inspection(
        trail_arn=str(info.raw.get("Trail", {}).get("TrailARN") or arn), trail=_trail_fields(info),
        status=_status_fields(info), bucket=plan.bucket, prefix=plan.prefix, bucket_encryption=bucket_enc,
        classes=classes, logging=object_level_logging(resp, error), trails=trails,
        locations=[_location(plan.bucket, plan.prefix, g) for g in plan.groups], notes=notes)
    inspection.notes += _notes(inspection, info)
    _no_folders(inspection, plan, info, req.account_id or arn.account_id)
    return inspection


def _sampled_classes(source: Source, plan: Plan, policy: EncryptionPolicy, other: Expected, n: int,
                     notes: list[str]) -> list[ClassReport]:
    """Each class's expectation, with its HEAD sample judged (HEADs run concurrently)."""
    expected = {LOG: expected_log(policy), DIGEST: expected_digest(), OTHER: other}
    groups = plan.groups[:MAX_GROUPS]
    if len(plan.groups) > MAX_GROUPS:
        notes.append(f"{len(plan.groups)} account/region folders: logs and digests sampled in the first {MAX_GROUPS}")
    wanted, listed, errors = _wanted(source, plan.bucket, plan.prefix, groups, n, notes)
    with ThreadPoolExecutor(max_workers=HEAD_WORKERS) as pool:
        samples = list(pool.map(lambda w: _head(source, expected[w[0]], policy, *w[1:]), wanted))
    out = []
    for c in CLASSES:
        mine = tuple(s for s in samples if s.object_class == c)
        out.append(ClassReport(expected[c], mine, None if mine else _why_no_sample(c, plan), listed=listed[c],
                               errors=tuple(errors[c])))
    return out


def _no_folders(ins: Inspection, plan: Plan, info: TrailInfo, account: str) -> None:
    """No CloudTrail folder where the trail delivers: a contradiction if its status says it delivered."""
    if plan.groups:
        return
    where = f"s3://{plan.bucket}/{plan.prefix}AWSLogs/"
    if info.latest_digest_delivery is not None and plan.bucket == info.bucket:
        ins.anomalies.append(
            f"GetTrailStatus says a digest was delivered at {format_time(info.latest_digest_delivery)}, but there "
            f"is no CloudTrail folder of account {account} under {where}: deleted, or delivered under another "
            "prefix or account")
    else:
        ins.notes.append(f"no CloudTrail folder under {where}: validate will find nothing to check here (another "
                         "account, prefix or bucket?)")


Wanted = tuple[str, ListedObject, str, "str | None", "str | None"]  # class, object, folder label, region, account


def _wanted(source: Source, bucket: str, prefix: str, groups: list[Group], n: int, notes: list[str]
            ) -> tuple[list[Wanted], dict[str, dict[str, int]], dict[str, list[str]]]:
    """Every object to HEAD; per class, how many keys each folder listed to choose them from, and the
    folders that could not be listed (their class is then `unknown`, the rest is still sampled)."""
    out: list[Wanted] = []
    listed: dict[str, dict[str, int]] = {LOG: {}, DIGEST: {}, OTHER: {}}
    errors: dict[str, list[str]] = {LOG: [], DIGEST: [], OTHER: []}
    for g in groups:
        root = g.root(prefix)
        label = g.region if len({x.account_id for x in groups}) == 1 else f"{g.account_id} {g.region}"
        for cls, folder in ((LOG, f"{root}CloudTrail/{g.region}/"), (DIGEST, f"{root}CloudTrail-Digest/{g.region}/")):
            try:
                chosen, listed[cls][label] = _most_recent(_newest_first(source, bucket, folder), n)
            except SourceError as exc:
                errors[cls].append(f"{label}: {exc}")
                continue
            out += [(cls, o, label, g.region, g.account_id) for o in chosen]
    try:
        others, complete = _other_objects(source, bucket)
    except SourceError as exc:
        errors[OTHER].append(f"bucket: {exc}")
        return out, listed, errors
    if not complete:
        notes.append(f"other objects: sampled from the first {len(others)} keys outside the CloudTrail folders")
    chosen, listed[OTHER]["bucket"] = _most_recent(iter(others), n)
    out += [(OTHER, o, "bucket", None, None) for o in chosen]
    return out, listed, errors


def _most_recent(objects: Iterator[ListedObject], n: int) -> tuple[list[ListedObject], int]:
    """The `n` most recently written of the first SCAN_CAP objects (0: all of them), and how many were listed.

    By LastModified, not by name: an old log re-uploaded yesterday is among the most recent writes.
    LastModified has a resolution of one second: when the n-th and the next were written in the same
    second, which of them is "newest" is arbitrary, so every object of that second is taken (up to
    TIE_CAP more). Hourly deliveries rarely share a second; a bulk upload does, and is then sampled whole.
    """
    scanned = list(islice(objects, SCAN_CAP))
    scanned.sort(key=lambda o: (o.last_modified is not None, o.last_modified or 0, o.ref.key), reverse=True)
    if not n:
        return scanned, len(scanned)
    chosen = scanned[:n]
    last = chosen[-1].last_modified if chosen else None
    if last is not None:
        chosen += list(islice((o for o in scanned[n:] if o.last_modified == last), TIE_CAP))
    return chosen, len(scanned)


def _newest_first(source: Source, bucket: str, folder: str) -> Iterator[ListedObject]:
    """The objects of a CloudTrail region folder, date folder by date folder, newest day first."""
    for year in sorted((y for y in source.list_folders(bucket, folder) if _YEAR.fullmatch(y)), reverse=True):
        for month in _sub(source, bucket, f"{folder}{year}/"):
            for day in _sub(source, bucket, f"{folder}{year}/{month}/"):
                yield from source.list(bucket, f"{folder}{year}/{month}/{day}/")


def _sub(source: Source, bucket: str, prefix: str) -> list[str]:
    return sorted((f for f in source.list_folders(bucket, prefix) if _MONTH_OR_DAY.fullmatch(f)), reverse=True)


def _other_objects(source: Source, bucket: str) -> tuple[list[ListedObject], bool]:
    """Up to SCAN_CAP objects of the bucket outside every CloudTrail folder; and whether that was all of them."""
    found: list[ListedObject] = []
    start_after: str | None = None
    for _ in range(MAX_FOLDER_JUMPS):
        jumped = False
        for obj in source.list(bucket, "", start_after):
            m = _TRAIL_FOLDER.match(obj.ref.key)
            if m:  # skip the whole folder with one new listing
                start_after, jumped = m.group(1) + _LAST_CHAR, True
                break
            found.append(obj)
            if len(found) >= SCAN_CAP:
                return found, False
        if not jumped:
            return found, True
    return found, False


def _head(source: Source, expected: Expected, policy: EncryptionPolicy, listed: ListedObject, folder: str, region: str | None,
          account: str | None) -> Sample:
    where = dict(folder=folder, region=region, account_id=account, last_modified=listed.last_modified)
    try:
        meta = source.head(listed.ref)
    except SourceError as exc:
        return sample_of(expected, policy, listed.ref, None, (exc.reason, f"HEAD refused: {exc}"), **where)
    return sample_of(expected, policy, listed.ref, meta, None, **where)


def _why_no_sample(cls: str, plan: Plan) -> str:
    if cls == OTHER:
        return "no object in the bucket outside the CloudTrail folders"
    if not plan.groups:
        return f"no CloudTrail folder under s3://{plan.bucket}/{plan.prefix}AWSLogs/"
    return "no object in the trail's folders"


def _location(bucket: str, prefix: str, g: Group) -> Location:
    root = f"s3://{bucket}/{g.root(prefix)}"
    return Location(g.account_id, g.region, g.org_id, f"{root}CloudTrail-Digest/{g.region}/",
                    f"{root}CloudTrail/{g.region}/")


def _trail_fields(info: TrailInfo) -> dict:
    trail = info.raw.get("Trail") or {}
    return {"name": info.name, "home_region": info.home_region, "bucket": info.bucket, "prefix": info.prefix,
            "kms_key_id": info.kms_key_id, "kms_key_configured": trail.get("KmsKeyId"),
            "is_multi_region": info.is_multi_region, "is_organization_trail": info.is_organization_trail,
            "organization_id": info.organization_id}


def _status_fields(info: TrailInfo) -> dict:
    status = info.raw.get("Status") or {}

    def text(name: str) -> str | None:
        v = status.get(name)
        return v[:MAX_TEXT] if isinstance(v, str) and v else None

    return {"is_logging": info.is_logging, "log_file_validation": info.log_file_validation,
            "latest_delivery_time": format_time(info.latest_delivery),
            "latest_digest_delivery_time": format_time(info.latest_digest_delivery),
            "latest_delivery_error": text("LatestDeliveryError"),
            "latest_digest_delivery_error": text("LatestDigestDeliveryError")}


def _notes(ins: Inspection, info: TrailInfo) -> list[str]:
    notes = []
    if info.is_logging is False:
        notes.append("logging is off: CloudTrail delivers no new log files or digests")
    if info.log_file_validation is False:
        notes.append("log file validation is off: CloudTrail writes no digests, so validate can prove nothing "
                     "about log files delivered meanwhile")
    if info.bucket and ins.bucket != info.bucket:
        notes.append(f"inspecting s3://{ins.bucket} (--s3-bucket), not the trail's bucket s3://{info.bucket}")
    if ins.logging.covers(ins.bucket, ins.prefix):
        notes.append("the trail records data events on its own bucket: each delivery of a log file is itself a data "
                     "event to log (AWS advises against this)")
    if ins.trails.count is not None and ins.trails.count >= ins.trails.limit:
        notes.append(f"{ins.trails.count} trails in {ins.trails.region}: the limit of {ins.trails.limit} per region "
                     "is reached and cannot be raised; prefer advanced event selectors on an existing trail")
    return notes


__all__ = ["InspectRequest", "inspect_trail", "run_inspect"]
