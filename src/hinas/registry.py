"""One registry class for everything hinas looks up by name: cell operations, trainable
architectures, classical methods and degradations each keep a `Registry` of their entries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from hinas.errors import HinasError

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries of one kind (`kind` names it in errors, e.g. "operation"), by unique name."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        """Register `entry` as `name` (ValueError if the name is taken: a programming error)."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = entry
        return entry

    def register(self, name: str, make: Callable[[Callable], T] | None = None) -> Callable:
        """Decorator registering the decorated object as `name`, or the entry `make(obj)` builds
        from it; the decorated object itself is returned unchanged."""

        def decorate(obj: Callable) -> Callable:
            self.add(name, obj if make is None else make(obj))
            return obj

        return decorate

    def remove(self, name: str) -> T:
        """Unregister `name` and return its entry (KeyError if it is not registered)."""
        return self._entries.pop(name)

    def get(self, name: str) -> T:
        """The entry called `name`; HinasError listing the known names otherwise."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise HinasError(f"unknown {self.kind} {name!r}; known: "
                             f"{', '.join(self.names())}") from None

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries
