"""Column types that keep money exact and times UTC-aware on both SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import BigInteger, DateTime, Numeric
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

SCALE = 4  # the warehouse's DECIMAL(18, 4): room for three-decimal currencies (KWD, BHD)
_QUANTUM = Decimal(1).scaleb(-SCALE)


class Money(TypeDecorator[Decimal]):
    """An exact amount with four decimal places: ``NUMERIC(18, 4)`` on PostgreSQL.

    SQLite has no exact decimal type: its NUMERIC affinity turns ``'1234.5600'`` into a binary
    float. There the amount is stored as an integer count of 1/10000 units instead, which is exact
    and still sums exactly in SQL (``type_coerce(func.sum(col), Money())`` reads the sum back as a
    Decimal). Floats are refused on the way in, and so is any amount that would need rounding.
    """

    impl = Numeric(18, SCALE, asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """BIGINT of 1/10000 units on SQLite, NUMERIC(18, 4) elsewhere."""
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(18, SCALE, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        """Decimal (or int / decimal text) in; refuses floats and amounts finer than 1/10000."""
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError(f"money must be a Decimal, never a float (got {value!r})")
        try:
            amount = Decimal(value)
        except (InvalidOperation, TypeError):
            raise ValueError(f"{value!r} is not a decimal amount") from None
        exact = amount.quantize(_QUANTUM)
        if exact != amount:
            raise ValueError(f"{value!r} has more than {SCALE} decimal places; the CRM stores money exactly")
        if dialect.name == "sqlite":
            return int(exact.scaleb(SCALE))
        return exact

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        """Always a Decimal with four decimal places."""
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-SCALE)
        return Decimal(value).quantize(_QUANTUM)


class UtcDateTime(TypeDecorator[datetime]):
    """A point in time: aware datetimes in, aware UTC datetimes out; naive values are refused.

    PostgreSQL stores ``timestamptz``; SQLite stores the UTC wall time as ISO text, which sorts
    and compares chronologically because every value is in the same zone.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        """Converted to UTC; the zone is dropped only where the database cannot store one."""
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: orderhub stores only time-zone-aware times")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """An aware datetime in UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
