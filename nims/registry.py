"""A tiny registry: a config group's ``name`` key picks one implementation."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from numbers import Real
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Map names to implementations, filled by the :meth:`register` decorator.

    Parameters
    ----------
    kind : str
        What the registry holds ("flow backend", "step 2 method"); used in error messages.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = entry
            return entry

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(
                f"unknown {self.kind} {name!r}; available: {', '.join(sorted(self._entries))}"
            ) from None

    def names(self) -> list:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries


def check_setting_types(function: Callable, options: dict[str, object], group: str) -> None:
    """Refuse a setting whose value is not of its parameter's kind (a number for a numeric
    parameter, true/false for a flag; None where the parameter may be None), naming
    ``<group>.<key>``: ``step2.beta=abc`` would otherwise fail deep inside the method with a
    bare TypeError."""
    kinds = _kinds(function)
    for key, value in options.items():
        kind, optional = kinds.get(key, (None, True))
        if value is None and optional:
            continue
        if kind == "flag":
            wrong = not isinstance(value, bool)
            expected = "true or false"
        elif kind == "number":
            wrong = isinstance(value, bool) or not isinstance(value, Real)
            expected = "a number"
        else:
            continue
        if wrong:
            raise ValueError(f"{group}.{key} must be {expected}, got {value!r}")


@functools.cache
def _kinds(function: Callable) -> dict[str, tuple[str | None, bool]]:
    """``{parameter: (kind, may be None)}``: kind ``"flag"`` or ``"number"`` from the default's
    type, or from the annotation (``float | None``) when the default is None."""
    kinds = {}
    for name, parameter in inspect.signature(function).parameters.items():
        annotation = str(parameter.annotation)
        default = parameter.default
        if isinstance(default, bool) or annotation.startswith("bool"):
            kind = "flag"
        elif isinstance(default, (int, float)) or annotation.split(" |")[0] in ("float", "int"):
            kind = "number"
        else:
            kind = None
        kinds[name] = (kind, "None" in annotation)
    return kinds


def keyword_settings(function: Callable, inputs: tuple[str, ...]) -> tuple[str, ...]:
    """The config keys an implementation takes: its parameters other than ``inputs`` (the data
    it is called with)."""
    return tuple(p for p in inspect.signature(function).parameters if p not in inputs)
