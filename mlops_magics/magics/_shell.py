"""What every magic does with the shell: show an object as its mimebundle, find the data a
line names."""

from __future__ import annotations

import os

from IPython.core.error import UsageError

from ..errors import did_you_mean

RUNS = "runs:/"


def publish(shell, obj) -> None:
    """Display ``obj`` through the shell's formatter (text/plain, text/html, widget views)."""
    data, metadata = shell.display_formatter.format(obj)
    shell.display_pub.publish(data=data, metadata=metadata)


def user_data(shell, name: str):
    """A variable of the user's namespace; ``runs:/`` URIs and existing files as given."""
    ns = shell.user_ns
    if name in ns:
        return ns[name]
    if name.startswith(RUNS) or os.path.exists(name):
        return name
    hidden = set(shell.user_ns_hidden)
    names = [k for k in ns if not k.startswith("_") and k not in hidden]
    raise UsageError(f"no variable {name!r} (nor a runs:/ URI or a file).{did_you_mean(name, names)}")
