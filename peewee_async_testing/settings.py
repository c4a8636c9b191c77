"""The throwaway server's settings, as ``postgresql.conf`` lines: from the ini file, the environment or an argument
(the ini file's are a MariaDB server's options alike).

Checked before anything starts: a line of another shape, or a setting that says where the server listens or
keeps its files (the server chooses those itself), is a :class:`ConfigurationError` naming where it was found.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

from .exceptions import ConfigurationError

SETTINGS_ENV = "PEEWEE_ASYNC_TESTING_PG_SETTINGS"  # name = value settings, separated by ; or newlines

_SETTING_NAME = "[A-Za-z0-9_.]+"
# A value: in single quotes (a '' inside stands for '), or bare up to a # comment, as in postgresql.conf.
_SETTING_LINE = re.compile(rf"\s*({_SETTING_NAME})\s*=\s*('(?:[^']|'')*'|[^#'\s][^#]*?)\s*(?:#.*)?")
#: Settings that say where the server listens and keeps its files: the server is started with its own.
_WIRING = frozenset(
    {"port", "listen_addresses", "unix_socket_directories", "data_directory", "config_file", "hba_file", "ident_file"}
)


def parse_settings(lines: Iterable[str], origin: str) -> dict[str, str]:
    """Read PostgreSQL settings from ``name = value`` lines as in postgresql.conf: blank lines and ``#``
    comments are skipped, and a value in single quotes is unquoted (``search_path = '"$user", public'``).

    :raises ConfigurationError: naming the first line of another shape, and ``origin``, where it was found.
    """
    settings = {}
    for line in (line for line in lines if line.strip() and not line.lstrip().startswith("#")):
        match = _SETTING_LINE.fullmatch(line)
        if match is None:
            raise ConfigurationError(
                f"{origin}: {line.strip()!r} is not a setting of the form `name = value` (a name of letters, "
                "digits, _ and ., as in postgresql.conf or my.cnf), such as `work_mem = 64MB`."
            )
        name, value = match.groups()
        if len(value) > 1 and value[0] == value[-1] == "'":
            value = value[1:-1].replace("''", "'")
        settings[name] = value
    return _checked_settings(settings, origin)


def environment_settings() -> dict[str, str]:
    """The settings of ``$PEEWEE_ASYNC_TESTING_PG_SETTINGS``: ``name = value`` lines separated by ``;`` or newlines."""
    return parse_settings(re.split(r"[;\n]", os.environ.get(SETTINGS_ENV, "")), f"${SETTINGS_ENV}")


def _checked_settings(settings: Mapping[str, str | int | float], origin: str = "settings=") -> dict[str, str]:
    for name in settings:
        if not re.fullmatch(_SETTING_NAME, name):
            raise ConfigurationError(
                f"{origin} names {name!r}, which is not a PostgreSQL setting name (letters, digits, _ and ., "
                'as in postgresql.conf): give them as {"work_mem": "64MB"}.'
            )
        if name.lower() in _WIRING:
            raise ConfigurationError(
                f"{origin} sets {name}, but the throwaway server chooses where it listens and keeps its files "
                "itself (a free port on 127.0.0.1, a folder of its own): leave it out, and read server.port, "
                "server.host or server.dsn instead."
            )
    return {name: str(value) for name, value in settings.items()}
