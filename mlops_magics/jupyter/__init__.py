"""The Jupyter server extension: ``/mlops/api/`` (runs, jobs, schedules, delivery state),
the journal's delivery kept alive, and due schedules run while the server runs.

Enabled by ``etc/jupyter/jupyter_server_config.d/mlops_magics.json`` (installed with the
package); ``jupyter server extension disable mlops_magics`` turns it off. Importing this
module is cheap: the server imports it to list extensions.
"""

from __future__ import annotations


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "mlops_magics.jupyter"}]


def _load_jupyter_server_extension(serverapp) -> None:
    from .app import load

    load(serverapp)
