"""Synthetic CloudTrail trails for tests, fixtures and benchmarks."""

from .trail import StoredObject, SyntheticTrail, TrailSpec, generate

__all__ = ["StoredObject", "SyntheticTrail", "TrailSpec", "generate"]
