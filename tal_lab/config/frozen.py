"""Deep-frozen mappings and lists: a resolved config cannot drift after :func:`load_config`.

:class:`FrozenDict` and :class:`FrozenList` subclass ``dict`` and ``list`` so that everything
that reads a config keeps working unchanged (indexing, ``.get``, ``in``, iteration, ``dict(cfg)``,
``json.dumps``, equality with plain dicts and lists, ``isinstance(x, dict)``) and they pickle
(DataLoader workers, DDP spawn); every method that would change them raises ``TypeError``
saying how to make a changed config instead. :func:`thaw` gives a plain, mutable deep copy for
the few places that build a new config from an old one.
"""

from __future__ import annotations

from typing import Any, Mapping, NoReturn

__all__ = ["FrozenDict", "FrozenList", "freeze", "thaw"]

_HOW_TO_CHANGE = ("a loaded config is immutable; build a changed one with "
                  "tal_lab.config.apply_overrides(cfg, {...}) (or thaw(cfg) for a plain, mutable copy)")


def _refuse(*_: Any, **__: Any) -> NoReturn:
    raise TypeError(_HOW_TO_CHANGE)


class FrozenDict(dict):  # type: ignore[type-arg]
    """A ``dict`` whose items cannot be set, deleted or updated (values frozen too by
    :func:`freeze`)."""

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self) -> tuple[type, tuple[dict[str, Any]]]:
        # The default pickling of a dict subclass refills it with __setitem__.
        return (type(self), (dict(self),))

    def to_dict(self) -> dict[str, Any]:
        """A plain, mutable deep copy (nested mappings and lists thawed too)."""
        return thaw(self)


class FrozenList(list):  # type: ignore[type-arg]
    """A ``list`` that cannot be changed in place."""

    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse

    def __reduce__(self) -> tuple[type, tuple[list[Any]]]:
        # The default pickling of a list subclass refills it with append / extend.
        return (type(self), (list(self),))


def freeze(value: Any) -> Any:
    """``value`` with every mapping made a :class:`FrozenDict` and every list or tuple a
    :class:`FrozenList`, at any depth; other values are returned as they are."""
    if isinstance(value, Mapping):
        return FrozenDict({key: freeze(item) for key, item in value.items()})
    if isinstance(value, (list, tuple)):
        return FrozenList(freeze(item) for item in value)
    return value


def thaw(value: Any) -> Any:
    """A plain, mutable deep copy of ``value``: mappings to ``dict``, lists and tuples to ``list``."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(item) for item in value]
    return value
