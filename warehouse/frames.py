"""Polars frames in and out of DuckDB through the Arrow C stream interface, without pyarrow."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import duckdb
import polars as pl


class ArrowStream:
    """A polars frame that DuckDB scans through ``__arrow_c_stream__``.

    DuckDB reads a bare ``pl.DataFrame`` via ``to_arrow()``, which needs pyarrow; the Arrow
    PyCapsule protocol needs nothing but polars, and a fresh stream is handed out on every scan,
    so a registered frame can be read by several statements.
    """

    __slots__ = ("frame",)

    def __init__(self, frame: pl.DataFrame) -> None:
        self.frame = frame

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> Any:
        """A new Arrow C stream over the frame."""
        return self.frame.__arrow_c_stream__(requested_schema)


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> Iterator[str]:
    """Make ``frame`` readable as the view ``name`` on ``con`` for the duration of the block.

    Args:
        con: the DuckDB connection.
        name: the view name statements use.
        frame: the polars frame (read zero-copy where the types allow).

    Yields:
        The view name.
    """
    con.register(name, ArrowStream(frame))
    try:
        yield name
    except BaseException:
        # After a failed statement the transaction is aborted and even unregistering fails; the
        # original error is the one to report (registering the name again replaces the view).
        with suppress(duckdb.Error):
            con.unregister(name)
        raise
    con.unregister(name)


def query_frame(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> pl.DataFrame:
    """Run a read-only query and return its rows as a polars frame (column types kept, zero rows too).

    Args:
        con: the DuckDB connection.
        sql: one SELECT statement.
        params: positional ``?`` parameters.
    """
    return pl.DataFrame(con.sql(sql, params=params))
