"""Fingerprints of files and directories, by content, streamed at any size."""

from __future__ import annotations

import os
import stat
from typing import Any

import xxhash

from mlops_magics.fingerprints.core import Parts, run_tasks, u64
from mlops_magics.fingerprints.values import encode
from mlops_magics.errors import FingerprintError

_READ = 1 << 22


def path_parts(path: Any) -> Parts:
    """Parts of a regular file (its bytes) or a directory (its tree)."""
    name = os.fspath(path)
    st = os.stat(name)  # FileNotFoundError names the path
    if stat.S_ISREG(st.st_mode):
        digest, size = file_digest(name)
        return Parts("file", "file", None, None, None, [digest], size)
    if stat.S_ISDIR(st.st_mode):
        return _directory_parts(name)
    raise FingerprintError(
        f"cannot fingerprint {name!r}: it is neither a regular file nor a directory"
        " (pipes, sockets and devices have no fixed content)"
    )


def file_digest(name: str | bytes) -> tuple[bytes, int]:
    """xxh3-128 of a file's bytes, read a few MiB at a time."""
    h = xxhash.xxh3_128()
    buf = bytearray(_READ)
    view = memoryview(buf)
    size = 0
    with open(name, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
            size += n
    return h.digest() + u64(size), size


def _directory_parts(top: str) -> Parts:
    entries = _walk(os.fsencode(top))
    files = [full for kind, _, full, _ in entries if kind == b"f"]
    sizes = sum(extra for kind, _, _, extra in entries if kind == b"f")
    results = iter(run_tasks([lambda full=full: file_digest(full) for full in files], sizes))
    listing = xxhash.xxh3_128()
    nbytes = 0
    for kind, rel, _, extra in entries:
        listing.update(encode((kind, b"/".join(rel), extra if kind == b"l" else None)))
        if kind == b"f":
            digest, size = next(results)
            listing.update(digest)
            nbytes += size
    return Parts("directory", "directory", None, None, None, [listing.digest()], nbytes)


def _walk(top: bytes) -> list[tuple[bytes, tuple[bytes, ...], bytes, Any]]:
    """Every entry below ``top`` as ``(kind, relative parts, path, extra)``, sorted.

    Kinds: ``d`` directory, ``f`` file (extra: its size; symlinks to files are
    followed), ``l`` a symlink to a directory or a broken one (extra: its target, not
    followed, so a tree with a loop still ends), ``o`` anything else.
    """
    out = []
    sep = os.fsencode(os.sep)

    def fail(err: OSError) -> None:
        raise err

    for dirpath, dirnames, filenames in os.walk(top, onerror=fail, followlinks=False):
        base = tuple(os.path.relpath(dirpath, top).split(sep)) if dirpath != top else ()
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            out.append(_entry(full, base + (name,)))
    out.sort(key=lambda entry: entry[1])
    return out


def _entry(full: bytes, rel: tuple[bytes, ...]) -> tuple[bytes, tuple[bytes, ...], bytes, Any]:
    st = os.lstat(full)
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.stat(full)
        except OSError:  # broken
            target = None
        if target is not None and stat.S_ISREG(target.st_mode):
            return b"f", rel, full, target.st_size
        return b"l", rel, full, os.readlink(full)
    if stat.S_ISDIR(st.st_mode):
        return b"d", rel, full, None
    if stat.S_ISREG(st.st_mode):
        return b"f", rel, full, st.st_size
    return b"o", rel, full, None
