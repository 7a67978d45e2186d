"""Digest verification: untrusted bytes and metadata in, a verdict out.

The steps, in order (each failure ends the check with its reason):
 1. gunzip within a size cap, parse JSON, required fields      -> invalid_format
 2. signature and algorithm in the object's metadata            -> no_signature
 3. a backfill key carries backfill-generation-timestamp         -> invalid_format
 4. digestS3Bucket/digestS3Object name where the object lies     -> moved
 5. digestSignatureAlgorithm and metadata algorithm SHA256withRSA -> unsupported_algorithm
 6. a public key with digestPublicKeyFingerprint                  -> unknown_public_key
 7. RSA PKCS#1 v1.5 SHA-256 over the signed string                -> signature_mismatch
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Mapping

from ..errors import IntegrityError
from ..model import Digest, ObjectRef, parse_digest
from ..results import INVALID, Verdict
from .hashing import gunzip_bounded
from .keys import KeyRing
from .signing import SIGNATURE_ALGORITHM, string_to_sign, verify_signature

MAX_DIGEST_UNCOMPRESSED = 64 << 20


@dataclass(slots=True)
class CheckedDigest:
    """A digest as found at `lies_at`, with the verdict on its own content."""

    lies_at: ObjectRef  # where the object was read
    original: ObjectRef  # where CloudTrail would have put it (lies_at mapped back from a copy)
    verdict: Verdict
    digest: Digest | None = None
    sha256: str | None = None  # of the uncompressed bytes
    signature: str | None = None  # hex, from metadata
    backfill: bool = False
    in_range: bool = True
    from_state: bool = False  # judged from the state's record (unchanged since), not fetched
    shelved: int | None = None  # its log list was moved to disk under this number (digest.log_files is empty)
    log_count: int | None = None  # the length of its log list, once shelved

    @property
    def trusted(self) -> bool:
        """Valid or warning: its pointers and log list may be followed."""
        return self.verdict.status in ("valid", "warning")

    def count_logs(self) -> int | None:
        if self.digest is None:
            return None
        return self.log_count if self.shelved is not None else len(self.digest.log_files)


TOKEN = "b2:"


def signature_token(signature: str | None) -> str | None:
    """A short stand-in for a hex signature (512 characters for RSA-2048), equal for equal signatures in
    any letter case: what chain linking compares, once the pipeline has compacted a checked digest."""
    if not signature or signature.startswith(TOKEN):
        return signature
    return TOKEN + hashlib.blake2b(signature.lower().encode(), digest_size=20).hexdigest()


def same_signature(a: str | None, b: str | None) -> bool:
    """Whether two signatures (hex, or tokens of hex) are the same, ignoring letter case."""
    return (signature_token(a) or "") == (signature_token(b) or "")


def compact(d: CheckedDigest) -> CheckedDigest:
    """Drop what no check needs after a digest's own (its signed string's parts, its log list, kept on
    disk by the pipeline): a long history holds one of these per digest."""
    if d.digest is not None:
        location = d.original if d.digest.location == d.original else d.digest.location
        d.digest = d.digest.compacted(signature_token(d.digest.previous_signature), location)
    d.signature = signature_token(d.signature)
    return d


def _invalid(reason: str, message: str) -> Verdict:
    return Verdict(INVALID, reason, message)


def check_digest(data: bytes, metadata: Mapping[str, str], lies_at: ObjectRef, original: ObjectRef,
                 keys: KeyRing, backfill: bool = False) -> CheckedDigest:
    """Verify one digest object's own content (chain links are checked elsewhere)."""
    result = CheckedDigest(lies_at=lies_at, original=original, verdict=Verdict.valid(), backfill=backfill)
    # 1. format
    try:
        raw, sha = gunzip_bounded(data, MAX_DIGEST_UNCOMPRESSED)
        digest = parse_digest(raw)
    except IntegrityError as exc:
        result.verdict = _invalid("invalid_format", f"invalid format: {exc}")
        return result
    result.digest, result.sha256 = digest, sha
    # 2. signature metadata
    signature = metadata.get("signature")
    algorithm = metadata.get("signature-algorithm")
    result.signature = signature.lower() if isinstance(signature, str) else None
    if not signature or not algorithm:
        result.verdict = _invalid("no_signature", "no signature or signature-algorithm in the object's metadata")
        return result
    # 3. backfill marker
    if backfill and not metadata.get("backfill-generation-timestamp"):
        result.verdict = _invalid("invalid_format", "backfill digest without backfill-generation-timestamp metadata")
        return result
    # 4. location
    if digest.location != original:
        result.verdict = _invalid(
            "moved", f"has been moved from its original location {digest.location.uri}")
        return result
    # 5. algorithm
    if digest.signature_algorithm != SIGNATURE_ALGORITHM or algorithm != SIGNATURE_ALGORITHM:
        result.verdict = _invalid(
            "unsupported_algorithm",
            f"signature algorithm {digest.signature_algorithm!r:.40} (metadata {algorithm!r:.40}) is not {SIGNATURE_ALGORITHM}")
        return result
    # 6. key
    key = keys.get(digest.fingerprint)
    if key is None:
        why = keys.rejected.get(digest.fingerprint.lower())
        detail = f" ({why})" if why else ""
        result.verdict = _invalid(
            "unknown_public_key", f"public key not found for fingerprint {digest.fingerprint[:64]}{detail}")
        return result
    # 7. signature
    if not verify_signature(key, string_to_sign(digest, sha), signature):
        result.verdict = _invalid("signature_mismatch", "signature verification failed")
        return result
    return result
