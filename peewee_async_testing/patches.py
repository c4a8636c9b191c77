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

import weakref
from collections.abc import Callable
from typing import Any

_MISSING = object()

#: The patched attributes of each object: name -> [what was there before the first patch, patch, patch, ...].
_stacks: weakref.WeakKeyDictionary[Any, dict[str, list[Any]]] = weakref.WeakKeyDictionary()


def set_attribute(obj: Any, name: str, value: object) -> Callable[[], None]:
    """Set ``obj.name`` to ``value``; return the undo, which takes this patch out (and only this one)."""
    stacks = _stacks.setdefault(obj, {})
    if name not in stacks:
        stacks[name] = [_current(obj, name)]
    patch = [value]  # a cell of its own: found by identity, whatever the value
    stacks[name].append(patch)
    setattr(obj, name, value)

    def undo() -> None:
        stack = _stacks.get(obj, {}).get(name)
        if stack is None or not any(entry is patch for entry in stack[1:]):
            return  # undone already
        stack[1:] = [entry for entry in stack[1:] if entry is not patch]
        if len(stack) > 1:
            setattr(obj, name, stack[-1][0])
            return
        del _stacks[obj][name]
        _put_back(obj, name, stack[0])

    return undo


def snapshot(obj: Any) -> Callable[[], None]:
    """Record every instance attribute of ``obj``; return the undo, which makes them the identical objects
    again and removes the attributes added since."""
    saved = dict(vars(obj))

    def undo() -> None:
        vars(obj).clear()
        vars(obj).update(saved)

    return undo


def _current(obj: Any, name: str) -> Any:
    """What to put back: the instance attribute, or (for a property) its value, or nothing (the class's shows)."""
    if name in vars(obj):
        return vars(obj)[name]
    if hasattr(getattr(type(obj), name, None), "__set__"):
        return getattr(obj, name)
    return _MISSING


def _put_back(obj: Any, name: str, original: Any) -> None:
    if original is _MISSING:
        vars(obj).pop(name, None)
    else:
        setattr(obj, name, original)
