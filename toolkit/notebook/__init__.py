"""Notebook support: the ``tk.run`` bridge and (later) the IPython extension."""

from toolkit.notebook.bridge import run

__all__ = ["run"]
