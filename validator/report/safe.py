"""Text that came from S3 or disk (keys, messages, principals) shown to a person or a script."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str) -> str:
    """Control characters as \\xNN, so a hostile key or message cannot forge a line (or a tab-separated field)
    of the output."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
