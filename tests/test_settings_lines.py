"""How settings lines are read: postgresql.conf's shape, comments, and the settings the server keeps for itself."""

from __future__ import annotations

import pytest

from peewee_async_testing import ConfigurationError, PostgresServer
from peewee_async_testing.initdb import _pick_locale
from peewee_async_testing.server import parse_settings


def test_a_comment_after_a_value_is_left_out_as_in_postgresql_conf() -> None:
    lines = ["work_mem = 64MB  # more memory", "search_path = '\"$user\", public' # quoted", "# a whole comment"]
    assert parse_settings(lines, "here") == {"work_mem": "64MB", "search_path": '"$user", public'}


def test_a_hash_inside_quotes_is_part_of_the_value() -> None:
    assert parse_settings(["application_name = 'a#b'"], "here") == {"application_name": "a#b"}


@pytest.mark.parametrize("name", ["port", "listen_addresses", "unix_socket_directories", "data_directory"])
def test_where_the_server_listens_and_keeps_its_files_is_its_own(name: str) -> None:
    with pytest.raises(ConfigurationError, match=f"sets {name}, but the throwaway server chooses where it listens"):
        parse_settings([f"{name} = 5999"], "peewee_async_server_settings")
    with pytest.raises(ConfigurationError, match=f"settings= sets {name}"):
        PostgresServer(settings={name: "5999"})


def test_without_a_preferred_locale_english_then_the_first_utf8_one_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("LC_ALL", "LC_CTYPE", "LANG"):
        monkeypatch.delenv(variable, raising=False)
    assert _pick_locale(["C", "POSIX", "aa_DJ.utf8", "de_DE.utf8", "en_GB.utf8"]) == "en_GB.utf8"
    assert _pick_locale(["C", "POSIX", "aa_DJ.utf8", "de_DE.utf8"]) == "aa_DJ.utf8"
    monkeypatch.setenv("LANG", "de_DE.UTF-8")
    assert _pick_locale(["C", "aa_DJ.utf8", "de_DE.utf8", "en_GB.utf8"]) == "de_DE.UTF-8"  # the environment's
