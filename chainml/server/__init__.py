"""chainml serve: the registry as a web UI and an HTTP API (docs/server.md)."""
