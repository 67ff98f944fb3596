"""Notebook presentation, loaded by ``%load_ext toolkit``: the ``%%sql`` cell magic
(``_magic``) and the display (``_display``: model lists as HTML tables, a lazy load shown
as one line naming the fix). ``tk.run`` lives in ``toolkit.runtime``."""

from toolkit.notebook._magic import load_ipython_extension, unload_ipython_extension
from toolkit.runtime import run

__all__ = ["load_ipython_extension", "run", "unload_ipython_extension"]
