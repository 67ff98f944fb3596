"""Settings from the environment, URL normalisation and masking.

Nothing here runs at import: ``Settings.from_env()`` reads the environment when called,
so tests and notebooks can change it between calls.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from toolkit.errors import ConfigurationError

__all__ = ["Settings", "mask_url", "normalize_url", "server_address"]

ASYNC_DRIVER = "postgresql+asyncpg"
# Spellings people paste from other tools; all mean "PostgreSQL", served here by asyncpg.
_POSTGRES_SPELLINGS = {
    "postgres",
    "postgresql",
    "postgresql+asyncpg",
    "postgresql+psycopg",
    "postgresql+psycopg2",
    "postgresql+pg8000",
}
# Query parameters that carry secrets (libpq's names plus common token styles).
_SECRET_KEYS = ("password", "passwd", "secret", "token", "sslkey", "apikey", "api_key")
# ``key=value`` of a secret-bearing query parameter, in text that did not parse as a URL.
_SECRET_VALUE = re.compile(
    r"((?:^|[?&;\s])[^=&?;\s]*(?:" + "|".join(_SECRET_KEYS) + r")[^=&?;\s]*=)[^&;#\s]*",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Settings:
    """The toolkit's configuration, read from ``TOOLKIT_*`` variables.

    ``database_url`` is None when the embedded server should be used.
    """

    database_url: str | None
    url_source: str
    data_dir: Path | None
    password_in_environment: bool = False
    """``PGPASSWORD`` is set: asyncpg sends it when the URL has no password."""

    def __repr__(self) -> str:  # the URL may hold a password: shown masked
        url = None if self.database_url is None else mask_url(self.database_url)
        return (
            f"Settings(database_url={url!r}, url_source={self.url_source!r}, "
            f"data_dir={self.data_dir!r}, "
            f"password_in_environment={self.password_in_environment!r})"
        )

    @classmethod
    def from_env(cls) -> Settings:
        """The settings as the environment gives them now (the one place it is read)."""
        password = bool(os.environ.get("PGPASSWORD"))
        for name in ("TOOLKIT_DATABASE_URL", "DATABASE_URL"):
            value = os.environ.get(name, "").strip()
            if value:
                return cls(value, name, _data_dir(), password)
        return cls(None, "embedded server", _data_dir(), password)


def _data_dir() -> Path | None:
    value = os.environ.get("TOOLKIT_DATA_DIR", "").strip()
    return Path(value).expanduser() if value else None


def normalize_url(url: str | URL, *, source: str = "the URL you passed") -> URL:
    """Parse ``url`` and point it at asyncpg.

    ``postgresql://`` (and ``postgres://``, ``+psycopg``...) become ``postgresql+asyncpg://``;
    anything that is not PostgreSQL, or does not parse, raises ConfigurationError.
    """
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ConfigurationError(_malformed(source)) from None
    if "@" in (parsed.host or ""):  # 'user:p@ss@host': the password's tail would be the host
        raise ConfigurationError(_malformed(source, "it has more than one '@'"))
    if parsed.drivername not in _POSTGRES_SPELLINGS:
        raise ConfigurationError(
            f"unsupported database URL from {source}: {mask_url(parsed)!r} - the toolkit "
            "speaks PostgreSQL only; use postgresql://user:password@host:port/database"
        )
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise ConfigurationError(f"port {parsed.port} out of range in the URL from {source}")
    lacking = [
        field
        for field, value in (
            ("host", parsed.host or parsed.query.get("host")),
            ("database", parsed.database),
        )
        if not value
    ]
    if lacking:
        # libpq would fill them in (the local socket, a database named after the OS user),
        # and the toolkit would then create its tables in whatever database that is.
        raise ConfigurationError(
            f"the database URL from {source} has no {' and no '.join(lacking)} - write "
            "postgresql://user:password@host:port/database (for a unix socket: "
            "postgresql://user@/database?host=/var/run/postgresql)"
        )
    return _driver_query(_password_from_query(parsed), source).set(drivername=ASYNC_DRIVER)


_QUERY_KEYS = frozenset(
    {
        "host",
        "port",
        "passfile",
        "service",
        "servicefile",
        "ssl",
        "target_session_attrs",
        "krbsrvname",
        "gsslib",
        "prepared_statement_cache_size",
    }
)
"""URL query parameters asyncpg (or SQLAlchemy's asyncpg dialect) takes as text."""
_LIBPQ_KEYS = {"sslmode": "ssl"}
"""libpq's spellings of them (URLs copied from psql or a cloud console carry these)."""


def _driver_query(url: URL, source: str) -> URL:
    """The URL's query in asyncpg's terms: ``sslmode`` becomes ``ssl`` (asyncpg takes
    libpq's mode names there); any other parameter is refused now, as a connect would
    fail later with "connect() got an unexpected keyword argument"."""
    for libpq, name in _LIBPQ_KEYS.items():
        if libpq in url.query and name not in url.query:
            url = url.difference_update_query([libpq]).update_query_dict({name: url.query[libpq]})
    unknown = sorted(set(url.query) - _QUERY_KEYS - set(_LIBPQ_KEYS))
    if unknown:
        shown = ", ".join(repr(k) for k in unknown)
        raise ConfigurationError(
            f"the database URL from {source} has query parameters the asyncpg driver does "
            f"not take: {shown} - it takes {', '.join(sorted(_QUERY_KEYS | set(_LIBPQ_KEYS)))}; "
            "time limits are tk.connect(connect_timeout=..., statement_timeout=...) options"
        )
    return url


def _malformed(source: str, why: str = "it does not parse") -> str:
    """The message for a URL that cannot be trusted to show: no part of it is printed, since
    any part may be a password typed with a special character."""
    return (
        f"malformed database URL from {source} ({why}; not shown, as it may hold a password) "
        "- expected postgresql://user:password@host:port/database; a password with @ : / ? # "
        "or % must be percent-encoded (@ as %40: urllib.parse.quote(password, safe=''))"
    )


def _password_from_query(url: URL) -> URL:
    """``?password=...`` (libpq's spelling) moved into the URL's password field.

    asyncpg takes it either way, but SQLAlchemy hides only the password field when it
    shows a URL (an engine's repr, ``str(engine.url)``): a password left in the query
    would be printed. As in libpq, the query's value wins over the one before the host.
    """
    value = url.query.get("password")
    if value is None:
        return url
    password = value[-1] if isinstance(value, tuple) else value
    return url.difference_update_query(["password"]).set(password=password)


def mask_url(url: str | URL) -> str:
    """Render a URL for people: password and secret-bearing query values replaced by ***."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except (ArgumentError, ValueError):
        return _mask_text(str(url))
    masked_query = {
        key: ("***" if _is_secret(key) else value) for key, value in parsed.query.items()
    }
    return parsed.set(query=masked_query).render_as_string(hide_password=True)


def _is_secret(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in _SECRET_KEYS)


def _mask_text(text: str) -> str:
    """Mask the credentials of a string that did not parse as a URL.

    Whatever stands before the last ``@`` may hold a password (the URL is malformed, so
    its parts cannot be trusted): keep only the scheme, when there is one, and the host.
    """
    text = _SECRET_VALUE.sub(r"\1***", text)
    if "@" not in text:
        return text
    host = text.rpartition("@")[2]
    scheme, sep, _ = text.partition("://")
    return f"{scheme}://***@{host}" if sep and "@" not in scheme else f"***@{host}"


def server_address(url: URL) -> str:
    """Where a URL points, for messages: ``host:port``, or ``socket /dir`` (no secrets)."""
    host = url.query.get("host")
    if isinstance(host, tuple):
        host = host[0]
    if host is None:
        host = url.host
    if host and host.startswith("/"):
        return f"socket {unquote(host)} (database {url.database})"
    host = host or "localhost"
    if ":" in host:  # IPv6: brackets keep the port apart from the address
        host = f"[{host}]"
    return f"{host}:{url.port or 5432} (database {url.database})"
