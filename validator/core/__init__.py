"""The pure verification core: bytes in, verdicts out. No S3, no files, no click."""
