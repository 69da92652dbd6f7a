"""One tracked cell execution: what it read, set, produced, and where it came from.

``TrackedCell.begin()`` runs before the user's code (snapshot of the namespace,
fingerprints of the inputs, a resource meter); ``finish()`` after it, successful or
not: it works out params, metrics and outputs, hands the records to delivery and
returns a ``CellRun`` for display. IPython-free: the magic passes the namespace.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field

from .. import _current, naming
from ..errors import first_line
from ..secrets import mask_mapping, mask_source, mask_text
from ..journal import records
from .active import add_alerts
from .analysis import CellAnalysis, analyse, existing_files
from .identity import cell_label
from .datasets import data_record, is_data, mlflow_dataset
from .inference import MAX_PARAMS, infer_metrics, infer_params
from .lineage import lineage_tags, notebook_path, source_tags
from .resources import ResourceMeter
from .session import ActiveRun, CellRun, TrackingSession
from .values import metric_items, param_string, score_summary

log = logging.getLogger("mlops_magics")


@dataclass
class TrackOptions:
    """What ``%%track`` was told on its line (and by its config defaults)."""

    experiment: str
    tracking_uri: str
    name: str | None = None
    params: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    data: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    auto: bool = True
    log_model: str | None = None  # --log-model VAR
    eval: tuple[str, str] | None = None  # --eval X,Y: held-out data to score the model and its baseline on


def run_name(notebook: str | None, source: str) -> str:
    """The name every execution of a cell shares without ``--name``: the notebook's stem and the
    cell's label (``train: n_estimators = …``), the same when values or the execution count change."""
    label = cell_label(source)
    stem = os.path.splitext(os.path.basename(notebook))[0] if notebook else ""
    return f"{stem}: {label}" if stem else label


def _ids(ns: dict, hidden: set[str]) -> dict[str, int]:
    return {k: id(v) for k, v in list(ns.items()) if not k.startswith("_") and k not in hidden}


class TrackedCell:
    """Tracks one execution of a cell's code against namespace ``ns``."""

    def __init__(self, session: TrackingSession, raw: str, python: str, options: TrackOptions,
                 ns: dict, *, execution_count: int | None = None, cell_id: str | None = None,
                 hidden: set[str] | frozenset[str] = frozenset()) -> None:
        self.session, self.options, self.ns = session, options, ns
        self.raw, self.python = raw, python
        self.execution_count, self.cell_id, self.hidden = execution_count, cell_id, set(hidden)
        self.job = session.job  # in a notebook job: record into the job's run
        self.key = self.job.key if self.job else records.new_key()
        self.notebook = notebook_path(ns) or session.notebook
        self.source = mask_source(raw, python)
        self.name = options.name or run_name(self.notebook, self.source)
        self.analysis: CellAnalysis = analyse(python)
        self.nonfinite: list[str] = []
        self._objects: dict[str, tuple[object, str]] = {}  # name -> (object, digest) to profile
        self.data: list[dict] = []
        self.unhashed: dict[str, str] = {}
        self.warnings: list[str] = []
        self.model_error: Exception | None = None  # --log-model failed: the magic raises it after recording

    def begin(self) -> None:
        """Before the cell: open the run in the journal, fingerprint inputs, start meters."""
        self.start_ms = records.now_ms()
        self.delivery = self.session.delivery(self.options.tracking_uri)
        if not self.job:
            self.delivery.submit(self._start_ops())
        self.lineage = None if self.job else self.session.defer(lineage_tags, self.notebook)
        self.before = _ids(self.ns, self.hidden)
        self._read: dict[str, tuple[int, str]] = {}  # name -> (id, digest) of data read, to see in-place changes
        candidates = set(self.options.data)
        if self.options.auto:
            candidates |= self.analysis.free | self.analysis.augmented
        for name in sorted(candidates):
            if name in self.ns and (name in self.options.data or is_data(self.ns[name])):
                fp = self._fingerprint(name, self.ns[name], naming.CONTEXT_INPUT)
                if fp is not None:
                    self._read[name] = (id(self.ns[name]), fp.digest)
        self.files = {}
        if self.options.auto:
            for path in existing_files(self.analysis.strings):
                st = os.stat(path)
                self.files[path] = (st.st_mtime_ns, st.st_size)
                self._fingerprint_file(path, naming.CONTEXT_INPUT)
        self.active = ActiveRun(self.key, self.name, spill=self._spill, warnings=self.warnings,
                                notices=self.delivery.journal.take_notice)
        _current.push(self.active)
        self.meter = ResourceMeter()

    def finish(self, error: BaseException | None = None, displayed: object = None) -> CellRun:
        """After the cell: work out what it set and produced, commit it, end the run.

        ``displayed``: the value the cell displayed as its result (``Out[n]``), if any.
        """
        self.displayed = displayed
        usage = self.meter.stop()
        _current.pop(self.active)
        after = _ids(self.ns, self.hidden)
        # What the cell really bound: new or rebound names, not assignments in code that never
        # ran (a failed cell's later lines, `if False:`); top-level ones all ran in a cell that succeeded.
        bound = {k for k, v in after.items() if self.before.get(k) != v}
        if error is None:
            bound |= self.analysis.top_stores & after.keys()
        bound -= self.analysis.loop_targets
        params = self._params(bound)
        metrics = self._metrics(bound - set(self.analysis.params) - set(self.options.params))
        self._outputs(bound)
        if self.options.log_model and error is None:
            self._log_model(bound)
        status = "FINISHED" if error is None else ("KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")
        err = None if error is None else naming.clip(mask_text(f"{type(error).__name__}: {error}"),
                                                      naming.MAX_TAG_VAL_LENGTH)
        run = CellRun(
            key=self.key, name=self.name, experiment=self.options.experiment, uri=self.options.tracking_uri,
            status=status, params=params, metrics=metrics, data=self.data, unhashed=self.unhashed,
            warnings=self.warnings, error=err, cell_id=self.cell_id, source=self.source,
            execution_count=self.execution_count, step_points=self.active.count,
            usage={naming.SYSTEM_WALL: usage.wall_s, naming.SYSTEM_CPU: usage.cpu_s,
                   naming.SYSTEM_PEAK_MEM: usage.peak_mem_mb},
        )
        if self.job:
            self.job.metrics.update({**metrics, **self.active.latest})
            run.alerts = self.active.alerts(self.job.metrics, missing=False)
        else:
            run.alerts = self.active.alerts(metrics)
        run.previous = self.session.previous(run, name=self.options.name, notebook=self.notebook)
        self.session.record(run)
        if self._objects:  # drift profiles of the data, off the cell's path
            self.session.defer(self._profiles, dict(self._objects))
        if self.lineage is None:  # in a job: the job runner records lineage and ends the run
            self.delivery.submit(self._end_ops(run, None))
            return run
        lineage = self.lineage.done() and not self.lineage.exception()
        self.delivery.submit(self._end_ops(run, self.lineage.result() if lineage else None))
        if not lineage:  # git was slow: record it when ready, without holding up the cell
            self.session.defer(self._late_lineage)
        return run

    # -- what the cell set ---------------------------------------------------------
    def _params(self, bound: set[str]) -> dict[str, str]:
        """Literal assignments, estimators' non-default hyperparameters, searches' best params,
        model-building calls' literal keywords, ``--params`` names (names: ``inference.py``)."""
        values: dict[str, object] = {}
        if self.options.auto:
            try:
                values, dropped = infer_params(self.analysis, self.ns, bound, self.displayed)
            except Exception as exc:  # an odd object in the namespace: keep the run and what the code says
                log.debug("params not inferred", exc_info=True)
                values, dropped = dict(self.analysis.params), 0
                self.warnings.append(f"params of objects not read: {type(exc).__name__}: {exc}")
            if dropped:
                self.warnings.append(f"{dropped} more params not recorded (at most {MAX_PARAMS} a cell)")
        for name in self.options.params:
            if name in self.ns:
                values[name] = self.ns[name]
            else:
                self.warnings.append(f"--params {name}: no variable named {name!r} after the cell")
        out = {naming.sanitize_key(k): param_string(v) for k, v in values.items()}
        return mask_mapping(out)

    def _metrics(self, names: set[str]) -> dict[str, float]:
        """Bound scalars (dicts as ``name.key``), cross-validation scores, searches' best scores,
        the displayed value, ``--metrics`` names (names: ``inference.py``)."""
        found: dict[str, float] = {}
        nonfinite: list[str] = []
        explicit = set(self.options.metrics)
        items: list[tuple[str, float]] = []
        for name in sorted((names if self.options.auto else set()) | explicit):
            if name.startswith("_") or name in self.hidden or name not in self.ns:
                if name in explicit:
                    self.warnings.append(f"--metrics {name}: no variable named {name!r} after the cell")
                continue
            found_here = list(metric_items(name, self.ns[name]))
            if not found_here and name in explicit:
                found_here = list(score_summary(name, self.ns[name]))
                if not found_here:
                    self.warnings.append(f"--metrics {name}: {type(self.ns[name]).__name__} is not a number")
            items += found_here
        if self.options.auto:
            try:
                items += infer_metrics(self.analysis, self.ns, names, self.displayed)
            except Exception as exc:  # as for params: the run keeps the bound numbers
                log.debug("metrics not inferred", exc_info=True)
                self.warnings.append(f"scores of objects not read: {type(exc).__name__}: {exc}")
        for key, value in items:
            key = naming.sanitize_key(key)
            if key in found or key in nonfinite:
                continue  # a bound name wins over the same name inferred
            if value != value or value in (float("inf"), float("-inf")):
                nonfinite.append(key)
                self.warnings.append(f"metric {key} is {value}: not logged")
            else:
                found[key] = value
        self.nonfinite = nonfinite
        return found

    def _outputs(self, bound: set[str]) -> None:
        named = set(self.options.data)
        seen = {(d["name"], d["digest"]) for d in self.data}
        for name in sorted(named | (bound if self.options.auto else set()) | set(self._read)):
            if name not in self.ns:
                if name in named:
                    self.warnings.append(f"--data {name}: no variable named {name!r}")
                continue
            obj = self.ns[name]
            read = self._read.get(name)
            if read is not None and read[0] == id(obj):  # the object read: an output if changed in place
                fp = self._fingerprint(name, obj, None)
                if fp is not None and fp.digest != read[1]:
                    self._record(name, obj, fp, naming.CONTEXT_OUTPUT)
            elif name in bound and (name in named or is_data(obj)):
                self._fingerprint(name, obj, naming.CONTEXT_OUTPUT, skip=seen)
        for path in existing_files(self.analysis.strings) if self.options.auto else []:
            st = os.stat(path)
            if self.files.get(path) != (st.st_mtime_ns, st.st_size):
                self._fingerprint_file(path, naming.CONTEXT_OUTPUT)

    def _fingerprint(self, name: str, obj: object, context: str | None, skip: set | None = None):
        """The object's Fingerprint, recorded as ``context`` (None: not recorded); None when it has none.

        Plots, axes arrays and models have no content fingerprint: skipped quietly unless
        ``--data`` named them.
        """
        from ..errors import FingerprintError
        from ..fingerprints import fingerprint

        try:
            fp = fingerprint(obj)
        except FingerprintError as exc:
            if name in self.options.data:
                self.unhashed[name] = str(exc)
            else:
                log.debug("%s not fingerprinted: %s", name, exc)
            return None
        if context is not None and not (skip and (name, fp.digest) in skip):
            self._record(name, obj, fp, context)
        return fp

    def _record(self, name: str, obj: object, fp, context: str) -> None:
        self.data.append(data_record(name, fp, context, {"variable": name}))
        self._objects[name] = (obj, fp.digest)  # the output, when a name is both read and bound

    def _fingerprint_file(self, path: str, context: str) -> None:
        from ..errors import FingerprintError
        from ..fingerprints import fingerprint_path

        try:
            fp = fingerprint_path(path)
        except (OSError, FingerprintError) as exc:
            self.unhashed[path] = f"could not read: {exc}"
            return
        self.data.append(data_record(path, fp, context, {"path": os.path.abspath(path)}))

    def _log_model(self, bound: set[str]) -> None:
        """``--log-model VAR``: save the fitted model, with the first rows of data the cell read as example."""
        from ..errors import MlopsError
        from ..models.save import ModelError, attach, check_model, example_from, log_scores, save, score

        var = self.options.log_model
        try:
            if var not in self.ns:
                raise ModelError(f"--log-model {var}: no variable named {var!r} after the cell")
            model = self.ns[var]
            check_model(model, what=f"--log-model {var}")
            read = [d["name"] for d in self.data if d["context"] == naming.CONTEXT_INPUT and "variable" in d["source"]]
            candidates = [self.ns[n] for n in [*read, *sorted(bound)] if n in self.ns and n != var]
            example = example_from(model, candidates)
            if example is None:
                self.warnings.append(f"--log-model {var}: no data the cell read fits the model's features: "
                                     "logged without signature (mm.log_model(model, input_example=X) gives one)")
            evaluation = eval_data = None
            if self.options.eval:  # --eval X,Y: the model's and the dummy baseline's scores
                missing = [n for n in self.options.eval if n not in self.ns]
                if missing:
                    raise ModelError(f"--eval: no variable named {missing[0]!r} after the cell")
                x_name, y_name = self.options.eval
                evaluation, eval_data = score(model, (self.ns[x_name], self.ns[y_name]), x_name)
                if example is None:
                    example = example_from(model, [self.ns[x_name]])
            attach(self.active, save(model, self.key, naming.ARTIFACT_MODEL, example, evaluation=evaluation,
                                     eval_data=eval_data))
            if evaluation is not None:
                log_scores(self.active, evaluation)
        except MlopsError as exc:
            self.model_error = exc
            self.warnings.append(str(exc))
        except Exception as exc:  # MLflow or scikit-learn failing: keep the run's other records
            text = first_line(exc)
            self.model_error = ModelError(f"--log-model {var}: could not save the model: {type(exc).__name__}: {text}")
            self.warnings.append(str(self.model_error))

    # -- records ---------------------------------------------------------------------
    def _spill(self, points: list) -> None:
        self.delivery.submit([records.log(self.key, metrics=points)])

    def _start_ops(self) -> list[records.Op]:
        uri, experiment = self.options.tracking_uri, self.options.experiment
        parent, ops = self.session.session_run(uri, experiment, self.notebook)
        tags = {naming.KIND: naming.KIND_CELL, naming.SESSION_KEY: self.session.key,
                naming.CELL_SHA256: hashlib.sha256(self.source.encode()).hexdigest(),
                **mask_mapping(self.options.tags)}
        if self.notebook:
            tags.update(source_tags(self.notebook))
        if self.execution_count is not None:
            tags[naming.EXECUTION_COUNT] = str(self.execution_count)
        if self.cell_id:
            tags[naming.CELL_ID] = self.cell_id
        ops.append(records.start(self.key, experiment=experiment, name=self.name,
                                 start_ms=self.start_ms, tags=tags, parent_key=parent))
        return ops

    def _end_ops(self, run: CellRun, lineage: tuple[dict, str] | None) -> list[records.Op]:
        tags: dict[str, str] = dict(lineage[0]) if lineage else {}
        if run.unhashed:
            tags[naming.UNHASHED] = "; ".join(f"{k}: {v}" for k, v in run.unhashed.items())
        if self.nonfinite:
            tags[naming.NONFINITE] = ",".join(self.nonfinite)
        if run.error:
            tags[naming.FAILURE] = naming.FAILURE_ERROR
            tags[naming.ERROR] = run.error
        tags.update(mask_mapping(self.active.tags))
        add_alerts(tags, run.alerts)
        ts = records.now_ms()
        metrics = [(k, v, ts, 0) for k, v in {**run.metrics, **run.usage}.items()] + self.active.metrics
        self.active.metrics = []
        ops = [records.log(self.key, params=run.params, metrics=metrics, tags=tags)]
        if run.data:
            ops.append(records.inputs(self.key, [mlflow_dataset(d) for d in run.data]))
        cell_path = naming.ARTIFACT_CELL if not self.job else naming.artifact_job_cell(self.execution_count)
        ops.append(records.artifact(self.key, cell_path, run.source))
        for path, text in self.active.artifacts.items():
            ops.append(records.artifact(self.key, path, text))
        if lineage:
            ops.append(records.artifact(self.key, naming.ARTIFACT_REQUIREMENTS, lineage[1]))
        if naming.MODEL in self.active.tags:  # models this cell logged (the tag also names earlier ones)
            from ..models.save import model_dir, model_paths, saved_since

            fresh = saved_since(self.key, model_paths(self.active.tags), self.start_ms / 1000)
            ops += [records.model(self.key, str(model_dir(self.key, p)), p) for p in fresh]
        if not self.job:
            ops.append(records.end(self.key, status=run.status, end_ms=ts))
        return ops

    def _profiles(self, objects: dict[str, tuple[object, str]]) -> None:
        """Profile each tracked frame or array (``mlops/profiles/<name>.json``) for drift.

        Runs in the session's background thread after the cell, once per content digest in
        a session. An object a later cell changed in place before its profile was made gets
        no profile rather than one of other content. Nothing here touches warnings state
        (the profile code avoids pandas calls that enter ``warnings.catch_warnings``).
        """
        from ..fingerprints import fingerprint
        from ..monitoring.profile import profile

        ops = []
        for name, (obj, digest) in objects.items():
            text = self.session.profiles.get(digest)
            if text is None:
                try:
                    text = profile(obj).to_json()
                    if fingerprint(obj).digest != digest:
                        log.debug("no profile for %s: changed since the cell", name)
                        continue
                except Exception as exc:  # a profile is an extra: never lose the run over one
                    log.debug("no profile for %s: %s", name, exc)
                    continue
                self.session.profiles.put(digest, text)
            ops.append(records.artifact(self.key, naming.artifact_profile(name), text))
        if ops:
            self.delivery.submit(ops)

    def _late_lineage(self) -> None:
        try:
            tags, requirements = self.lineage.result()
        except Exception:
            return
        self.delivery.submit([records.log(self.key, tags=tags),
                              records.artifact(self.key, naming.ARTIFACT_REQUIREMENTS, requirements)])
