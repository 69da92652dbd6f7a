"""Models: ``mm.log_model`` (a fitted scikit-learn model in the run) and ``mm.promote`` (registry aliases)."""
