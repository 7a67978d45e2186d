"""Hostile payloads for tests: gzip bombs and malformed digests (built cheaply, never held inflated)."""

from __future__ import annotations

import gzip
import struct
import zlib

_BLOCK = 1 << 20


def gzip_bomb(inflated_bytes: int) -> bytes:
    """A valid single-member gzip of `inflated_bytes` zeros (a multiple of 1 MiB), about 1000:1.

    Built from one fully flushed deflate block repeated, so making a 2 GB bomb takes a second.
    """
    blocks = max(1, inflated_bytes // _BLOCK)
    zero = b"\0" * _BLOCK
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    one = c.compress(zero) + c.flush(zlib.Z_FULL_FLUSH)  # after a full flush every block compresses alike
    crc = 0
    for _ in range(blocks):
        crc = zlib.crc32(zero, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    end = c.flush(zlib.Z_FINISH)
    return header + one * blocks + end + struct.pack("<II", crc, (blocks * _BLOCK) & 0xFFFFFFFF)


def huge_json_digest(size: int) -> bytes:
    """A gzip of a JSON document larger than `size` bytes uncompressed."""
    return gzip.compress(b'{"pad":"' + b" " * size + b'"}', compresslevel=1)


def nested_json(depth: int) -> bytes:
    return gzip.compress(b"[" * depth + b"]" * depth)
