"""The five node kinds and the rules between them (DESIGN.md, "Concepts")."""

from __future__ import annotations

from enum import Enum


class Kind(str, Enum):
    SOURCE = "source"
    FEATURE = "feature"
    MODEL = "model"
    POLICY = "policy"
    CONSUMER = "consumer"


ALL_KINDS: tuple[str, ...] = tuple(k.value for k in Kind)

# What each kind may consume through a regular (non-feedback) input.
MAY_CONSUME: dict[Kind, frozenset[Kind]] = {
    Kind.SOURCE: frozenset(),
    Kind.FEATURE: frozenset({Kind.SOURCE, Kind.FEATURE, Kind.MODEL}),
    Kind.MODEL: frozenset({Kind.FEATURE, Kind.MODEL, Kind.SOURCE}),
    Kind.POLICY: frozenset({Kind.MODEL, Kind.FEATURE, Kind.POLICY}),
    Kind.CONSUMER: frozenset(Kind),
}

NEEDS_TESTS_BY_DEFAULT: dict[Kind, bool] = {
    Kind.SOURCE: False,
    Kind.FEATURE: False,
    Kind.MODEL: True,
    Kind.POLICY: True,
    Kind.CONSUMER: False,
}


def may_consume(consumer: Kind, upstream: Kind) -> bool:
    """True when ``consumer`` may read ``upstream`` through a regular input."""
    return upstream in MAY_CONSUME[consumer]


def consumable_by(consumer: Kind) -> str:
    """Human list of the kinds ``consumer`` may read, for error messages."""
    kinds = [k.value for k in Kind if k in MAY_CONSUME[consumer]]
    return ", ".join(kinds) if kinds else "nothing (only --feedback inputs)"
