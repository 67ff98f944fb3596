"""Progress bars: shown in notebooks by default, silent in scripts unless asked."""

from __future__ import annotations

import sys
import warnings
from typing import Any

__all__ = ["in_notebook", "progress_bar"]


def in_notebook() -> bool:
    """True inside a Jupyter kernel (not a plain IPython terminal, not a script)."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    ipython = getattr(shell, "get_ipython", lambda: None)()
    return ipython is not None and "IPKernelApp" in getattr(ipython, "config", {})


def progress_bar(total: int | None, enabled: bool, desc: str) -> Any:
    """A tqdm bar (a widget in notebooks, text on stderr elsewhere); disabled when not enabled."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tqdm.auto warns when ipywidgets is missing
        from tqdm.auto import tqdm

        return tqdm(total=total, disable=not enabled, unit="rows", desc=desc, file=sys.stderr)
