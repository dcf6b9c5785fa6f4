"""chainml: keep a chain of ML models, features, sources and policies in a SQL registry,
find everything a change reaches, and fail CI until it is retested.

``from chainml import Registry`` is the public entry point; see docs/python-api.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chainml.errors import (
    ChainmlError,
    CycleError,
    Forbidden,
    InvalidInput,
    KindRuleError,
    NodeNotFound,
    RegistryUnavailable,
    ReleaseRefused,
    SchemaOutdated,
    Unauthorized,
    VersionConflict,
    VersionNotFound,
)

if TYPE_CHECKING:
    from chainml.registry import Registry

__version__ = "0.1.0"
__all__ = [
    "ChainmlError",
    "CycleError",
    "Forbidden",
    "InvalidInput",
    "KindRuleError",
    "NodeNotFound",
    "Registry",
    "RegistryUnavailable",
    "ReleaseRefused",
    "SchemaOutdated",
    "Unauthorized",
    "VersionConflict",
    "VersionNotFound",
]


def __getattr__(name: str) -> Any:
    # Lazy: importing SQLAlchemy and networkx costs ~0.5 s, too much for `chainml --help`.
    if name == "Registry":
        from chainml.registry import Registry

        return Registry
    raise AttributeError(name)
