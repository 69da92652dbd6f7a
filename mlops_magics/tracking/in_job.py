"""A notebook job's run, as the kernel running that job sees it.

Inside ``mlops-magics run`` (and each sweep point, each scheduled run) the kernel
records into the job's one run instead of a run per tracked cell: tracked cells
add their params and metrics to it, and after every cell, tracked or not, what plain
code added (step metrics, tags, artifacts, metric checks) is committed to it. The
session holds one of these only in a job's kernel.
"""

from __future__ import annotations

from .. import naming
from ..journal import records
from .active import ActiveRun, add_alerts


class JobInKernel:
    """The job's run ``key`` at ``uri``, its metrics so far and what was already sent."""

    def __init__(self, key: str, uri: str, delivery) -> None:
        self.key, self.uri = key, uri
        self.run = ActiveRun(key, "job", spill=lambda points: delivery.submit([records.log(key, metrics=points)]))
        self.metrics: dict[str, float] = {}  # what the job's run holds so far, for metric checks
        self._alerts: list[str] = []
        self._sent: dict[str, str] = {}
        self._environment_pending = True  # captured after the first cell: the job's run exists by then

    def after_cell(self, session) -> None:
        """Commit what the cell added to the job's run (tags, artifacts, alerts, spilled steps)."""
        run, delivery = self.run, session.delivery(self.uri)
        if self._environment_pending:
            self._environment_pending = False
            session.defer(_environment, run.key, delivery)
        run.take_spill()
        ops = []
        alerts = [a for a in run.alerts(self.metrics, missing=False) if a not in self._alerts]
        self._alerts.extend(alerts)
        add_alerts(run.tags, alerts)  # after a drift report's reason, if one set it
        fresh = {k: v for k, v in run.tags.items() if self._sent.get(k) != v}
        if fresh:  # the tags stay on the run object: later cells read them (mlops.model)
            ops.append(records.log(run.key, tags=fresh))
            self._sent.update(fresh)
        for path, text in run.artifacts.items():
            ops.append(records.artifact(run.key, path, text))
        run.artifacts.clear()
        if ops:
            delivery.submit(ops)


def _environment(key: str, delivery) -> None:
    """The kernel's own Python and packages, captured inside the kernel."""
    from .lineage import environment_tags

    tags, requirements = environment_tags()
    delivery.submit([records.log(key, tags=tags), records.artifact(key, naming.ARTIFACT_REQUIREMENTS, requirements)])
