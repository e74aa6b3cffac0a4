"""Counts in words: "1 instance", "2 instances", never "instance(s)"."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`count` and the noun in the number it needs, with thousands separators."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"
