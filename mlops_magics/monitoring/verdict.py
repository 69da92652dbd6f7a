"""The dataset verdict rule, one place for every caller: ``DriftReport``, ``DriftWidget``,
``%drift``, ``mlops-magics drift`` and the demo all say "dataset drift yes" under the same
rule. The share itself is ``naming.DRIFT_SHARE`` (import-light, so the CLI's option reads it).
"""

from __future__ import annotations

from ..naming import DRIFT_SHARE as DEFAULT_SHARE  # at least this share of compared features drift

MIN_ROWS = 100  # below this many values on either side a report carries a small-sample caveat


def dataset_drifted(n_drifted: int, n_compared: int, share: float = DEFAULT_SHARE) -> bool:
    """The rule: at least ``share`` of the compared features drifted (and one was compared)."""
    return n_compared > 0 and n_drifted / n_compared >= share


def verdict(n_drifted: int, n_compared: int, share: float = DEFAULT_SHARE, n_skipped: int = 0) -> str:
    """``"3 of 4 features drifted (75%): dataset drift yes"``, the rule's share named when it is
    not the default, so two verdicts under different rules never read alike."""
    fraction = n_drifted / n_compared if n_compared else 0.0
    rule = "" if share == DEFAULT_SHARE else f" (rule: at least {share:.0%} of features)"
    text = (f"{n_drifted} of {n_compared} features drifted ({fraction:.0%}): "
            f"dataset drift {'yes' if dataset_drifted(n_drifted, n_compared, share) else 'no'}{rule}")
    return text + (f"; {n_skipped} not compared" if n_skipped else "")
