"""Statements the ORM compiles once per database connection and that then run again with new
values.

Building and compiling a queryset costs far more Python than running it: on a group
booking's path (the student's row lock, the combined read of limits and waitlist, the seat
``UPDATE``, the teacher's policy) it was most of a booking's CPU time. A :class:`Prepared`
statement builds its queryset once per connection, with :class:`Param` placeholders where
the values go, keeps the SQL the ORM compiled, and on each run fills in the values, adapted
by the placeholders' fields as the ORM would adapt them. The SQL is the ORM's own, so
swapped models, vendors and quoting are as for any queryset; it runs on the database the
routers choose for the queryset (``db_for_write`` for an update or a ``select_for_update``,
else ``db_for_read``), through the connection's cursor, so ``CaptureQueriesContext`` and
execute wrappers see it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from django.db import connections, router, transaction
from django.db.models import AutoField, Expression, Field, Model, QuerySet
from django.db.models.sql import InsertQuery, UpdateQuery
from django.db.transaction import TransactionManagementError

__all__ = ["Param", "Prepared", "PreparedInsert"]


class Param(Expression):
    """Where a value of a :class:`Prepared` statement goes: ``name`` is the keyword it is
    given by, ``output_field`` the field that adapts it for the database."""

    def __init__(self, name: str, output_field: Field[Any, Any], *, save: bool = False) -> None:
        super().__init__(output_field=output_field)
        self.name = name
        self.save = save

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        return "%s", [_Slot(self.name, self.output_field, self.save)]

    def __repr__(self) -> str:
        return f"Param({self.name!r})"


@dataclass(frozen=True)
class _Slot:
    name: str
    field: Any
    save: bool  # a value to store (get_db_prep_save), not to compare

    def adapt(self, value: Any, connection: Any) -> Any:
        if self.save:
            return self.field.get_db_prep_save(value, connection)
        if value is None:
            # The ORM reads field=None as IS NULL, and an unsaved instance's pk as an error;
            # "= NULL" would quietly match nothing.
            raise ValueError(f"The placeholder {self.name!r} of a prepared statement got None.")
        return self.field.get_db_prep_value(value, connection, prepared=False)


def _bind(template: tuple[Any, ...], values: dict[str, Any], connection: Any) -> list[Any]:
    return [
        value.adapt(values[value.name], connection) if isinstance(value, _Slot) else value
        for value in template
    ]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple[Any, ...]
    compiler: Any  # reads rows back through the ORM's converters
    locks: bool  # SELECT ... FOR UPDATE: only inside a transaction


def _statements(connection: Any) -> dict[Any, Any]:
    """The statements compiled for ``connection``. They live on the connection wrapper (one
    per thread and alias): a compiler holds its connection, and the SQL is that vendor's."""
    cache: dict[Any, Any] = connection.__dict__.setdefault("_liveclass_booking_prepared", {})
    return cache


class Prepared:
    """A queryset compiled once per connection. ``build()`` returns it, with :class:`Param`
    placeholders for the values; ``update`` (a function returning the fields to set, which
    may hold placeholders too) makes it an ``UPDATE`` (of the model's own table, filtered
    on its own columns). Use the methods of the kind built: :meth:`rows` for a
    ``values_list`` query, :meth:`update` for an update.

    Compiled once per connection wrapper: per thread under WSGI; under ASGI Django gives
    each request context wrappers of its own, so there a statement is compiled once per
    request (as a plain queryset is) and the saving is lost."""

    def __init__(
        self,
        build: Callable[[], QuerySet[Any]],
        *,
        update: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self._build = build
        self._update = update
        self._route: tuple[type[Model], bool] | None = None

    def alias(self) -> str:
        """The database the statement runs on: the one the routers choose for its model,
        for writing when it updates or locks rows, else for reading."""
        if self._route is None:
            queryset = self._build()
            self._route = (
                queryset.model,
                self._update is not None or queryset.query.select_for_update,
            )
        model, write = self._route
        return str(router.db_for_write(model) if write else router.db_for_read(model))

    def _compiled(self, connection: Any) -> _Compiled:
        """The statement compiled for ``connection``: the first time, built and checked."""
        cache = _statements(connection)
        found = cache.get(self)
        if found is None:
            query: Any = self._build().query
            if self._update is not None:
                query = query.chain(UpdateQuery)
                query.add_update_values(self._update())
                # An update the ORM runs in more than one statement (a parent table's
                # fields, or a pre-select of the rows on MySQL/MariaDB when the filter
                # joins another table) cannot be one prepared statement.
                if query.related_updates or query.count_active_tables() > 1:
                    raise ValueError("A prepared UPDATE sets and filters on one table only.")
            compiler = query.get_compiler(connection=connection)
            sql, params = compiler.as_sql()
            locks = bool(
                self._update is None
                and query.select_for_update
                and connection.features.has_select_for_update
                and connection.features.supports_transactions
            )
            found = cache[self] = _Compiled(sql, tuple(params), compiler, locks)
        return found

    def rows(self, *, using: str | None = None, **values: Any) -> list[tuple[Any, ...]]:
        """Run the query with ``values`` for its placeholders on ``using`` (default:
        :meth:`alias`); its rows as tuples, each value converted as the queryset would
        convert it."""
        connection = connections[using or self.alias()]
        compiled = self._compiled(connection)
        if compiled.locks and connection.get_autocommit():
            # The check the ORM makes each time it compiles a locking query.
            raise TransactionManagementError(
                "select_for_update cannot be used outside of a transaction."
            )
        params = _bind(compiled.params, values, connection)
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            fetched = cursor.fetchall()
        compiler = compiled.compiler
        if compiler.has_extra_select:  # ordering columns a DISTINCT needed in the SELECT
            fetched = [row[: compiler.col_count] for row in fetched]
        return list(compiler.results_iter(results=[fetched], tuple_expected=True))

    def update(self, **values: Any) -> int:
        """Run the ``UPDATE`` with ``values`` for its placeholders; the number of rows it
        matched."""
        connection = connections[self.alias()]
        compiled = self._compiled(connection)
        params = _bind(compiled.params, values, connection)
        with (
            transaction.mark_for_rollback_on_error(connection.alias),
            connection.cursor() as cursor,
        ):
            cursor.execute(compiled.sql, params)
            return int(cursor.rowcount)


class PreparedInsert:
    """The ``INSERT`` of one row of the model ``model()`` returns, compiled once per
    connection. Like ``bulk_create`` it sends no ``pre_save``/``post_save`` signals; unlike
    it, it does not read back an automatic primary key (the instance's ``pk`` stays None).
    For rows nothing reads back at once: audit entries, outbox events."""

    def __init__(self, model: Callable[[], type[Model]]) -> None:
        self._model = model

    def insert(self, obj: Model) -> None:
        """Insert ``obj`` (each field's ``pre_save`` value, as a save would store it)."""
        model = self._model()
        connection = connections[router.db_for_write(model, instance=obj)]
        cache = _statements(connection)
        found = cache.get(self)
        if found is None:
            found = cache[self] = _compile_insert(model, connection)
        sql, template, fields = found
        values = {field.attname: field.pre_save(obj, add=True) for field in fields}
        params = _bind(template, values, connection)
        with (
            transaction.mark_for_rollback_on_error(connection.alias),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, params)


def _compile_insert(model: type[Model], connection: Any) -> tuple[str, tuple[Any, ...], list[Any]]:
    fields = [
        field
        for field in model._meta.concrete_fields
        if not getattr(field, "generated", False) and not isinstance(field, AutoField)
    ]
    row = SimpleNamespace(
        **{field.attname: Param(field.attname, field, save=True) for field in fields}
    )
    query = InsertQuery(model)
    query.insert_values(fields, [row], raw=True)  # type: ignore[list-item]
    [(sql, params)] = query.get_compiler(connection=connection).as_sql()
    return sql, tuple(params), fields
