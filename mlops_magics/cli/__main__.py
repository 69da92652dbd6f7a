"""``python -m mlops_magics.cli``: the same as the ``mlops-magics`` command."""

from . import main

main()
