"""The data a tracked cell read or wrote: which values are data, and how a dataset record looks
in the journal and in MLflow's dataset entity."""

from __future__ import annotations

from ..journal.datasets import data_record, mlflow_dataset  # noqa: F401  (the record format lives in the journal)

_DATA_LIBRARIES = frozenset({"numpy", "pandas", "pyarrow", "polars"})


def is_data(obj: object) -> bool:
    """Whether a value is data to fingerprint: a table or array of an already loaded library.

    For a float or a dict, importing the fingerprint module (and numpy with it) would cost
    a cell 0.2 s of CPU for nothing.
    """
    if not any(cls.__module__.partition(".")[0] in _DATA_LIBRARIES for cls in type(obj).__mro__):
        return False
    from ..fingerprints import is_fingerprintable

    return is_fingerprintable(obj)


class ProfileCache:
    """Profile JSON by content digest: data used by many cells is profiled once per session.

    Bounded in bytes, oldest first out. Used from the session's one background thread only.
    """

    def __init__(self, max_bytes: int = 16 << 20) -> None:
        from collections import OrderedDict

        self.max_bytes, self.size = max_bytes, 0
        self._texts: OrderedDict[str, str] = OrderedDict()

    def get(self, digest: str) -> str | None:
        text = self._texts.get(digest)
        if text is not None:
            self._texts.move_to_end(digest)
        return text

    def put(self, digest: str, text: str) -> None:
        if digest in self._texts or len(text) > self.max_bytes:
            return
        self._texts[digest] = text
        self.size += len(text)
        while self.size > self.max_bytes:
            _, old = self._texts.popitem(last=False)
            self.size -= len(old)
