"""Async model factories: build and create rows of peewee-async models from defaults, states and overrides.

Example::

    class UserFactory(ModelFactory[User]):
        model = User

        @classmethod
        def defaults(cls, n: int) -> dict[str, object]:  # n: this factory's sequence, 1, 2, 3, ...
            return {"email": f"user{n}@example.test"}

        @classmethod
        def state_admin(cls) -> dict[str, object]:
            return {"is_admin": True}

    user = await UserFactory.state("admin").create(name="ada")

Values are merged in this order, each winning over the one before: :meth:`ModelFactory.defaults`, the states
in the order given, the overrides. A factory (or a :meth:`~ModelFactory.state` of one) as a value is built by
:meth:`~ModelFactory.build` and created by :meth:`~ModelFactory.create`, first; a foreign key given explicitly
(an instance or an id, by the field's name or its column's, ``author_id``) is used as it is. Any other callable
value is called with the sequence number.

Sequences: each factory counts on its own. Inside a ``TransactionTestCase(reset_sequences=True)`` block (the
plugin's ``@pytest.mark.peewee_db(reset_sequences=True)`` included) a factory counts from one past the largest
number it drew outside every such block (rows of fixtures of wider scope keep theirs, so no unique value
collides), and the block's numbers are forgotten when it ends: each such test sees the same numbers.
"""

from __future__ import annotations

import weakref
from typing import Any, Generic, TypeVar, cast

import peewee

from . import engine
from .exceptions import ConfigurationError, TransactionError

M = TypeVar("M")

#: Per reset_sequences block (its outermost engine with the option): each factory's last number drawn in it.
_block_counters: weakref.WeakKeyDictionary[Any, dict[type[Any], int]] = weakref.WeakKeyDictionary()


def _database(model: Any) -> Any:
    """The database the model is bound to (through a :class:`peewee.DatabaseProxy`, the one it points at)."""
    database = model._meta.database
    return database.obj if isinstance(database, peewee.DatabaseProxy) else database


def _reset_block(model: Any) -> Any:
    """The outermost reset_sequences block the calling task's queries on the model's database run in, or None."""
    database = _database(model)
    if database is None:
        return None
    try:
        case = engine.block_for_task(database)
    except TransactionError:  # a task that outlived its block: it draws as outside every block
        return None
    found = None
    while case is not None:
        found = case if case.reset_sequences else found
        case = case.outer
    return found


def _is_factory(value: object) -> bool:
    return isinstance(value, FactoryState) or (isinstance(value, type) and issubclass(value, ModelFactory))


class FactoryState(Generic[M]):
    """A factory with states applied (what :meth:`ModelFactory.state` returns): the same ``build``, ``create``,
    ``create_batch`` and ``state``."""

    def __init__(self, factory: type[ModelFactory[M]], states: tuple[str, ...]) -> None:
        known = sorted(name[len("state_") :] for name in dir(factory) if name.startswith("state_"))
        unknown = [name for name in states if name not in known]
        if unknown:
            raise ConfigurationError(
                f"{factory.__name__} has no state {unknown[0]!r}; its states are: {', '.join(known) or 'none'}. "
                f"Add a classmethod `state_{unknown[0]}(cls) -> dict` to define it."
            )
        self.factory, self.states = factory, states

    def state(self, *names: str) -> FactoryState[M]:
        """These states and then ``names``, in that order (a later one wins)."""
        return FactoryState(self.factory, (*self.states, *names))

    def build(self, **overrides: Any) -> M:
        """An unsaved instance (synchronous, no query); factories among its values are built, unsaved, too."""
        model: Any = self.factory.model
        return model(**self._values(overrides))  # type: ignore[no-any-return]

    async def create(self, **overrides: Any) -> M:
        """A saved instance, created through the model's async API (``aio_create``), factories among its values
        created first."""
        values, model_ = self._values(overrides), cast(Any, self.factory.model)
        return await model_.aio_create(**await self._create_related(values))  # type: ignore[no-any-return]

    async def create_batch(self, count: int, **overrides: Any) -> list[M]:
        """``count`` saved instances, in one multi-row ``INSERT ... RETURNING`` (PostgreSQL, SQLite 3.35+,
        MariaDB 10.5+; not MySQL 8, which has no ``RETURNING``); factories among the values are created first,
        one each. Returned in the order the database returns them."""
        if count < 1:
            return []
        model: Any = self.factory.model
        built = [model(**await self._create_related(self._values(overrides))) for _ in range(count)]
        names = [name for name in model._meta.fields if any(name in one.__data__ for one in built)]
        fields = [model._meta.fields[name] for name in names]
        rows = [tuple(one.__data__.get(name) for name in names) for one in built]
        query = model.insert_many(rows, fields=fields).returning(*model._meta.sorted_fields)
        return list(await query.aio_execute())

    def _values(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """The merged values of one instance: defaults, then states, then overrides; factories built (unsaved)
        only by :meth:`build` (see :meth:`_create_related`), other callables called with the sequence number."""
        factory, model = self.factory, cast(Any, self.factory.model)
        n = factory._next()
        layers = [factory.defaults(n), *(getattr(factory, f"state_{name}")() for name in self.states), overrides]
        values: dict[str, Any] = {}
        for layer in layers:
            values.update(_by_field_name(model, layer, factory.__name__))
        for name, value in values.items():
            if _is_factory(value):
                values[name] = _Pending(value)
            elif callable(value) and not isinstance(value, peewee.Model):
                values[name] = value(n)
        missing = [
            field.name
            for field in model._meta.sorted_fields
            if field.name not in values
            and not field.null
            and field.default is None
            and not (field.primary_key and isinstance(field, peewee.AutoField))
        ]
        if missing:
            raise ConfigurationError(
                f"{factory.__name__} gives no value for the required field {model.__name__}.{missing[0]} "
                f"(not null, no default): add it to {factory.__name__}.defaults() or pass {missing[0]}=... ."
            )
        return {name: value.build() if isinstance(value, _Pending) else value for name, value in values.items()}

    async def _create_related(self, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` with the related instances built from factories saved (created) first, theirs before them."""
        for _name, value in values.items():
            if isinstance(value, peewee.Model) and getattr(value, "_factory_pending", False):
                await _save_pending(value)
        return values


async def _save_pending(instance: Any) -> None:
    """Save an instance built from a factory value, after the ones built for its own foreign keys."""
    for name, related in list(instance.__rel__.items()):
        if getattr(related, "_factory_pending", False):
            await _save_pending(related)
            setattr(instance, name, related)  # its id is known now
    instance._factory_pending = False
    await instance.aio_save(force_insert=True)


class _Pending:
    """A factory value: built when the instance is built, saved before it when it is created."""

    def __init__(self, factory: Any) -> None:
        self.factory = factory

    def build(self) -> Any:
        instance = self.factory.build()
        instance._factory_pending = True
        return instance


def _by_field_name(model: Any, layer: dict[str, Any], factory: str) -> dict[str, Any]:
    """``layer`` with foreign keys given by their column's name (``author_id``) under the field's name."""
    columns = {field.column_name: field.name for field in model._meta.sorted_fields}
    result = {}
    for key, value in layer.items():
        name = key if key in model._meta.fields else columns.get(key)
        if name is None:
            raise ConfigurationError(
                f"{factory}: {model.__name__} has no field {key!r}; its fields are: {', '.join(model._meta.fields)}."
            )
        result[name] = value
    return result


class ModelFactory(Generic[M]):
    """Builds and creates instances of ``model`` (a ``peewee_async.AioModel``); subclass it (see the Factories page).

    Example::

        class UserFactory(ModelFactory[User]):
            model = User

            @classmethod
            def defaults(cls, n: int) -> dict[str, object]:
                return {"name": f"User {n}"}

        users = await UserFactory.create_batch(3)
    """

    #: The model this factory makes.
    model: type[M]
    #: The last number drawn outside every reset_sequences block.
    _sequence = 0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._sequence = 0  # each factory counts on its own

    @classmethod
    def defaults(cls, n: int) -> dict[str, Any]:
        """The values of the ``n``-th instance (1, 2, 3, ...); override it. By default none."""
        return {}

    @classmethod
    def state(cls, *names: str) -> FactoryState[M]:
        """This factory with the states ``names`` applied (the classmethods ``state_<name>``), in order."""
        return FactoryState(cls, names)

    @classmethod
    def build(cls, **overrides: Any) -> M:
        """An unsaved instance, synchronous and without a query; factories among its values are built unsaved."""
        return FactoryState(cls, ()).build(**overrides)

    @classmethod
    async def create(cls, **overrides: Any) -> M:
        """A saved instance (``aio_create``); factories among its values are created first."""
        return await FactoryState(cls, ()).create(**overrides)

    @classmethod
    async def create_batch(cls, count: int, **overrides: Any) -> list[M]:
        """``count`` saved instances, in one multi-row ``INSERT ... RETURNING``."""
        return await FactoryState(cls, ()).create_batch(count, **overrides)

    @classmethod
    def _next(cls) -> int:
        """The next number of this factory's sequence (see the module: reset_sequences blocks count apart)."""
        block = _reset_block(cls.model)
        if block is None:
            cls._sequence += 1
            return cls._sequence
        counters = _block_counters.setdefault(block, {})
        counters[cls] = counters.get(cls, cls._sequence) + 1
        return counters[cls]


def bind_factory(factory: type[ModelFactory[M]], database: Any) -> type[ModelFactory[M]]:
    """``factory`` itself, once it is checked that its model is bound to ``database`` (directly or through a
    :class:`peewee.DatabaseProxy`); else :class:`ConfigurationError`. What the ``peewee_factory`` fixture does."""
    bound = _database(factory.model)
    if bound is not database:
        raise ConfigurationError(
            f"{factory.__name__}.model ({factory.model.__name__}) is bound to {bound!r}, not to the test's "
            f"database {database!r}: its rows would escape the test's isolation. Bind the model to the database "
            "of `peewee_database` (its Meta.database, or a DatabaseProxy initialised with it)."
        )
    return factory
