"""Named tamper operations on a synthetic trail, as an attacker with write access would do them.

Operations that re-sign (`resign`, `chain_hash`, `chain_signature`) use the
trail's own test keys: they model an attack that needs a signing key, so that
unit tests can check the chain rules one by one.

Names for the command line (`ctvalidate generate --tamper NAME`), N counting
from 0 in time order within the region (logs: in key order within the region):
  modify-log:REGION:N  delete-log:REGION:N  truncate-log:REGION:N  trailing-log:REGION:N
  inject-log:REGION:HOUR  reencrypt-log:REGION:N[:KEYARN]
  modify-digest:REGION:N  delete-digest:REGION:N[:COUNT]  delete-tail:HOURS  replay-digest:REGION:N
  strip-metadata:REGION:N  corrupt-digest:REGION:N  unknown-key:REGION:N  algorithm:REGION:N
  chain-hash:REGION:N  chain-signature:REGION:N  reencrypt-digest:REGION:N[:KEYARN]
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import replace  # noqa: F401 (re-exported for tests)
from datetime import datetime, timedelta
from typing import Any, Callable

import orjson
from cryptography.hazmat.primitives.asymmetric import rsa

from ..model import ObjectMeta, ObjectRef, parse_time
from .trail import HOUR, SigningKey, StoredObject, SyntheticTrail, sign_digest_object

DEFAULT_ATTACKER_KEY = "arn:aws:kms:us-east-1:999988887777:key/attacker-0000-0000-0000-000000000000"


def _account(trail: SyntheticTrail, account: str | None) -> str:
    return account or trail.spec.trail_account


def digest_at(trail: SyntheticTrail, region: str, n: int, account: str | None = None) -> StoredObject:
    return trail.digests(_account(trail, account), region)[n]


def log_at(trail: SyntheticTrail, region: str, n: int, account: str | None = None) -> StoredObject:
    return trail.logs(_account(trail, account), region)[n]


def _rewrite(obj: StoredObject, body: bytes, **meta_changes: Any) -> None:
    obj.body = body
    obj.meta = replace(obj.meta, size=len(body), etag=hashlib.md5(body).hexdigest(), **meta_changes)


# --- log files -------------------------------------------------------------------------


def modify_log(trail: SyntheticTrail, ref: ObjectRef) -> None:
    obj = trail.objects[ref]
    doc = orjson.loads(gzip.decompress(obj.body))
    doc["Records"][0]["sourceIPAddress"] = "203.0.113.66"
    _rewrite(obj, gzip.compress(orjson.dumps(doc), mtime=0))


def delete(trail: SyntheticTrail, ref: ObjectRef) -> None:
    del trail.objects[ref]


def truncate(trail: SyntheticTrail, ref: ObjectRef) -> None:
    obj = trail.objects[ref]
    _rewrite(obj, obj.body[: max(1, len(obj.body) // 2)])


def append_trailing(trail: SyntheticTrail, ref: ObjectRef, extra: bytes | None = None) -> None:
    obj = trail.objects[ref]
    _rewrite(obj, obj.body + (extra if extra is not None else gzip.compress(b'{"Records":[]}', mtime=0)))


def inject_log(trail: SyntheticTrail, region: str, at: datetime, account: str | None = None) -> ObjectRef:
    obj, _ = trail.generator._log(_account(trail, account), region, at)
    trail.objects[obj.ref] = obj
    return obj.ref


def reencrypt(trail: SyntheticTrail, ref: ObjectRef, kms_key: str | None = None, sse: str = "aws:kms",
              rewritten_at: datetime | None = None) -> None:
    """Re-upload unchanged under other encryption (the bucket default: SSE-KMS with its key)."""
    obj = trail.objects[ref]
    key = kms_key or trail.spec.bucket_default_key or DEFAULT_ATTACKER_KEY
    changes: dict[str, Any] = {"sse": sse, "kms_key_id": key if sse.startswith("aws:kms") else None}
    if rewritten_at is not None:
        changes["last_modified"] = rewritten_at
    obj.meta = replace(obj.meta, **changes)


# --- digests ------------------------------------------------------------------------------


def modify_digest(trail: SyntheticTrail, ref: ObjectRef) -> None:
    """Change a digest's content without re-signing it (drop its first log entry)."""
    obj = trail.objects[ref]
    doc = trail.digest_doc(ref)
    doc["logFiles"] = doc["logFiles"][1:] if doc["logFiles"] else [
        {"s3Bucket": "x", "s3Object": "y", "hashValue": "0" * 64, "hashAlgorithm": "SHA-256"}]
    _rewrite(obj, gzip.compress(orjson.dumps(doc), mtime=0))


def corrupt(trail: SyntheticTrail, ref: ObjectRef) -> None:
    obj = trail.objects[ref]
    _rewrite(obj, b"this is not gzip at all")


def strip_metadata(trail: SyntheticTrail, ref: ObjectRef) -> None:
    obj = trail.objects[ref]
    obj.meta = replace(obj.meta, metadata={})


def set_metadata(trail: SyntheticTrail, ref: ObjectRef, **values: str) -> None:
    obj = trail.objects[ref]
    md = dict(obj.meta.metadata)
    md.update({k.replace("_", "-"): v for k, v in values.items()})
    obj.meta = replace(obj.meta, metadata=md)


def replay_digest(trail: SyntheticTrail, src: ObjectRef, dst: ObjectRef) -> None:
    """Copy a genuine digest (bytes and metadata) over another key."""
    obj = trail.objects[src]
    trail.objects[dst] = StoredObject(replace(obj.meta, ref=dst), obj.body)


def _signer_for(trail: SyntheticTrail, doc: dict[str, Any]) -> SigningKey:
    for keys in trail.keys.values():
        for k in keys:
            if k.fingerprint == doc["digestPublicKeyFingerprint"]:
                return k
    raise KeyError("no test key for this digest's fingerprint")


def resign(trail: SyntheticTrail, ref: ObjectRef, mutate: Callable[[dict[str, Any]], None],
           signer: SigningKey | None = None, cascade: bool = True, algorithm: str = "SHA256withRSA") -> None:
    """Change a digest's fields and sign it again with a test key; with `cascade`, re-link the later ones."""
    obj = trail.objects[ref]
    doc = trail.digest_doc(ref)
    mutate(doc)
    signer = signer or _signer_for(trail, doc)
    if signer.fingerprint != doc["digestPublicKeyFingerprint"]:
        doc["digestPublicKeyFingerprint"] = signer.fingerprint
    raw = orjson.dumps(doc)
    bf = obj.meta.metadata.get("backfill-generation-timestamp")
    new = sign_digest_object(raw, doc, signer, ref, obj.meta.last_modified or datetime.now(),
                             backfill_at=parse_time(bf) if bf else None, algorithm=algorithm)
    trail.objects[ref] = new
    trail.raw_digests[ref] = raw
    if cascade:
        _relink_after(trail, ref)


def _relink_after(trail: SyntheticTrail, ref: ObjectRef) -> None:
    """Every digest whose previous pointer names `ref` is re-signed with the new hash and signature."""
    prev = trail.objects[ref]
    prev_raw = trail.raw_digests[ref]
    for other in list(trail.objects.values()):
        if "/CloudTrail-Digest/" not in other.ref.key or other.ref == ref:
            continue
        try:
            doc = trail.digest_doc(other.ref)
        except (OSError, ValueError):
            continue
        if doc.get("previousDigestS3Object") == ref.key and doc.get("previousDigestS3Bucket") == ref.bucket:
            def relink(d: dict[str, Any]) -> None:
                d["previousDigestHashValue"] = hashlib.sha256(prev_raw).hexdigest()
                d["previousDigestSignature"] = prev.meta.metadata["signature"]
            resign(trail, other.ref, relink)


def chain_hash(trail: SyntheticTrail, ref: ObjectRef) -> None:
    """Digest `ref` claims a wrong hash of its predecessor, validly signed: the predecessor is condemned."""
    resign(trail, ref, lambda d: d.update(previousDigestHashValue="0" * 64))


def chain_signature(trail: SyntheticTrail, ref: ObjectRef) -> None:
    resign(trail, ref, lambda d: d.update(previousDigestSignature="ab" * 256))


def unknown_key(trail: SyntheticTrail, ref: ObjectRef) -> None:
    """Sign with a key that is in no public key list (an attacker's own key)."""
    doc = trail.digest_doc(ref)
    attacker = SigningKey("attacker", rsa.generate_private_key(public_exponent=65537, key_size=1024),
                          datetime.min, datetime.max)
    resign(trail, ref, lambda d: None, signer=attacker, cascade=False)
    assert doc is not None


def wrong_algorithm(trail: SyntheticTrail, ref: ObjectRef) -> None:
    set_metadata(trail, ref, signature_algorithm="SHA1withRSA")


def delete_tail(trail: SyntheticTrail, hours: float) -> list[ObjectRef]:
    """Delete the newest `hours` of every chain (digests and their log files); the trail status stays."""
    last = max(trail.digest_doc(d.ref)["digestEndTime"] for d in trail.digests())
    cut = parse_time(last) - timedelta(hours=hours)
    gone = []
    for obj in list(trail.objects.values()):
        from ..model import parse_key
        name = parse_key(obj.ref.key)
        if name and name.time > cut:
            del trail.objects[obj.ref]
            gone.append(obj.ref)
    return gone


# --- names ------------------------------------------------------------------------------------


def apply_named(trail: SyntheticTrail, spec: str) -> str:
    """Apply `NAME:ARGS` (see the module docstring); returns what was done."""
    name, _, rest = spec.partition(":")
    args = rest.split(":") if rest else []
    try:
        return _NAMED[name](trail, args)
    except KeyError:
        raise ValueError(f"unknown tamper operation {name!r}; one of {', '.join(sorted(_NAMED))}") from None
    except (IndexError, ValueError) as exc:
        raise ValueError(f"tamper {spec!r}: {exc}") from None


def _d(trail: SyntheticTrail, a: list[str]) -> StoredObject:
    return digest_at(trail, a[0], int(a[1]))


def _l(trail: SyntheticTrail, a: list[str]) -> StoredObject:
    return log_at(trail, a[0], int(a[1]))


def _named_delete_digest(trail: SyntheticTrail, a: list[str]) -> str:
    count = int(a[2]) if len(a) > 2 else 1
    objs = trail.digests(trail.spec.trail_account, a[0])[int(a[1]):int(a[1]) + count]
    for o in objs:
        delete(trail, o.ref)
    return "deleted " + ", ".join(o.ref.key for o in objs)


def _named_inject(trail: SyntheticTrail, a: list[str]) -> str:
    at = trail.spec.start + HOUR * int(a[1]) + timedelta(minutes=30)
    return f"injected {inject_log(trail, a[0], at).key}"


def _named_replay(trail: SyntheticTrail, a: list[str]) -> str:
    src = _d(trail, a)
    dst = digest_at(trail, a[0], int(a[1]) + 1)
    replay_digest(trail, src.ref, dst.ref)
    return f"replayed {src.ref.key} over {dst.ref.key}"


def _do(fn: Callable[[SyntheticTrail, ObjectRef], None], pick: Callable, verb: str):
    def run(trail: SyntheticTrail, a: list[str]) -> str:
        obj = pick(trail, a)
        fn(trail, obj.ref)
        return f"{verb} {obj.ref.key}"
    return run


_NAMED: dict[str, Callable[[SyntheticTrail, list[str]], str]] = {
    "modify-log": _do(modify_log, _l, "modified"),
    "delete-log": _do(delete, _l, "deleted"),
    "truncate-log": _do(truncate, _l, "truncated"),
    "trailing-log": _do(append_trailing, _l, "appended bytes to"),
    "inject-log": _named_inject,
    "reencrypt-log": lambda t, a: (reencrypt(t, _l(t, a).ref, a[2] if len(a) > 2 else None),
                                   f"re-encrypted {_l(t, a).ref.key}")[1],
    "modify-digest": _do(modify_digest, _d, "modified"),
    "delete-digest": _named_delete_digest,
    "delete-tail": lambda t, a: f"deleted {len(delete_tail(t, float(a[0])))} objects at the tail",
    "replay-digest": _named_replay,
    "strip-metadata": _do(strip_metadata, _d, "stripped metadata of"),
    "corrupt-digest": _do(corrupt, _d, "corrupted"),
    "unknown-key": _do(unknown_key, _d, "re-signed with an unknown key"),
    "algorithm": _do(wrong_algorithm, _d, "changed the signature algorithm of"),
    "chain-hash": _do(chain_hash, _d, "re-signed with a wrong previous hash"),
    "chain-signature": _do(chain_signature, _d, "re-signed with a wrong previous signature"),
    "reencrypt-digest": lambda t, a: (reencrypt(t, _d(t, a).ref, a[2] if len(a) > 2 else None),
                                      f"re-encrypted {_d(t, a).ref.key}")[1],
}

__all__ = ["apply_named", "ObjectMeta"]
