"""The application as uvicorn's worker processes build it: from the environment that
``chainml serve`` set (each worker opens its own engine on the same registry)."""

from __future__ import annotations

import gc
import os

from fastapi import FastAPI

from chainml.ingest.mapping import load_mapping
from chainml.registry import Registry
from chainml.server.app import REQUEST_THREADS, Settings, create_app

ENV_READS = "CHAINML_SERVE_REQUIRE_TOKEN_FOR_READS"
ENV_ANON = "CHAINML_SERVE_ANONYMOUS_WRITES"
ENV_MAPPING = "CHAINML_SERVE_MAPPING"
ENV_HOOK_WORKER = "CHAINML_HOOK_WORKER"  # "0": this server sends no webhook deliveries

# A server process holds ~90,000 long-lived objects (the app, SQLAlchemy, pydantic's
# schemas, then the cached gates) and the gate of a 100,000-node registry builds about a
# million small ones: with Python's default thresholds (700, 10, 10) the collector went
# through everything 4-7 times per gate and ~100 times through the young, 40-60 % of the
# time (in process, 100,000 nodes on PostgreSQL: check 1.2-2.0 s and env_check 2.5-3.7 s,
# 0.7-0.9 s and 1.1-1.5 s with these). Rarer young collections, and what start-up made
# frozen out of every scan. Acyclic garbage is freed by reference counting either way.
GC_THRESHOLDS = (50_000, 20, 20)


def tune_gc() -> None:
    """Set this process's collector for serving (see GC_THRESHOLDS)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def app_from_env() -> FastAPI:
    registry = Registry(os.environ.get("CHAINML_DATABASE_URL") or None,
                        pool_size=REQUEST_THREADS)
    app = create_app(registry, Settings(
        require_token_for_reads=os.environ.get(ENV_READS) == "1",
        anonymous_writes=os.environ.get(ENV_ANON) == "1",
        hook_worker=os.environ.get(ENV_HOOK_WORKER) != "0",
        mapping=load_mapping(os.environ.get(ENV_MAPPING) or None)))
    tune_gc()  # this process serves: it is built
    return app
