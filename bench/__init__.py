"""The chainml scale benchmark: `python -m bench` (docs/performance.md)."""
