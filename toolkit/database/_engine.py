"""One engine of a Database, assembled: the driver's connect arguments from its options,
and the collaborators that listen on it - connecting (``_connecting``), the pool's policy
(``_pool``) and the fault mapping (``_faults``) - sharing the engine's record (``_state``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from toolkit import config
from toolkit.database._connecting import set_per_connection, translate_connect_errors
from toolkit.database._faults import translate_faults
from toolkit.database._pool import ExplainedPool, end_writes_when_lost, ping_on_checkout
from toolkit.database._state import LearnedFacts, new_state

if TYPE_CHECKING:  # annotations only: the modules above import this one
    from toolkit.database._facade import Database

__all__ = ["build_engine"]


def build_engine(database: Database, url: URL, source: str, learned: LearnedFacts) -> AsyncEngine:
    """A new engine for ``database`` at ``url`` (named ``source`` in connect errors); what
    its connections learn about the server goes to ``learned``, too."""
    server_settings = {"application_name": "toolkit"}
    if database.read_only:
        server_settings["default_transaction_read_only"] = "on"
    if database.statement_timeout is not None:
        server_settings["statement_timeout"] = str(int(database.statement_timeout * 1000))
    connect_args: dict[str, Any] = {
        "server_settings": server_settings,
        "timeout": database.connect_timeout,
    }
    if database.command_timeout is not None:
        connect_args["command_timeout"] = database.command_timeout
    engine = create_async_engine(
        url,
        echo=database.echo,
        poolclass=ExplainedPool,
        pool_size=database.pool_size,
        max_overflow=database.max_overflow,
        pool_timeout=database.pool_timeout,
        connect_args=connect_args,
    )
    where = config.server_address(url)
    state = new_state(engine.sync_engine, database, learned)
    translate_connect_errors(engine, where, source, state)
    set_per_connection(engine, state)
    event.listen(engine.sync_engine, "connect", end_writes_when_lost)
    ping_on_checkout(engine, state)
    translate_faults(engine, where, database)
    return engine
