"""The rules: registration, retest marks, status and the gate, impact, the pure graph
functions and the views the renderers draw. Over the storage layer (``chainml.db``)
and the words (errors, kinds, names, schemas); nothing here parses files or prints."""
