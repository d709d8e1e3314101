"""Secret references resolved from the environment or Prefect Secret blocks, never printed."""

from __future__ import annotations

import os
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from orderhub.errors import ConfigError
from orderhub.log import register_secret


class Secret:
    """A credential given by reference: ``env:NAME``, ``prefect:block-name`` or, for the sandbox, a literal.

    The value is resolved only when ``get()`` is called and never appears in ``repr``/``str``,
    so a config object can be logged or put in an exception safely.
    """

    __slots__ = ("_ref",)

    def __init__(self, ref: str) -> None:
        self._ref = ref

    @property
    def source(self) -> str:
        """Where the secret comes from, safe to show (``env:NAME``, ``prefect:block`` or ``inline``)."""
        if self._ref.startswith(("env:", "prefect:")):
            return self._ref
        return "inline"

    def get(self) -> str:
        """Resolve and return the secret value (and register it so logs mask it).

        Raises:
            ConfigError: the environment variable or Prefect block does not exist.
        """
        value = self._resolve()
        register_secret(value)
        return value

    def _resolve(self) -> str:
        if self._ref.startswith("env:"):
            name = self._ref[4:]
            value = os.environ.get(name)
            if not value:
                raise ConfigError(f"environment variable {name} is not set; export it or change the reference")
            return value
        if self._ref.startswith("prefect:"):
            block = self._ref[8:]
            try:
                from prefect.blocks.system import Secret as PrefectSecret

                return str(PrefectSecret.load(block).get())
            except Exception as exc:  # noqa: BLE001 - any failure to load is a config problem
                raise ConfigError(
                    f"Prefect Secret block {block!r} could not be loaded ({type(exc).__name__}); "
                    f"create it with `prefect block create secret` or change the reference"
                ) from None
        return self._ref

    def __repr__(self) -> str:
        return f"Secret({self.source!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._ref == self._ref

    def __hash__(self) -> int:
        return hash(self._ref)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            lambda v: v if isinstance(v, Secret) else Secret(str(v)),
            serialization=core_schema.plain_serializer_function_ser_schema(lambda s: s._ref),
        )
