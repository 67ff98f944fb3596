"""Deterministic demo data: users, posts, comments and tags, loaded with COPY.

``_rows`` draws the rows (the same ``seed`` always gives the same rows: timestamps are
anchored to ``ANCHOR``, not to "now"); ``_seed`` loads them (``seed_demo``) and puts a
demo database back as it was (``reset_demo``), each in one transaction.
"""

from toolkit.demo._rows import ANCHOR, SPAN
from toolkit.demo._seed import DemoCounts, reset_demo, seed_demo

__all__ = ["ANCHOR", "SPAN", "DemoCounts", "reset_demo", "seed_demo"]
