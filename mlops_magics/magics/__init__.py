"""IPython glue: loading and unloading the extension. Thin by design."""

from __future__ import annotations

import atexit


def load(shell) -> None:
    """Register ``%%track`` and its hooks on ``shell`` (called by ``%load_ext mlops_magics``)."""
    from .. import _current, locations
    from ..tracking.lineage import notebook_path
    from ..tracking.session import TrackingSession
    from .drift_history import MonitorMagics
    from .track import TrackMagics
    from .validate import ValidateMagics

    old = shell.magics_manager.registry.get("TrackMagics")
    if old is not None:  # loaded before without a clean unload: never double the hooks
        old.close()
    session = TrackingSession(notebook=notebook_path(shell.user_ns))
    magics = TrackMagics(shell=shell, session=session)
    shell.register_magics(magics)
    shell.register_magics(MonitorMagics(shell=shell))
    shell.register_magics(ValidateMagics(shell=shell))
    shell.events.register("pre_run_cell", magics.pre_run_cell)
    shell.events.register("post_run_cell", magics.post_run_cell)
    # IPython runs %%track cells itself (see track.py); close() removes exactly this one.
    shell.input_transformers_cleanup.append(magics.transformer)
    atexit.register(magics.close)
    _current.set_session(session)
    job = locations.job_run()
    if job:
        session.attach_job(job, locations.tracking_uri())


def unload(shell) -> None:
    """Undo exactly what ``load`` did and deliver what is pending."""
    magics = shell.magics_manager.registry.get("TrackMagics")
    if magics is not None:
        magics.close()
