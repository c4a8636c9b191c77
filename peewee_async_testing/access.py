"""Who may use the configured database, and when: the plugin's side of the gate (:mod:`~peewee_async_testing.gate`).

The database object is loaded and gated as pytest configures; a test's phases are windows where the database
is open to it if it is isolated (or asked for ``peewee_database``); a fixture of wider scope is a window in its
set-up and its tear-down; a unittest class is isolated when it is an AioDatabaseTestCase of the configured
database; the configured models must stay bound to it.
"""

from __future__ import annotations

import importlib
import sys
import unittest
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest

from .state import CONFIGURED, CONFIGURED_MODELS, GATE

if TYPE_CHECKING:
    from .gate import Gate


def configure_database(config: pytest.Config, spec: str) -> None:
    """Import what the ini file names, and put the gate on the database object before any test module is
    collected: from now on it reaches the session's test database only. A mistake is a usage error, said once."""
    import peewee

    from . import gate
    from ._database import resolve_database
    from .exceptions import DatabaseAccessError, PeeweeAsyncTestingError

    module_name, attribute = spec.split(":")
    modules = [module_name, *config.getini("peewee_async_models")]
    for name in modules:
        try:
            with gate.refuse_all(f"importing {name!r}, named in the ini file,"):
                importlib.import_module(name)
        except DatabaseAccessError as error:
            raise pytest.UsageError(str(error)) from None
        except ImportError as error:
            message = f"peewee-async-testing cannot import {name!r}, named in the ini file: {error}"
            raise pytest.UsageError(message) from None
    configured: Any = sys.modules[module_name]
    try:
        for part in attribute.split("."):
            configured = getattr(configured, part)
        database = resolve_database(configured, purpose=f"peewee_async_database = {spec}", uninitialised=True)
    except AttributeError:
        message = f"peewee_async_database = {spec}: module {module_name!r} has no attribute {attribute!r}."
        raise pytest.UsageError(message) from None
    except PeeweeAsyncTestingError as error:
        raise pytest.UsageError(str(error)) from None
    config.stash[CONFIGURED] = configured
    config.stash[CONFIGURED_MODELS] = [
        model
        for name in modules
        for model in vars(sys.modules[name]).values()
        if isinstance(model, type) and issubclass(model, peewee.Model) and model.__module__ == name
    ]
    proxy = configured if isinstance(configured, peewee.DatabaseProxy) else None
    config.stash[GATE] = gate.Gate(database, spec, proxy)
    config.stash[GATE].install()


def is_unittest(item: pytest.Function) -> bool:
    return isinstance(item.cls, type) and issubclass(item.cls, unittest.TestCase)


#: Set on the tests that ask for ``peewee_database`` themselves (or through their fixtures).
ASKED = pytest.StashKey[bool]()


def isolated(item: pytest.Item, gate: Gate) -> bool:
    """Whether the plugin (or the test's own class, an AioDatabaseTestCase of the configured database) isolates
    ``item``, or the test asked for the database as it is, to isolate it itself (``peewee_database``)."""
    if not isinstance(item, pytest.Function):
        return False
    if item.stash.get(ASKED, False):
        return True
    if is_unittest(item):
        return _on_the_configured_database(item.cls, gate) is True
    return "in_transaction" in item.fixturenames or "clear_tables" in item.fixturenames


def _on_the_configured_database(cls: type, gate: Gate) -> bool | None:
    """For an AioDatabaseTestCase class: whether its ``database`` is the configured one; None for another class."""
    from ._database import resolve_database
    from .testcase import AioDatabaseTestCase

    if not issubclass(cls, AioDatabaseTestCase):
        return None
    return resolve_database(cls.database, purpose=cls.__name__) is gate.database


@contextmanager
def window(item: pytest.Item) -> Iterator[bool]:
    """A test's phase: the database is open to it if it is isolated (what the block is given), else refused,
    saying what to do."""
    gate = item.config.stash.get(GATE, None)
    if gate is None:
        yield False
        return
    open_to_it = isolated(item, gate)
    if open_to_it:
        reason = None
    else:
        from .gate import NOT_ISOLATED, NOT_ISOLATED_UNITTEST

        unittest_item = isinstance(item, pytest.Function) and is_unittest(item)
        reason = (NOT_ISOLATED_UNITTEST if unittest_item else NOT_ISOLATED).format(test=item.nodeid)
    with gate.refusing(reason):
        yield open_to_it


def check_test_case(cls: type, gate: Gate) -> None:
    """Fail an AioDatabaseTestCase of another database object than the configured one, before its class set-up."""
    if _on_the_configured_database(cls, gate) is False:
        pytest.fail(
            f"{cls.__name__}.database is not the configured database {gate.spec}, which the plugin points at the "
            "test database: its tests would run wherever that other object points. Set `database = ` the object "
            f"that {gate.spec} names.",
            pytrace=False,
        )


FIXTURES = __package__ + ".fixtures"  # where the plugin's own fixtures are


def unittest_set_up(fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest) -> bool:
    """Whether this is unittest's ``setUpClass``/``setUpModule``, run as a fixture, of a class that does not
    isolate itself."""
    if not fixturedef.argname.startswith("_unittest_"):
        return False
    from .testcase import AioDatabaseTestCase

    cls = request.cls
    return not (isinstance(cls, type) and issubclass(cls, AioDatabaseTestCase))


def check_bindings(config: pytest.Config) -> None:
    """Fail the test if a model of the configured modules is bound to another database object: isolation would
    wrap an object that its queries do not use."""
    gate = config.stash[GATE]
    for model in config.stash[CONFIGURED_MODELS]:
        bound = model._meta.database
        if bound is None or bound is gate.database or bound is gate.proxy:
            continue
        pytest.fail(
            f"{model.__module__}.{model.__name__} is bound to {bound!r}, not to the configured database "
            f"{gate.spec}: the test is isolated on that one, so {model.__name__}'s queries would escape it. Bind "
            "the model back (a fixture that rebinds models must undo it), or leave its module out of "
            "peewee_async_models.",
            pytrace=False,
        )
