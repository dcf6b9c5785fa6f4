"""The application as uvicorn's worker processes build it: from the environment that
``chainml serve`` set (each worker opens its own engine on the same registry)."""

from __future__ import annotations

import os

from fastapi import FastAPI

from chainml.ingest.mapping import load_mapping
from chainml.registry import Registry
from chainml.server.app import Settings, create_app

ENV_READS = "CHAINML_SERVE_REQUIRE_TOKEN_FOR_READS"
ENV_ANON = "CHAINML_SERVE_ANONYMOUS_WRITES"
ENV_MAPPING = "CHAINML_SERVE_MAPPING"
ENV_HOOK_WORKER = "CHAINML_HOOK_WORKER"  # "0": this server sends no webhook deliveries


def app_from_env() -> FastAPI:
    registry = Registry(os.environ.get("CHAINML_DATABASE_URL") or None)
    return create_app(registry, Settings(
        require_token_for_reads=os.environ.get(ENV_READS) == "1",
        anonymous_writes=os.environ.get(ENV_ANON) == "1",
        hook_worker=os.environ.get(ENV_HOOK_WORKER) != "0",
        mapping=load_mapping(os.environ.get(ENV_MAPPING) or None)))
