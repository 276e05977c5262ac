"""An in-memory xenstore: the key tree of the simulated host (implements `port.Xenstore`)."""

from __future__ import annotations

import itertools

from xenmem.xen.port import Watch, WatchCallback

__all__ = ["KeyTree", "is_key"]


def is_key(path: str) -> bool:
    """Whether `path` is an absolute key (`/a/b`, no empty part)."""
    return path.startswith("/") and path != "/" and "//" not in path and not path.endswith("/")


def _is_under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


class KeyTree:
    """Paths are absolute (`/local/domain/3/memory/target`); values are strings.

    Writing a key creates its missing parents with empty values, as xenstore does. Watches
    fire synchronously after each change with the changed path: a watch on P sees changes
    at or below P, and the removal of P or of any parent of P. Special paths starting
    with `@` reach watches only through `fire`.
    """

    def __init__(self) -> None:
        self._values: dict[str, str] = {}
        self._children: dict[str, set[str]] = {}
        self._watches: dict[int, Watch] = {}
        self._tokens = itertools.count()

    def read(self, path: str) -> str | None:
        return self._values.get(path)

    def write(self, path: str, value: str) -> None:
        if not is_key(path):
            raise ValueError(f"not an absolute xenstore key: {path!r}")
        self._create(path)
        self._values[path] = value
        self.fire(path)

    def _create(self, path: str) -> None:
        if path in self._values or path == "/":
            return
        parent = _parent(path)
        self._create(parent)
        self._values[path] = ""
        self._children.setdefault(parent, set()).add(path.rsplit("/", 1)[1])

    def remove(self, path: str) -> None:
        if path not in self._values:
            return
        self._drop(path)
        self._children.get(_parent(path), set()).discard(path.rsplit("/", 1)[1])
        self.fire(path)

    def _drop(self, path: str) -> None:
        for child in self._children.pop(path, set()):
            self._drop(f"{path}/{child}")
        del self._values[path]

    def directory(self, path: str) -> list[str]:
        return sorted(self._children.get(path.rstrip("/") or "/", ()))

    def dump(self) -> dict[str, str]:
        """Every key and its value (parents included), to persist the tree."""
        return dict(self._values)

    @classmethod
    def load(cls, values: dict[str, str]) -> KeyTree:
        """A tree holding exactly `values` (as `dump` gave them), without watches."""
        tree = cls()
        for path in sorted(values, key=lambda p: p.count("/")):
            tree._create(path)
            tree._values[path] = values[path]
        return tree

    def watch(self, path: str, callback: WatchCallback) -> Watch:
        watch = Watch(path=path, callback=callback, token=next(self._tokens))
        self._watches[watch.token] = watch
        return watch

    def unwatch(self, watch: Watch) -> None:
        self._watches.pop(watch.token, None)

    def fire(self, path: str) -> None:
        """Notify every watch on `path`, on a parent of it, or below it."""
        for watch in list(self._watches.values()):
            if _is_under(path, watch.path) or _is_under(watch.path, path):
                watch.callback(path)
