"""What the REST API says about notebooks and schedules: JSON in, checked, JSON out.

Every check is the CLI's own (``runner.parameters``, ``schedules.manage``), so a message
here is the line ``mlops-magics`` would print, did-you-mean included.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .places import BadRequest, Places

_TEXT_TYPES = ("str", "None", "expression")


def jsonable(value: Any) -> Any:
    """``value`` as JSON can carry it (a tuple as a list; anything else as its repr)."""
    if isinstance(value, tuple):
        value = list(value)
    try:
        json.dumps(value, allow_nan=False)
        return value
    except (TypeError, ValueError):
        return repr(value)


def notebook_view(places: Places, path: str) -> dict:
    """``GET /notebook``: the parameters as ``mlops-magics run NB --describe`` lists them."""
    from ..runner.parameters import read_notebook_parameters

    _, declared = read_notebook_parameters(places.notebook(path))
    params = [{"name": p.name, "default": jsonable(p.default) if p.type_name != "expression" else p.source,
               "type": p.type_name, "help": p.help} for p in (declared or {}).values()]
    return {"path": path, "parameters": params}


def typed_parameters(notebook: Path, given: Any) -> dict[str, Any]:
    """The overrides of a request, checked against the notebook's parameters cell and typed.

    JSON values are checked against each default's type; a string for a parameter that is not
    a string is read as ``-p NAME TEXT`` would be (a form field gives text).
    """
    from ..runner.parameters import read_notebook_parameters, resolve

    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise BadRequest("parameters must be an object of names to values")
    _, declared = read_notebook_parameters(notebook)
    values, texts = {}, []
    for name, value in given.items():
        param = (declared or {}).get(name)
        if param is not None and isinstance(value, str) and param.type_name not in _TEXT_TYPES:
            texts.append((name, value))
        else:
            values[name] = value
    return resolve(declared, given=values, texts=texts, notebook=notebook.name)


def as_text(value: Any) -> str:
    """A typed value as the ``-p`` text that converts back to it."""
    if isinstance(value, str):
        return value
    return repr(value)


# -- schedules ---------------------------------------------------------------------------
def add_schedule(places: Places, store, body: Any):
    """``POST /schedules``: every check of ``schedule add``, then saved."""
    from ..schedules.manage import CATCH_UP, add_schedule as add, env_reference

    if not isinstance(body, dict):
        raise BadRequest("send a JSON object with name, notebook and cron")
    missing = [k for k in ("name", "notebook", "cron") if not body.get(k)]
    if missing:
        raise BadRequest(f"missing {', '.join(missing)}: a schedule needs a name, a notebook and a cron expression")
    unknown = sorted(set(body) - {"name", "notebook", "cron", "parameters", "timezone", "catch_up", "timeout",
                                  "retries", "on_alert", "experiment"})
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r}")
    notebook = places.notebook(body["notebook"])
    given = body.get("parameters") or {}
    if not isinstance(given, dict):
        raise BadRequest("parameters must be an object of names to values")
    typed = typed_parameters(notebook, {k: v for k, v in given.items()
                                        if not (isinstance(v, str) and env_reference(v))})
    texts = [(k, v if isinstance(v, str) and env_reference(v) else as_text(typed[k])) for k, v in given.items()]
    catch_up = body.get("catch_up") or "one"
    if catch_up not in CATCH_UP:
        raise BadRequest(f"catch_up is 'one' or 'none', not {catch_up!r}")
    timeout = body.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise BadRequest(f"timeout is a number of seconds above 0, not {timeout!r}")
    retries = body.get("retries", 0) or 0
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise BadRequest(f"retries is a whole number, 0 or more, not {retries!r}")
    return add(str(body["name"]), notebook, str(body["cron"]), parameters=texts, timezone=body.get("timezone") or None,
               on_alert=body.get("on_alert") or None, catch_up=catch_up, experiment=body.get("experiment") or None,
               tracking_uri=places.uri, timeout=timeout, retries=retries, store=store, workdir=notebook.parent)


def schedule_view(places: Places, store, s, now) -> dict:
    """One SCHEDULE of the API."""
    from ..schedules import cron
    from ..schedules.manage import next_time

    nxt = next_time(store, s, now)
    last = store.last(s.name)
    return {"name": s.name, "notebook": places.relative(s.notebook), "cron": s.cron, "timezone": s.timezone,
            "parameters": _typed_back(s), "catch_up": s.catch_up, "timeout": s.timeout, "retries": s.retries,
            "on_alert": s.on_alert, "paused": s.paused,
            "next_run": cron.local_iso(nxt, s.timezone) if nxt is not None else None,
            "last": None if last is None else {"status": last.state, "run_id": last.run_id,
                                               "at": cron.local_iso(last.time, s.timezone)}}


def _typed_back(s) -> dict[str, Any]:
    """The stored ``-p`` texts as typed values (``env:NAME`` and unreadable ones as given)."""
    from ..runner.parameters import convert_text, read_notebook_parameters
    from ..schedules.manage import env_reference

    try:
        _, declared = read_notebook_parameters(s.notebook)
    except Exception:
        declared = None
    out = {}
    for name, text in s.parameters:
        param = (declared or {}).get(name)
        try:
            out[name] = text if param is None or env_reference(text) else jsonable(convert_text(param, text))
        except Exception:
            out[name] = text
    return out
