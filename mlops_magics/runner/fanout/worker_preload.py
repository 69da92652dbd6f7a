"""What a local sweep worker needs, loaded once in the fork server the workers fork from.

Imported in each spawned worker, it would cost a second or more of CPU apiece; the fork
server does it once, started first, while the sweep checks its grid. It also builds what
each worker's first job would otherwise build: the HTML templates, CSS selectors and code
highlighter of the notebook's HTML rendering, and nbformat's schema validator.
"""

from .fast_imports import skip_iri_grammar

skip_iri_grammar()

import distributed  # noqa: E402,F401
import jupyter_client.manager  # noqa: E402,F401
import nbformat  # noqa: E402
import papermill  # noqa: E402,F401

from .. import recorder  # noqa: E402
from . import dask_points  # noqa: E402,F401


def _warm() -> None:
    v4 = nbformat.v4
    nb = v4.new_notebook(cells=[
        v4.new_markdown_cell("# a job"),
        v4.new_code_cell("x = 1\nprint(x)", execution_count=1, outputs=[
            v4.new_output("stream", text="1\n"),
            v4.new_output("execute_result", {"text/plain": "1", "text/html": "<b>1</b>"}, execution_count=1)]),
    ])
    nb.metadata.update(kernelspec={"name": "python3", "display_name": "Python 3", "language": "python"},
                       language_info={"name": "python", "pygments_lexer": "ipython3",
                                      "codemirror_mode": {"name": "ipython", "version": 3}})
    nbformat.validate(nb)
    recorder._html_exporter().from_notebook_node(nb)


try:
    _warm()
except Exception:  # only a head start: each job builds what it needs anyway
    pass
