"""The peewee_db marker's arguments, bound to its signature as pytest-django binds django_db's."""

from __future__ import annotations

import pytest

from peewee_async_testing.markers import marker_options, requested_isolation


def marked(pytester: pytest.Pytester, arguments: str) -> pytest.Item:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    return pytester.getitem(f"import pytest\n\n@pytest.mark.peewee_db({arguments})\ndef test_func():\n    pass\n")


def test_isolation_may_be_given_by_position(pytester: pytest.Pytester) -> None:
    item = marked(pytester, "'clear', reset_sequences=True")
    assert marker_options(item) == {"isolation": "clear", "reset_sequences": True}
    assert requested_isolation(item) == "clear"


def test_only_the_options_given_are_returned(pytester: pytest.Pytester) -> None:
    assert marker_options(marked(pytester, "autosavepoint=True")) == {"autosavepoint": True}
    assert requested_isolation(marked(pytester, "autosavepoint=True")) is None


def test_a_misplaced_argument_fails_the_test_naming_the_signature(pytester: pytest.Pytester) -> None:
    item = marked(pytester, "'clear', True")
    with pytest.raises(pytest.fail.Exception, match=r"too many positional arguments; it takes peewee_db\(isolation="):
        marker_options(item)
    assert requested_isolation(item) is None  # collection leaves the mistake for the test to report
