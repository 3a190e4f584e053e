"""The few pieces of SQL the set-based loyalty paths share: an INSERT … SELECT built from a
queryset, day arithmetic that works on both databases, and locking a set of accounts."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import DateField, Func, QuerySet
from django.utils import timezone


class AddDays(Func):
    """A date plus a whole number of days, as a date (PostgreSQL and SQLite)."""

    output_field = DateField()

    def __init__(self, expression, days: int, **extra):
        self.days = int(days)
        super().__init__(expression, **extra)

    def as_sql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"(({sql}) + {self.days})", params

    def as_postgresql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"(CAST({sql} AS date) + {self.days})", params

    def as_sqlite(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"date({sql}, '{self.days:+d} days')", params


def insert_select(model, columns: list[str], queryset: QuerySet, *, conflict: str = "key") -> int:
    """INSERT INTO model's table (columns) the rows of `queryset` (a values() queryset giving
    those columns in that order), skipping rows whose `conflict` column clashes with a stored
    one; returns how many were inserted."""
    try:
        select, params = queryset.order_by().query.sql_with_params()
    except EmptyResultSet:  # queryset.none(): nothing to insert
        return 0
    table = model._meta.db_table
    names = ", ".join(connection.ops.quote_name(model._meta.get_field(c).column)
                      for c in columns)
    # "WHERE true": SQLite reads "ON CONFLICT" after a bare SELECT as part of a join.
    sql = (f"INSERT INTO {table} ({names}) SELECT * FROM ({select}) AS candidate WHERE true "
           f"ON CONFLICT ({conflict}) DO NOTHING")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return max(cursor.rowcount, 0)


def start_of(day: date) -> datetime:
    """The first moment of `day` in the business's time zone."""
    return timezone.make_aware(datetime.combine(day, time.min))


def end_of(day: date) -> datetime:
    """The first moment after `day`."""
    return start_of(day + timedelta(days=1))


def lock_accounts(account_ids_sql: str, params=()) -> None:
    """Wait for, then hold, the row locks of these accounts (PostgreSQL; SQLite's writers
    queue already). In id order, so two bulk paths never deadlock on each other; after it,
    each later statement of the transaction sees every debit those accounts committed."""
    if connection.vendor != "postgresql":
        return
    from loyalty.models import Account

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {Account._meta.db_table} WHERE id IN ({account_ids_sql}) "
                       "ORDER BY id FOR UPDATE", params)
