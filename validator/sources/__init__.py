"""Storage at the edges: one small interface, an S3 implementation and an evidence-directory one."""

from .base import ListedObject, ObjectStream, Source, TrailInfo

__all__ = ["ListedObject", "ObjectStream", "Source", "TrailInfo"]
