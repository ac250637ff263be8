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
    """Refuse a setting whose value is not of its default's kind (a number for a numeric
    parameter, true/false for a flag), naming ``<group>.<key>``: ``step2.beta=abc`` would
    otherwise fail deep inside the method with a bare TypeError."""
    defaults = _defaults(function)
    optional = _optional(function)
    for key, value in options.items():
        if value is None and key in optional:
            continue
        default = defaults.get(key)
        if isinstance(default, bool):
            wrong = not isinstance(value, bool)
            expected = "true or false"
        elif isinstance(default, (int, float)):
            wrong = isinstance(value, bool) or not isinstance(value, Real)
            expected = "a number"
        else:
            continue
        if wrong:
            raise ValueError(f"{group}.{key} must be {expected}, got {value!r}")


@functools.cache
def _optional(function: Callable) -> frozenset[str]:
    """The parameters of a function that may be None (annotated ``X | None``)."""
    return frozenset(
        name
        for name, parameter in inspect.signature(function).parameters.items()
        if "None" in str(parameter.annotation)
    )


@functools.cache
def _defaults(function: Callable) -> dict[str, object]:
    """``{parameter: default}`` of a function (read once: step 2 checks every frame)."""
    return {
        name: parameter.default
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }


def keyword_settings(function: Callable, inputs: tuple[str, ...]) -> tuple[str, ...]:
    """The config keys an implementation takes: its parameters other than ``inputs`` (the data
    it is called with)."""
    return tuple(p for p in inspect.signature(function).parameters if p not in inputs)
