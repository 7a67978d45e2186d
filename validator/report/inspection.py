"""`inspect` output: one JSON object (`--output json`), or a page of text for a person."""

from __future__ import annotations

from collections import Counter
from typing import IO, Any

import orjson

from ..core.encryption import describe, key_id
from ..core.inspect import DISAGREES, NO_SAMPLE, UNKNOWN, ClassReport, Inspection, S3Scope, Sample
from ..model import format_time
from .safe import printable

_CLASS_TITLE = {"log": "Log files", "digest": "Digest files", "other": "Other objects"}
_STATUS_TEXT = {"as_expected": "as expected", DISAGREES: "DISAGREES", UNKNOWN: "could not be checked",
                NO_SAMPLE: "no sample"}


# --- JSON -----------------------------------------------------------------------------------


def to_json(ins: Inspection) -> dict[str, Any]:
    enc = ins.bucket_encryption
    return {
        "kind": "inspect",
        "trail_arn": ins.trail_arn,
        "trail": ins.trail,
        "status": ins.status,
        "bucket": ins.bucket,
        "prefix": ins.prefix,
        "bucket_encryption": {"algorithm": enc.algorithm, "kms_key_id": enc.kms_key,
                              "configured_key": enc.configured_key, "error": enc.error},
        "encryption": [_class_json(c) for c in ins.classes],
        "object_level_logging": {
            "enabled": ins.logging.enabled, "form": ins.logging.form,
            "management_events": ins.logging.management_events,
            "s3": [_scope_json(s) for s in ins.logging.s3],
            "other_data_resources": list(ins.logging.other_data),
            "trail_bucket_logged": ins.logging.covers(ins.bucket, ins.prefix),
            "error": ins.logging.error},
        "trails_in_region": {"region": ins.trails.region, "count": ins.trails.count, "limit": ins.trails.limit,
                             "trails": list(ins.trails.trails), "error": ins.trails.error},
        "locations": [{"account_id": loc.account_id, "region": loc.region, "organization_id": loc.organization_id,
                       "digests": loc.digests, "logs": loc.logs} for loc in ins.locations],
        "delivery_errors": ins.delivery_errors,
        "anomalies": ins.anomalies,
        "notes": ins.notes,
        "exit_code": ins.exit_code,
    }


def _class_json(c: ClassReport) -> dict[str, Any]:
    e = c.expected
    return {"object_class": e.object_class, "status": c.status,
            "expected": {"encryption": e.encryption, "kms_key_id": e.kms_key, "why": e.why},
            "samples": [_sample_json(s) for s in c.samples], "listed": dict(c.listed), "errors": list(c.errors),
            "note": c.note}


def _sample_json(s: Sample) -> dict[str, Any]:
    m = s.meta
    found = None
    if m is not None:
        found = {"sse": m.sse, "kms_key_id": m.kms_key_id, "sse_customer_algorithm": m.sse_customer_algorithm,
                 "description": describe(m) if (m.sse or m.sse_customer_algorithm) else None}
    return {"bucket": s.ref.bucket, "key": s.ref.key, "folder": s.folder, "region": s.region, "account_id": s.account_id,
            "last_modified": format_time(s.last_modified), "found": found, "status": s.verdict.status,
            "reason": s.verdict.reason, "message": s.verdict.message}


def _scope_json(s: S3Scope) -> dict[str, Any]:
    return {"bucket": s.bucket, "prefix": s.prefix, "read_write": s.read_write, "excluding": list(s.excluding),
            "selector": s.selector}


def write_json(ins: Inspection, out: IO[str]) -> None:
    out.write(orjson.dumps(to_json(ins)).decode() + "\n")
    out.flush()


# --- text -----------------------------------------------------------------------------------


def write_text(ins: Inspection, out: IO[str]) -> None:
    lines: list[str] = []
    add = lines.append
    t, st = ins.trail, ins.status
    add(f"Trail {ins.trail_arn}")
    kinds = ["multi-region" if t["is_multi_region"] else "single-region"]
    if t["is_organization_trail"]:
        kinds.append(f"organization trail ({t['organization_id'] or 'organization id unknown'})")
    add(f"  home region {t['home_region']}, {', '.join(kinds)}")
    add(f"  logging: {_onoff(st['is_logging'])}; log file validation: {_onoff(st['log_file_validation'])}")
    add(f"  latest digest delivery: {st['latest_digest_delivery_time'] or 'none'}; "
        f"latest log delivery: {st['latest_delivery_time'] or 'none'}")
    add(f"  delivery errors: {'; '.join(ins.delivery_errors) or 'none'}")
    add("")
    add(f"Encryption in s3://{ins.bucket}")
    add(f"  bucket default: {_bucket_default(ins)}")
    no_key = 'none ("Encryption: No")'
    add(f"  trail KMS key: {t['kms_key_id'] or no_key}")
    for c in ins.classes:
        _class_text(c, add, _key_names(ins))
    add("")
    _logging_text(ins, add)
    add("")
    tc = ins.trails
    if tc.count is None:
        add(f"Trails in {tc.region}: unknown ({tc.error})")
    else:
        add(f"Trails in {tc.region}: {tc.count}/{tc.limit} (the limit cannot be raised)")
        for arn in tc.trails:
            add(f"  {arn}")
    add("")
    add(f"Where validate looks (s3://{ins.bucket}/{ins.prefix}AWSLogs/):")
    if not ins.locations:
        add("  no CloudTrail folder found")
    for loc in ins.locations:
        org = f" in {loc.organization_id}" if loc.organization_id else ""
        add(f"  account {loc.account_id}{org}, {loc.region}")
        add(f"    digests {loc.digests}")
        add(f"    logs    {loc.logs}")
    if ins.anomalies:
        add("")
        add("Disagreements with the trail's status:")
        lines.extend(f"  - {a}" for a in ins.anomalies)
    if ins.notes:
        add("")
        add("Notes:")
        lines.extend(f"  - {n}" for n in ins.notes)
    add("")
    add(f"Result: {_verdict(ins)} (exit {ins.exit_code})")
    # keys, messages and AWS's error texts are hostile: no control character may forge a line of this page
    out.write("\n".join(printable(line) for line in lines) + "\n")
    out.flush()


def _verdict(ins: Inspection) -> str:
    statuses = Counter(s.verdict.status for c in ins.classes for s in c.samples)
    parts = []
    flagged = sum(n for st, n in statuses.items() if st not in ("valid", "unverifiable"))
    if flagged:
        parts.append(f"{flagged} sampled object(s) not encrypted as CloudTrail or S3 would have")
    if statuses.get("unverifiable"):
        parts.append(f"{statuses['unverifiable']} sampled object(s) could not be checked")
    if any(c.expected.encryption == "unknown" for c in ins.classes):
        parts.append("the bucket's default encryption is unknown")
    if ins.delivery_errors:
        parts.append("CloudTrail reports a delivery error")
    if ins.anomalies:
        parts.append("the bucket contradicts the trail's status")
    sampled = sum(statuses.values())
    return "; ".join(parts) or f"everything as expected ({sampled} object(s) sampled)"


def _onoff(v: bool | None) -> str:
    return "unknown" if v is None else "on" if v else "off"


def _bucket_default(ins: Inspection) -> str:
    e = ins.bucket_encryption
    if e.error:
        return f"unknown ({e.error})"
    if e.algorithm in ("aws:kms", "aws:kms:dsse"):
        shown = e.kms_key or e.configured_key
        extra = f" (configured as {e.configured_key})" if e.configured_key and e.configured_key != shown else ""
        return f"SSE-KMS with {shown}{extra}"
    if e.algorithm == "AES256":
        return "SSE-S3"
    return "none configured (S3 applies SSE-S3)"


def _key_names(ins: Inspection) -> dict[str, str]:
    names = {}
    for key, name in ((ins.bucket_encryption.kms_key, "the bucket's default key"),
                      (ins.trail.get("kms_key_id"), "the trail's key")):
        if key:
            names[key_id(key) or key] = name
    return names


def _found(meta, names: dict[str, str]) -> str:
    if meta is None:
        return "unreadable"
    name = names.get(key_id(meta.kms_key_id) or "") if meta.sse in ("aws:kms", "aws:kms:dsse") else None
    return describe(meta) + (f" ({name})" if name else "")


def _class_text(c: ClassReport, add, names: dict[str, str]) -> None:
    e = c.expected
    add(f"  {_CLASS_TITLE[e.object_class]}: expected {e.describe()}: {_STATUS_TEXT[c.status]}")
    add(f"    why: {e.why}")
    for error in c.errors:
        add(f"    not sampled: {error}")
    if not c.samples:
        add(f"    {c.note or 'no sample'}")
        return
    by_folder: dict[str, list[Sample]] = {}
    for s in c.samples:
        by_folder.setdefault(s.folder, []).append(s)
    for folder, samples in by_folder.items():
        found = Counter(_found(s.meta, names) for s in samples)
        summary = ", ".join(f"{n} x {what}" for what, n in found.most_common())
        of = c.listed.get(folder)
        add(f"    {folder}: {len(samples)} sampled" + (f" of {of} listed" if of else "") + f": {summary}")
        for s in samples:
            if s.verdict.status != "valid":
                add(f"      {s.verdict.status.upper()} {s.verdict.reason}: {s.ref.uri}")
                add(f"        {s.verdict.message}")


def _logging_text(ins: Inspection, add) -> None:
    lg = ins.logging
    add("Object-level logging (S3 data events: a CloudTrail event selector, not an S3 setting)")
    if lg.error:
        add(f"  unknown: {lg.error}")
        return
    form = {"event_selectors": "event selectors", "advanced_event_selectors": "advanced event selectors",
            "none": "no selectors (the default)"}[lg.form]
    add(f"  configured with {form}; management events: {'included' if lg.management_events else 'not included'}")
    if not lg.s3:
        add("  no S3 object-level logging")
    for s in lg.s3:
        add(f"  {s.read_write} data events on {s.describe()} ({s.selector})")
    if lg.other_data:
        add(f"  other data events: {', '.join(lg.other_data)}")
    covered = lg.covers(ins.bucket, ins.prefix)
    add(f"  the trail's own bucket s3://{ins.bucket}: {'logged' if covered else 'not logged'}")
