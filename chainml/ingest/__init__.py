"""Pipelines report themselves: OpenLineage events in (``service``), named and versioned
by a mapping (``mapping``)."""
