# Installed by mlops-magics into <env>/etc/ipython/startup/: loads the extension in
# every IPython and Jupyter kernel of this environment. Opt out with
# MLOPS_MAGICS_NO_AUTOLOAD=1. Leaves no names behind in the user namespace.
def _mlops_magics_autoload():
    import os

    if os.environ.get("MLOPS_MAGICS_NO_AUTOLOAD", "").strip() not in ("", "0", "false", "no"):
        return
    try:
        from IPython import get_ipython
    except ImportError:
        return
    ip = get_ipython()
    if ip is None:
        return
    try:
        ip.extension_manager.load_extension("mlops_magics")
    except ModuleNotFoundError:
        return  # the package was uninstalled but this file left behind
    except Exception as exc:  # never break a kernel's start-up
        import warnings

        warnings.warn(f"mlops-magics could not auto-load: {exc}", RuntimeWarning, stacklevel=1)


_mlops_magics_autoload()
del _mlops_magics_autoload
