"""Run Graphviz's ``dot`` binary to turn DOT source into SVG, PNG or PDF bytes.

``dot`` is an optional system dependency: without it, DOT, Mermaid and the
table-only HTML page still work, and :class:`DotNotFound` says how to get it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

from chainml.errors import InvalidInput

__all__ = ["FORMATS", "DotNotFound", "RenderError", "dot_available", "render_bytes"]

FORMATS: tuple[str, ...] = ("svg", "png", "pdf")
# Also accepted, for tests and tooling: dot's JSON and plain-text layouts.
_EXTRA_FORMATS: tuple[str, ...] = ("json", "plain")
DEFAULT_TIMEOUT = 300.0


class DotNotFound(InvalidInput):
    """Graphviz's ``dot`` program is not installed (or not on PATH)."""

    def __init__(self, fmt: str = "svg") -> None:
        super().__init__(
            f"Rendering {fmt} needs Graphviz's 'dot' program, which is not on PATH: install "
            "Graphviz ('apt-get install graphviz' or 'brew install graphviz'), or use "
            "--format dot, mermaid or html, which work without it."
        )


class RenderError(InvalidInput):
    """``dot`` ran but failed (bad source, timeout, crash)."""


def dot_available() -> bool:
    """Return True when Graphviz's ``dot`` program is on PATH."""
    return shutil.which("dot") is not None


def _first_line(data: bytes) -> str:
    text = data.decode("utf-8", "replace").strip()
    line = next((ln for ln in text.splitlines() if ln.strip()), "no message")
    return line[:300]


def render_bytes(dot_source: str, fmt: str, *, timeout: float = DEFAULT_TIMEOUT) -> bytes:
    """Lay out ``dot_source`` with ``dot`` and return the output file's bytes.

    ``dot`` reads the source on stdin and runs in an empty temporary folder with
    ``GV_FILE_PATH`` pointing there and ``SERVER_NAME`` set, which puts Graphviz
    in its restricted mode: even if an image or shape file slipped into the
    source, ``dot`` could not read files from elsewhere (the renderers never emit
    one; this is a second lock).

    Args:
        dot_source: DOT source, e.g. from :func:`chainml.render.dot.to_dot`.
        fmt: ``"svg"``, ``"png"`` or ``"pdf"`` (``"json"`` and ``"plain"`` are
            accepted too).
        timeout: Seconds before ``dot`` is killed.

    Returns:
        The rendered bytes.

    Raises:
        InvalidInput: ``fmt`` is not a supported format.
        DotNotFound: ``dot`` is not installed.
        RenderError: ``dot`` failed or timed out.
    """
    if fmt not in FORMATS + _EXTRA_FORMATS:
        raise InvalidInput(f"Unknown image format {fmt!r}; use one of {', '.join(FORMATS)}.")
    exe = shutil.which("dot")
    if exe is None:
        raise DotNotFound(fmt)
    with tempfile.TemporaryDirectory(prefix="chainml-dot-") as jail:
        env = {key: value for key, value in os.environ.items() if key != "GV_FILE_PATH"}
        env.update(GV_FILE_PATH=jail, SERVER_NAME="chainml")
        try:
            done = subprocess.run(
                [exe, f"-T{fmt}"],
                input=dot_source.encode("utf-8", "replace"),
                capture_output=True,
                timeout=timeout,
                cwd=jail,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise RenderError(
                f"Graphviz's dot did not finish within {timeout:g} seconds; draw less of the "
                "chain with --focus NODE --depth N, or use --format mermaid or html."
            ) from exc
        except OSError as exc:
            raise RenderError(f"Graphviz's dot could not be started: {exc}.") from exc
    if done.returncode != 0 or not done.stdout:
        raise RenderError(
            f"Graphviz's dot failed (exit code {done.returncode}): {_first_line(done.stderr)}."
        )
    return done.stdout
