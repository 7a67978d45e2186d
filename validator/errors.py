"""Two roots, never mixed: the data is bad (IntegrityError) vs the data could not be read (SourceError).

An attacker's input and an outage must never share a type: the first is a
verdict on the trail, the second only makes the result incomplete.
"""

from __future__ import annotations


class CtValidateError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(CtValidateError):
    """The run cannot start: bad arguments, unreadable key files, no credentials (exit 2)."""


# --- the data is bad ---------------------------------------------------------


class IntegrityError(CtValidateError):
    """The bytes or metadata contradict what CloudTrail would have written."""

    reason = "invalid_format"


class FormatError(IntegrityError):
    """Not gzip, not JSON, a required field missing or of the wrong type."""

    reason = "invalid_format"


class TrailingDataError(IntegrityError):
    reason = "trailing_data"


class EvidenceModifiedError(IntegrityError):
    """Evidence directory: the bytes differ from the manifest written at acquisition."""

    reason = "evidence_modified"


# --- the data could not be read ----------------------------------------------


class SourceError(CtValidateError):
    """Could not get the data. `reason` is the contract's reason code."""

    reason = "access_denied"
    retryable = False


class NotFoundError(SourceError):
    reason = "not_found"


class AccessDeniedError(SourceError):
    reason = "access_denied"


class KmsAccessDeniedError(SourceError):
    """S3 could not decrypt the SSE-KMS object for the caller."""

    reason = "kms_access_denied"

    def __init__(self, message: str, key_arn: str | None = None):
        super().__init__(message)
        self.key_arn = key_arn


class ArchivedError(SourceError):
    reason = "archived"


class TransportError(SourceError):
    """Throttling, resets, truncated bodies: retried, then reported unverifiable."""

    reason = "transport_error"
    retryable = True


class ListingError(SourceError):
    """A folder could not be listed."""

    reason = "access_denied"
