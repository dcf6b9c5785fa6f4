"""Webhooks: the hooks and their deliveries (``service``) and the worker that sends them
(``worker``); what a hook may be, the backoff and the signature are pure functions
(``policy``, ``signing``), the bodies ``formats``. The outbox they read is written with
each change by ``chainml.rules.outbox``, below this layer."""
