"""The picture formats ``chainml graph`` writes, and which one an output file's name asks for.

Standard library only: the command line imports it at start-up for its option choices.
"""

from __future__ import annotations

from pathlib import PurePath

from chainml.errors import InvalidInput

__all__ = ["BINARY", "EXTENSIONS", "FORMATS", "SUFFIX", "output_format"]

FORMATS: tuple[str, ...] = ("svg", "png", "pdf", "dot", "html", "mermaid")
BINARY: tuple[str, ...] = ("png", "pdf")
# The suffix of the default file name, chain.<suffix>.
SUFFIX: dict[str, str] = {"svg": "svg", "png": "png", "pdf": "pdf", "dot": "dot",
                          "html": "html", "mermaid": "mmd"}
# Every suffix a format is known by, so `-o chain.gv` or `-o chain.htm` is not refused.
EXTENSIONS: dict[str, str] = {
    ".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot",
    ".html": "html", ".htm": "html", ".mmd": "mermaid", ".mermaid": "mermaid",
}
DEFAULT = "svg"


def _known() -> str:
    by_format: dict[str, list[str]] = {}
    for ext, fmt in EXTENSIONS.items():
        by_format.setdefault(fmt, []).append(ext)
    return ", ".join("/".join(exts) for exts in by_format.values())


def output_format(output: str | None, fmt: str | None) -> str:
    """The format to write: ``fmt`` when given, else the one ``output``'s suffix names.

    A file whose suffix names another format than ``fmt`` (PNG bytes in ``chain.svg``),
    or, without ``fmt``, a suffix no format has (``chain.jpg``), is refused rather than
    written with content its name misdescribes. A name without a suffix (and stdout,
    ``-``) takes ``fmt`` or SVG.

    Raises:
        InvalidInput: the suffix contradicts ``fmt``, or is unknown and ``fmt`` is None.
    """
    suffix = PurePath(output).suffix.lower() if output and output != "-" else ""
    named = EXTENSIONS.get(suffix)
    if fmt is None:
        if suffix and named is None:
            raise InvalidInput(
                f"Cannot tell the format from the name {output!r}: chainml writes "
                f"{_known()}, not '{suffix}'; name the file with one of these suffixes, or "
                "give --format.")
        return named or DEFAULT
    if named is not None and named != fmt:
        raise InvalidInput(
            f"--format {fmt} contradicts the name {output!r}, whose '{suffix}' means {named}; "
            f"drop --format or name the file .{SUFFIX[fmt]}.")
    return fmt
