"""Files in and out: chain files (loading, fields, errors, JSON Schema), hardened YAML/JSON
reading, ``apply``/``export``, and the importers of other tools' graphs. Over the rules."""
