"""Masking of secret-looking names: they are recorded as ``***`` everywhere."""

from __future__ import annotations

import re

MASK = "***"
_SECRET = re.compile(
    r"(pass(word|wd)?|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key"
    r"|credential|auth(?!or)|cookie|session[_-]?key|signature)",
    re.IGNORECASE,
)


def is_secret(name: str) -> bool:
    """True when ``name`` looks like it holds a credential."""
    return bool(_SECRET.search(str(name)))


def mask_mapping(mapping: dict[str, str]) -> dict[str, str]:
    """A copy of ``mapping`` with the values of secret-looking keys replaced by ``***``."""
    return {k: (MASK if is_secret(k) else v) for k, v in mapping.items()}
