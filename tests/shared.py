"""The conformance data and real graphs kept in ``../shared`` (beside the repository).

They are other projects' files, used where they are rather than copied in. A test
that needs them skips when they are missing, except under ``CI=true``, where it fails:
CI must run against them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SHARED = Path(os.environ.get("CHAINML_SHARED_DIR")
              or Path(__file__).resolve().parents[2] / "shared")


def shared_path(*parts: str) -> Path:
    """``shared/<parts>``; skips the test when it is missing (fails it under CI=true).

    Example: ``shared_path("conformance", "openlineage", "events")``.
    """
    path = SHARED.joinpath(*parts)
    if not path.exists():
        message = f"{path} is missing (set CHAINML_SHARED_DIR to the shared folder)"
        if IN_CI:
            pytest.fail(message + "; under CI=true the shared data must be there.")
        pytest.skip(message)
    return path
