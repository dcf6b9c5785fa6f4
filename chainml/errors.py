"""Exceptions.

Every error the user can fix is a :class:`ChainmlError`; its ``exit_code`` is the
command-line contract (2 bad input, 3 registry unreachable or on the wrong schema).
Anything else that escapes is a bug.
"""

from __future__ import annotations

from collections.abc import Sequence


class ChainmlError(Exception):
    """Base of every error the user can fix; the message is one sentence."""

    exit_code = 2


def _quote(text: str, limit: int = 60) -> str:
    """Quote an unknown, untrusted name: repr keeps newlines and control characters visible,
    so the message stays one line."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


class InvalidInput(ChainmlError):
    """A name, version label, option value or file that breaks the rules.

    A file with several problems raises one error listing them all; ``problems``
    holds each one's sentence (the first ones, when there are many).
    """

    problems: tuple[str, ...] = ()


def unknown_field(what: str, field: object, fields: Sequence[str]) -> InvalidInput:
    """``what`` was given a field it does not have: name it, and the ones it has."""
    import difflib

    shown = _quote(field) if isinstance(field, str) else repr(field)
    close = difflib.get_close_matches(field, fields, n=1) if isinstance(field, str) else []
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return InvalidInput(f"{what} got an unknown field {shown}{hint} (the fields are "
                        f"{', '.join(fields)}).")


class NodeNotFound(InvalidInput):
    """No node of that name."""

    def __init__(self, name: str, suggestion: str | None = None, consumer: str | None = None
                 ) -> None:
        self.name = name
        hint = f" Did you mean '{suggestion}'?" if suggestion else ""
        if consumer:
            super().__init__(
                f"Input '{name}' of '{consumer}' is not a registered node; register it first.{hint}"
            )
        else:
            super().__init__(f"No node named {_quote(name)}.{hint}")


class VersionNotFound(InvalidInput):
    """The node has no version with that label."""

    def __init__(self, node: str, label: str) -> None:
        self.node, self.label = node, label
        super().__init__(
            f"Node '{node}' has no version {_quote(label)}; 'chainml show {node}' lists its "
            "versions."
        )


class KindRuleError(InvalidInput):
    """A kind that may not consume another (a source that takes an input, ...)."""


class CycleError(InvalidInput):
    """A registration would close a cycle; ``cycle`` lists it in order, first == last."""

    def __init__(self, cycle: Sequence[str]) -> None:
        self.cycle = list(cycle)
        super().__init__(
            "This would close a cycle: " + " -> ".join(self.cycle)
            + "; declare one of these inputs with --feedback if the loop is intended."
        )


class VersionConflict(InvalidInput):
    """An existing (immutable) version re-registered with different content."""


class ReleaseRefused(ChainmlError):
    """``deploy`` refused a release that would leave a node of the environment untested,
    failed, skewed or missing an input (exit 1, like a failing check); ``result`` holds
    the ``ReleaseResult`` with each such node and why. Nothing was recorded."""

    exit_code = 1

    def __init__(self, message: str, result: object) -> None:
        super().__init__(message)
        self.result = result


class RegistryUnavailable(ChainmlError):
    """The database cannot be reached, opened or written."""

    exit_code = 3


class SchemaOutdated(ChainmlError):
    """The registry's schema is behind (or ahead of) this chainml."""

    exit_code = 3


class Unauthorized(ChainmlError):
    """A request to the HTTP API without a valid token (none, unknown, expired, revoked):
    HTTP 401."""


class Forbidden(ChainmlError):
    """A valid token whose scope does not allow the request: HTTP 403."""
