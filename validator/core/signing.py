"""The string CloudTrail signs, and RSA PKCS#1 v1.5 SHA-256 verification."""

from __future__ import annotations

import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from ..model import Digest
from .keys import PublicKey

SIGNATURE_ALGORITHM = "SHA256withRSA"
MAX_SIGNATURE_HEX = 4096


def string_to_sign(digest: Digest, digest_sha256_hex: str) -> bytes:
    """digestEndTime \\n bucket/key \\n hex(SHA-256(digest)) \\n previousDigestSignature (or `null`)."""
    previous = digest.previous_signature if digest.previous_signature is not None else "null"
    return (
        f"{digest.end_time_text}\n{digest.location.bucket}/{digest.location.key}\n"
        f"{digest_sha256_hex}\n{previous}"
    ).encode("utf-8")


def verify_signature(key: PublicKey, message: bytes, signature_hex: str) -> bool:
    """True when `signature_hex` is key's PKCS#1 v1.5 SHA-256 signature of `message`."""
    if not isinstance(signature_hex, str) or len(signature_hex) > MAX_SIGNATURE_HEX:
        return False
    try:
        signature = binascii.unhexlify(signature_hex.strip())
    except (binascii.Error, ValueError):
        return False
    try:
        key.rsa.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True
