"""Public keys in the shape `aws cloudtrail list-public-keys` prints, checked against their fingerprints."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_der_public_key

from ..errors import FormatError
from ..model import parse_time

MAX_KEY_BYTES = 16 * 1024


@dataclass(frozen=True)
class PublicKey:
    fingerprint: str  # lowercase hex MD5 of the DER bytes
    der: bytes
    rsa: RSAPublicKey
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    origin: str = ""  # where it came from (file name, region), for messages

    def __reduce__(self):
        """Pickled as its DER bytes (the RSA object is not picklable): engines ship key rings to workers."""
        return (_rebuild_key, (self.fingerprint, self.der, self.valid_from, self.valid_to, self.origin))


def _rebuild_key(fingerprint: str, der: bytes, valid_from: datetime | None, valid_to: datetime | None,
                 origin: str) -> PublicKey:
    """The inverse of PublicKey.__reduce__; the fingerprint is checked again, as for any key read."""
    if fingerprint_of(der) != fingerprint:
        raise FormatError(f"a pickled key does not hash to its fingerprint {fingerprint[:64]}")
    return PublicKey(fingerprint, der, _load_rsa(der), valid_from, valid_to, origin)


def _load_rsa(der: bytes) -> RSAPublicKey:
    """DER PKCS#1 RSAPublicKey (documented) or SubjectPublicKeyInfo (one published sample)."""
    try:
        key = load_der_public_key(der)
    except ValueError:
        key = None
    if key is None:
        # PKCS#1: wrap it in a SubjectPublicKeyInfo by hand (rsaEncryption OID, NULL params).
        bitstring = b"\x00" + der
        alg = bytes.fromhex("300d06092a864886f70d0101010500")
        body = alg + b"\x03" + _der_len(len(bitstring)) + bitstring
        spki = b"\x30" + _der_len(len(body)) + body
        try:
            key = load_der_public_key(spki)
        except ValueError as exc:
            raise FormatError("public key is neither PKCS#1 RSAPublicKey nor SubjectPublicKeyInfo DER") from exc
    if not isinstance(key, RSAPublicKey):
        raise FormatError("public key is not an RSA key")
    return key


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _parse_validity(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise FormatError("validity time is a boolean")
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(float(value), tz=timezone.utc)
        except (OverflowError, OSError, ValueError) as exc:
            raise FormatError(f"validity time out of range: {value!r}") from exc
    if isinstance(value, str):
        return parse_time(value)
    raise FormatError(f"validity time of unknown type: {type(value).__name__}")


def fingerprint_of(der: bytes) -> str:
    return hashlib.md5(der, usedforsecurity=False).hexdigest()


def parse_public_key(entry: Any, origin: str = "") -> PublicKey:
    """One `PublicKeyList` entry. Raises FormatError when it is malformed or its fingerprint lies."""
    if not isinstance(entry, dict):
        raise FormatError("a PublicKeyList entry is not an object")
    value, fp = entry.get("Value"), entry.get("Fingerprint")
    if not isinstance(value, str) or not isinstance(fp, str):
        raise FormatError("a PublicKeyList entry lacks Value or Fingerprint strings")
    if len(value) > MAX_KEY_BYTES * 2:
        raise FormatError("a public key Value is too long")
    try:
        der = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FormatError("a public key Value is not base64") from exc
    actual = fingerprint_of(der)
    if actual != fp.strip().lower():
        raise FormatError(f"key listed under fingerprint {fp.strip().lower()[:64]} hashes to {actual}: the key file lies")
    return PublicKey(
        fingerprint=actual,
        der=der,
        rsa=_load_rsa(der),
        valid_from=_parse_validity(entry.get("ValidityStartTime")),
        valid_to=_parse_validity(entry.get("ValidityEndTime")),
        origin=origin,
    )


def parse_key_list(doc: Any, origin: str = "") -> list[PublicKey]:
    """A whole `list-public-keys` document (or a bare list of entries)."""
    entries = doc.get("PublicKeyList") if isinstance(doc, dict) else doc
    if not isinstance(entries, list):
        raise FormatError("no PublicKeyList in the key file")
    return [parse_public_key(e, origin) for e in entries]


class KeyRing:
    """Public keys by fingerprint. Keys are per region; a ring is their union."""

    def __init__(self, keys: Iterable[PublicKey] = ()):
        self._keys: dict[str, PublicKey] = {}
        self.rejected: dict[str, str] = {}  # fingerprint -> why a key claiming it was refused
        for k in keys:
            self.add(k)

    def add(self, key: PublicKey) -> None:
        self._keys.setdefault(key.fingerprint, key)

    def reject(self, fingerprint: str, why: str) -> None:
        self.rejected[fingerprint.lower()] = why

    def get(self, fingerprint: str) -> PublicKey | None:
        return self._keys.get(fingerprint.lower()) if isinstance(fingerprint, str) else None

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self):
        return iter(self._keys.values())

    def fingerprints(self) -> list[str]:
        return sorted(self._keys)
