"""toolkit.config: settings from the environment, URL normalisation, masking, addresses."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

import pytest
from sqlalchemy.engine import URL, make_url

import toolkit as tk
from toolkit.config import Settings, mask_url, normalize_url, server_address
from toolkit.database import Database
from toolkit.errors import ConfigurationError

PASSWORD = "hunter2"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No toolkit variable set (the suite itself exports TOOLKIT_DATABASE_URL)."""
    for name in ("TOOLKIT_DATABASE_URL", "DATABASE_URL", "TOOLKIT_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# Settings.from_env ------------------------------------------------------------------


def test_without_configuration_the_embedded_server_is_used(clean_env: pytest.MonkeyPatch) -> None:
    settings = Settings.from_env()

    assert settings.database_url is None
    assert settings.url_source == "embedded server"
    assert settings.data_dir is None


def test_toolkit_database_url_wins_over_database_url(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("TOOLKIT_DATABASE_URL", "postgresql://toolkit@a/db")
    clean_env.setenv("DATABASE_URL", "postgresql://generic@b/db")

    settings = Settings.from_env()

    assert settings.database_url == "postgresql://toolkit@a/db"
    assert settings.url_source == "TOOLKIT_DATABASE_URL"


def test_database_url_is_used_when_toolkit_database_url_is_unset(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("DATABASE_URL", "postgresql://generic@b/db")

    settings = Settings.from_env()

    assert settings.database_url == "postgresql://generic@b/db"
    assert settings.url_source == "DATABASE_URL"


@pytest.mark.parametrize("blank", ["", "   ", "\t\n"])
def test_blank_url_variables_are_ignored(clean_env: pytest.MonkeyPatch, blank: str) -> None:
    clean_env.setenv("TOOLKIT_DATABASE_URL", blank)
    clean_env.setenv("DATABASE_URL", blank)

    assert Settings.from_env().database_url is None


def test_blank_toolkit_database_url_falls_through_to_database_url(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("TOOLKIT_DATABASE_URL", "  ")
    clean_env.setenv("DATABASE_URL", "postgresql://generic@b/db")

    settings = Settings.from_env()

    assert settings.database_url == "postgresql://generic@b/db"
    assert settings.url_source == "DATABASE_URL"


def test_surrounding_whitespace_is_stripped_from_the_url(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("TOOLKIT_DATABASE_URL", "  postgresql://toolkit@a/db\n")

    assert Settings.from_env().database_url == "postgresql://toolkit@a/db"


def test_toolkit_data_dir_is_read_and_user_expanded(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("TOOLKIT_DATA_DIR", str(tmp_path / "pg"))
    assert Settings.from_env().data_dir == tmp_path / "pg"

    clean_env.setenv("HOME", str(tmp_path))
    clean_env.setenv("TOOLKIT_DATA_DIR", "~/elsewhere")
    assert Settings.from_env().data_dir == tmp_path / "elsewhere"


def test_blank_toolkit_data_dir_means_the_default(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("TOOLKIT_DATA_DIR", "  ")

    assert Settings.from_env().data_dir is None


def test_settings_are_read_at_call_time_not_import_time(clean_env: pytest.MonkeyPatch) -> None:
    assert Settings.from_env().database_url is None

    clean_env.setenv("TOOLKIT_DATABASE_URL", "postgresql://later@a/db")

    assert Settings.from_env().database_url == "postgresql://later@a/db"


def test_settings_say_whether_pgpassword_is_set(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.delenv("PGPASSWORD", raising=False)
    assert Settings.from_env().password_in_environment is False

    clean_env.setenv("PGPASSWORD", PASSWORD)
    assert Settings.from_env().password_in_environment is True


def test_the_settings_repr_masks_the_password_and_names_the_source(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("TOOLKIT_DATABASE_URL", f"postgresql://me:{PASSWORD}@a/db")
    clean_env.setenv("TOOLKIT_DATA_DIR", str(tmp_path))

    shown = repr(Settings.from_env())

    assert PASSWORD not in shown
    assert "***" in shown
    assert "TOOLKIT_DATABASE_URL" in shown
    assert str(tmp_path) in shown


# normalize_url -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    [
        "postgresql",
        "postgres",
        "postgresql+psycopg",
        "postgresql+psycopg2",
        "postgresql+pg8000",
        "postgresql+asyncpg",
    ],
)
def test_normalize_url_points_every_postgres_spelling_at_asyncpg(spelling: str) -> None:
    url = normalize_url(f"{spelling}://alice:{PASSWORD}@db.example.com:5433/app?sslmode=require")

    assert url.drivername == "postgresql+asyncpg"
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "alice",
        PASSWORD,
        "db.example.com",
        5433,
        "app",
    )
    assert url.query == {"ssl": "require"}  # libpq's sslmode, as asyncpg spells it


def test_normalize_url_accepts_an_sqlalchemy_url_object() -> None:
    url = normalize_url(make_url("postgresql://alice@/app?host=/var/run/postgresql"))

    assert url.drivername == "postgresql+asyncpg"
    assert url.query["host"] == "/var/run/postgresql"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///demo.db",
        f"mysql://alice:{PASSWORD}@db.example.com/app",
        f"mysql+aiomysql://alice:{PASSWORD}@db.example.com/app",
        f"mssql+pyodbc://alice:{PASSWORD}@db.example.com/app",
    ],
)
def test_normalize_url_rejects_other_databases_without_showing_the_password(url: str) -> None:
    with pytest.raises(ConfigurationError, match="PostgreSQL only") as caught:
        normalize_url(url, source="TOOLKIT_DATABASE_URL")

    message = str(caught.value)
    assert PASSWORD not in message
    assert "TOOLKIT_DATABASE_URL" in message  # says where the bad URL came from


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "",
        f" postgresql://alice:{PASSWORD}@db.example.com/app",
        f"postgresql//alice:{PASSWORD}@db.example.com/app",  # no colon
        f"postgresql:/alice:{PASSWORD}@db.example.com/app",  # one slash
        f"alice:{PASSWORD}@db.example.com/app",  # no scheme
        f"postgresql://alice:{PASSWORD}@db.example.com:notaport/app",  # port not a number
        "postgresql://alice:p@ss:w0rd@db.example.com/app",  # '@' in the password unescaped
    ],
)
def test_normalize_url_rejects_malformed_strings_without_showing_the_password(url: str) -> None:
    with pytest.raises(ConfigurationError, match="malformed database URL") as caught:
        normalize_url(url)

    message = str(caught.value)
    assert PASSWORD not in message
    assert "p@ss" not in message
    assert "w0rd" not in message
    assert "postgresql://user:password@host:port/database" in message  # shows the shape


# mask_url ------------------------------------------------------------------------------


def test_mask_url_hides_the_password_and_keeps_user_host_port_and_database() -> None:
    shown = mask_url(f"postgresql://alice:{PASSWORD}@db.example.com:5433/app")

    assert PASSWORD not in shown
    assert "alice" in shown
    assert "db.example.com:5433" in shown
    assert shown.endswith("/app")
    assert "***" in shown


def test_mask_url_accepts_an_sqlalchemy_url_object() -> None:
    shown = mask_url(make_url(f"postgresql+asyncpg://alice:{PASSWORD}@db.example.com/app"))

    assert PASSWORD not in shown
    assert "alice" in shown
    assert "db.example.com" in shown


@pytest.mark.parametrize("key", ["password", "sslpassword", "token", "PassWord", "api_key"])
def test_mask_url_hides_secret_query_parameters(key: str) -> None:
    secret = "s3cr3t-value"
    shown = mask_url(f"postgresql://alice@db.example.com/app?sslmode=require&{key}={secret}")

    assert secret not in shown
    assert "alice" in shown
    assert "db.example.com" in shown
    assert "sslmode=require" in shown  # harmless parameters stay readable


def test_mask_url_hides_every_secret_at_once() -> None:
    shown = mask_url(
        f"postgresql://alice:{PASSWORD}@db.example.com/app"
        "?password=first-secret&sslpassword=second-secret&token=third-secret"
    )

    for secret in (PASSWORD, "first-secret", "second-secret", "third-secret"):
        assert secret not in shown
    assert "alice" in shown
    assert "db.example.com" in shown


def test_mask_url_keeps_a_unix_socket_host_readable() -> None:
    shown = mask_url("postgresql://alice@/app?host=/var/run/postgresql&password=hunter3")

    assert "hunter3" not in shown
    assert "host=/var/run/postgresql" in unquote(shown)
    assert "alice" in shown


def test_mask_url_leaves_a_url_without_secrets_unchanged() -> None:
    assert mask_url("postgresql://alice@db.example.com:5433/app") == (
        "postgresql://alice@db.example.com:5433/app"
    )


@pytest.mark.parametrize(
    "url",
    [
        f" postgresql://alice:{PASSWORD}@db.example.com/app",
        f"postgresql//alice:{PASSWORD}@db.example.com/app",
        "postgresql://alice:p@ss:w0rd@db.example.com/app",
    ],
)
def test_mask_url_hides_the_credentials_of_a_string_that_does_not_parse(url: str) -> None:
    shown = mask_url(url)

    assert PASSWORD not in shown
    assert "w0rd" not in shown
    assert "db.example.com" in shown


# server_address --------------------------------------------------------------------------


def test_server_address_gives_host_and_port() -> None:
    where = server_address(
        make_url(f"postgresql+asyncpg://alice:{PASSWORD}@db.example.com:5433/app")
    )

    assert where.startswith("db.example.com:5433")
    assert "app" in where
    assert PASSWORD not in where
    assert "alice" not in where


def test_server_address_defaults_to_localhost_and_5432() -> None:
    assert server_address(make_url("postgresql+asyncpg://alice@/app")).startswith("localhost:5432")
    assert server_address(make_url("postgresql+asyncpg://alice@db/app")).startswith("db:5432")


def test_server_address_names_the_socket_directory_of_a_unix_socket_url() -> None:
    where = server_address(make_url("postgresql+asyncpg://alice@/app?host=/var/run/postgresql"))

    assert where.startswith("socket /var/run/postgresql")
    assert "app" in where


def test_server_address_decodes_a_percent_encoded_socket_directory() -> None:
    url = make_url("postgresql+asyncpg://postgres@/toolkit?host=%2Fhome%2Fana%2Fpg%20data")

    assert server_address(url).startswith("socket /home/ana/pg data")


def test_server_address_uses_the_first_of_several_hosts() -> None:
    url = make_url("postgresql+asyncpg://alice@/app?host=/run/a&host=/run/b")

    assert server_address(url).startswith("socket /run/a")


def test_server_address_brackets_an_ipv6_host() -> None:
    where = server_address(make_url("postgresql+asyncpg://alice@[::1]:5433/app"))

    assert where.startswith("[::1]:5433")


# Incomplete and ambiguous URLs -------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "lacking"),
    [
        ("postgresql://", "no host and no database"),
        ("postgresql://alice@db.example.com", "no database"),
        ("postgresql://alice@/app", "no host"),
        (f"postgres://alice:{PASSWORD}@:5432", "no host and no database"),
    ],
)
def test_an_incomplete_url_is_refused_with_the_fields_it_lacks(url: str, lacking: str) -> None:
    """libpq would fill them in (local socket, the OS user's database) and `toolkit migrate`
    would create its tables in that unrelated database."""
    with pytest.raises(ConfigurationError, match=f"has {lacking} - write") as caught:
        normalize_url(url, source="TOOLKIT_DATABASE_URL")

    assert PASSWORD not in str(caught.value)


def test_a_socket_url_names_its_host_in_the_query() -> None:
    url = normalize_url("postgresql://alice@/app?host=/var/run/postgresql")

    assert (url.host, url.query["host"], url.database) == (None, "/var/run/postgresql", "app")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:S3cret@PW@127.0.0.1:5499/db",  # parses: host would be 'PW@127.0.0.1'
        "this is not a url S3cretPW",
        "postgresql://u:S3cretPW@db.example.com:54x2/app",
    ],
)
def test_no_part_of_a_malformed_url_is_shown_and_the_fix_is_named(url: str) -> None:
    with pytest.raises(ConfigurationError, match="malformed database URL") as caught:
        normalize_url(url, source="TOOLKIT_DATABASE_URL")

    message = str(caught.value)
    for part in ("S3cret", "PW", "127.0.0.1", "db.example.com", "this is"):
        assert part not in message
    assert "percent-encoded (@ as %40" in message


# Query parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["disable", "prefer"])
async def test_a_libpq_sslmode_in_the_url_connects(database_url: URL, mode: str) -> None:
    """URLs copied from psql or a cloud console carry ?sslmode=...; asyncpg calls it ssl
    (before: "connect() got an unexpected keyword argument 'sslmode'")."""
    url = database_url.update_query_dict({"sslmode": mode})
    async with Database(url.render_as_string(hide_password=False), pool_size=1) as db:
        frame = await tk.df("select 1 as one", database=db)

    assert frame["one"].tolist() == [1]


@pytest.mark.parametrize("key", ["sslrootcert", "connect_timeout", "options"])
def test_a_query_parameter_asyncpg_does_not_take_is_refused_by_name(key: str) -> None:
    with pytest.raises(ConfigurationError, match=f"does not take: '{key}' - it takes ") as caught:
        normalize_url(f"postgresql://alice:{PASSWORD}@db.example.com/app?{key}=x")

    assert PASSWORD not in str(caught.value)
