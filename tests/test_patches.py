"""The one patch discipline: every patch undone exactly, in any order."""

from __future__ import annotations

from typing import Any

import pytest

from peewee_async_testing.patches import set_attribute, set_attributes, snapshot


class Thing:
    kind = "class"

    def __init__(self) -> None:
        self.name = "original"
        self._hidden = "behind a property"

    @property
    def shown(self) -> str:
        return self._hidden

    @shown.setter
    def shown(self, value: str) -> None:
        self._hidden = value


def test_an_undo_puts_back_the_instance_attribute() -> None:
    thing = Thing()
    undo = set_attribute(thing, "name", "patched")
    assert thing.name == "patched"
    undo()
    assert vars(thing)["name"] == "original"


def test_an_attribute_of_the_class_shows_again() -> None:
    thing = Thing()
    undo = set_attribute(thing, "kind", "patched")
    undo()
    assert "kind" not in vars(thing)
    assert thing.kind == "class"


def test_a_property_is_put_back_through_its_setter() -> None:
    thing = Thing()
    undo = set_attribute(thing, "shown", "patched")
    assert thing.shown == "patched"
    undo()
    assert thing.shown == "behind a property"
    assert "shown" not in vars(thing)


@pytest.mark.parametrize("order", [(0, 1), (1, 0)], ids=["newest-first", "oldest-first"])
def test_overlapping_patches_undo_in_any_order(order: tuple[int, int]) -> None:
    thing = Thing()
    undos = [set_attribute(thing, "name", "first"), set_attribute(thing, "name", "second")]
    undos[order[0]]()
    assert thing.name == ("first", "second")[order[1]]  # the patch still in place shows
    undos[order[1]]()
    assert thing.name == "original"


def test_an_undo_twice_undoes_once() -> None:
    thing = Thing()
    first = set_attribute(thing, "name", "first")
    second = set_attribute(thing, "name", "second")
    second()
    second()
    assert thing.name == "first"
    first()
    assert thing.name == "original"


def test_a_snapshot_puts_back_the_identical_objects_and_drops_the_new_ones() -> None:
    thing: Any = Thing()
    settings = thing.settings = {"port": 1}
    undo = snapshot(thing)
    thing.settings = {"port": 2}
    settings["added"] = True  # changes inside a kept object are not undone: it is the same object
    thing.added = "new"
    undo()
    assert thing.settings is settings
    assert not hasattr(thing, "added")


class Equal:
    """A value equal to everything, as peewee's fields and expressions are (their == builds an expression)."""

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__


def test_patches_are_told_apart_by_identity_not_equality() -> None:
    thing: Any = Thing()
    original = thing.name = Equal()
    first, second = set_attribute(thing, "name", Equal()), set_attribute(thing, "name", Equal())
    first()
    second()
    assert thing.name is original


def test_several_attributes_are_set_and_undone_together() -> None:
    thing: Any = Thing()
    undo = set_attributes(thing, {"name": "patched", "shown": "shown", "kind": "instance"})
    assert (thing.name, thing.shown, thing.kind) == ("patched", "shown", "instance")
    undo()
    assert (vars(thing)["name"], thing.shown, "kind" in vars(thing)) == ("original", "behind a property", False)


class ReadOnly(Thing):
    @property
    def fixed(self) -> str:
        return "fixed"


def test_an_attribute_that_cannot_be_set_undoes_those_set_before_it() -> None:
    thing: Any = ReadOnly()
    with pytest.raises(AttributeError):
        set_attributes(thing, {"name": "patched", "fixed": "no"})
    assert vars(thing)["name"] == "original"
    assert set_attribute(thing, "name", "again") is not None  # nothing half-done is left in the way
    assert thing.name == "again"


def test_a_class_attribute_inherited_from_a_base_shows_again() -> None:
    class Derived(Thing):
        pass

    undo = set_attribute(Derived, "kind", "patched")
    assert Derived.kind == "patched"
    undo()
    assert "kind" not in vars(Derived)
    assert Derived.kind == "class"


def test_a_slot_is_put_back() -> None:
    class Slotted:
        __slots__ = ("value",)

        def __init__(self) -> None:
            self.value = "original"

    slotted = Slotted()
    undo = set_attribute(slotted, "value", "patched")
    undo()
    assert slotted.value == "original"
