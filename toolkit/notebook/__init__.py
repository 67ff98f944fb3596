"""Notebook presentation: the ``%%sql`` magic (``%load_ext toolkit``) and the HTML
display of model lists. ``tk.run`` lives in ``toolkit.runtime``."""

from toolkit.runtime import run

__all__ = ["run"]
