"""Property-based fuzzing of the running service against its own OpenAPI document (schemathesis):
no 5xx, every response of the documented content type and schema, errors as problem+json."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from service.core.principal import ALL_PERMISSIONS
from service.db.embedded import _free_port
from tests import live
from tests.helpers import JWT_SECRET, create_key

SCHEMATHESIS = str(Path(sys.executable).with_name("st"))
# Bounded, and the same cases every run: CI must not flake. Raise both to hunt for new findings.
EXAMPLES = os.environ.get("CHATKEEP_FUZZ_EXAMPLES", "25")
SEED = os.environ.get("CHATKEEP_FUZZ_SEED", "20261123")
CHECKS = "not_a_server_error,content_type_conformance,response_schema_conformance"


def test_the_api_survives_schemathesis(database_url: str) -> None:
    key = asyncio.run(create_key(database_url, ALL_PERMISSIONS))
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CHATKEEP_JWT_SECRET": JWT_SECRET,
        "CHATKEEP_ALLOW_ANONYMOUS": "true",
        "CHATKEEP_LOG_LEVEL": "warning",
    }
    process = live.serve(env, port)
    base = f"http://127.0.0.1:{port}"
    try:
        live.wait_ready(base, process)
        fuzz = subprocess.run(
            [
                SCHEMATHESIS,
                "run",
                f"{base}/schema/openapi.json",
                "--header",
                f"Authorization: Bearer {key}",
                "--checks",
                CHECKS,
                "--max-examples",
                EXAMPLES,
                "--seed",
                SEED,
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
    finally:
        server_output = live.stop(process)
    assert fuzz.returncode == 0, fuzz.stdout[-6000:]
    assert "Traceback" not in server_output, server_output[-4000:]
