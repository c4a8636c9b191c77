"""Every patch the package makes: an attribute set for a while and put back exactly, whatever order patches end in.

Two kinds, each returning its undo (idempotent, so safe in any ``finally``):

- :func:`set_attribute` sets one attribute. Patches of the same attribute stack up: undoing one takes it
  out of the stack, and the attribute shows the newest patch still in place, or what was there before the
  first (an instance attribute put back, or removed so that the class's shows again). So blocks that
  overlap in time, not nested (two tasks), undo correctly whichever ends first.
- :func:`snapshot` records every attribute of an object, to be put back identically later (the database
  object that the plugin points at the test database for the session).

Example::

    undo = set_attribute(database, "aio_connection", stand_in)
    try:
        ...
    finally:
        undo()
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

_MISSING = object()


class _Patch:
    """One call's patches: its values, until undone (compared by identity)."""

    __slots__ = ("values",)

    def __init__(self, values: Mapping[str, object]) -> None:
        self.values: Mapping[str, object] | None = values


#: The patched objects, by id: (the object, held so that its id stays its own; each patched attribute's
#: stack: what was there before the first patch, then the patches in place, oldest first).
_patched: dict[int, tuple[Any, dict[str, list[Any]]]] = {}


def set_attribute(obj: Any, name: str, value: object) -> Callable[[], None]:
    """Set ``obj.name`` to ``value``; return the undo, which takes this patch out (and only this one)."""
    return set_attributes(obj, {name: value})


def set_attributes(obj: Any, values: Mapping[str, object]) -> Callable[[], None]:
    """:func:`set_attribute` for several attributes of ``obj`` at once, undone together. If one cannot be
    set, those set before it are undone and the error raised."""
    stacks = _patched.setdefault(id(obj), (obj, {}))[1]
    patch = _Patch(values)
    try:
        for name, value in values.items():
            stack = stacks.get(name)
            if stack is None:
                stack = stacks[name] = [_current(obj, name)]
            stack.append(patch)
            setattr(obj, name, value)
    except BaseException:
        _take_out(obj, stacks, patch)
        raise

    def undo() -> None:
        if patch.values is not None:  # else undone already
            _take_out(obj, stacks, patch)

    return undo


def _take_out(obj: Any, stacks: dict[str, list[Any]], patch: _Patch) -> None:
    """Take ``patch`` out of the stacks of its attributes: each shows the newest patch still in place, or what
    was there before the first. Every attribute is seen to, even after one that fails."""
    values, patch.values = patch.values, None
    assert values is not None
    failures = []
    for name in values:
        stack = stacks.get(name, [])
        # By identity, newest first (the usual case: patches end last first); stack[0] is what was there before.
        place = len(stack) - 1
        while place > 0 and stack[place] is not patch:
            place -= 1
        if place == 0:
            continue  # never got in (a setattr failed before)
        del stack[place]
        try:
            if len(stack) > 1:
                setattr(obj, name, stack[-1].values[name])
            else:
                del stacks[name]
                _put_back(obj, name, stack[0])
        except Exception as error:  # the others are put back all the same
            failures.append(error)
    if not stacks:
        _patched.pop(id(obj), None)
    if failures:
        raise failures[0]


def snapshot(obj: Any) -> Callable[[], None]:
    """Record every instance attribute of ``obj``; return the undo, which makes them the identical objects
    again and removes the attributes added since."""
    saved = dict(vars(obj))

    def undo() -> None:
        vars(obj).clear()
        vars(obj).update(saved)

    return undo


def _current(obj: Any, name: str) -> Any:
    """What to put back: the instance attribute, or (for a property or a slot) its value, or nothing (the
    class's attribute shows)."""
    own = getattr(obj, "__dict__", {})
    if name in own:
        return own[name]
    if hasattr(getattr(type(obj), name, None), "__set__"):
        return getattr(obj, name)
    return _MISSING


def _put_back(obj: Any, name: str, original: Any) -> None:
    if original is not _MISSING:
        setattr(obj, name, original)
    elif name in getattr(obj, "__dict__", {}):
        delattr(obj, name)  # (a class's own attribute too: its __dict__ is read-only)
