"""Property-based fuzzing of the running service against its own OpenAPI document (schemathesis),
with every check: no 5xx; statuses, content types, headers and bodies as documented; requests the
document allows accepted and those it forbids refused; credentials enforced; Allow on 405 and
OPTIONS."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

from service.core import cursor
from service.core.principal import ALL_PERMISSIONS
from service.db.embedded import _free_port
from tests import live
from tests.helpers import JWT_SECRET, create_key

SCHEMATHESIS = str(Path(sys.executable).with_name("st"))
# Bounded, and the same cases every run: CI must not flake. Raise both to hunt for new findings.
EXAMPLES = os.environ.get("CHATKEEP_FUZZ_EXAMPLES", "25")
SEED = os.environ.get("CHATKEEP_FUZZ_SEED", "20261123")
# Every check is on (schemathesis' default; `--checks` on the command line would override the
# per-operation setting below). What the document cannot say is told to schemathesis instead:
# - a cursor is opaque (only a previous page's next_cursor is one), so fuzzing sends a real one;
# - over a size limit is a 413, which schemathesis does not count as refusing invalid data;
# - a bulk delete without any filter wants confirm=all (else a 422): parameters cannot say "at
#   least one of these".
CONFIG = """
[parameters]
"query.cursor" = "{cursor}"
"header.If-Match" = "*"

[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", 401, 403, 404, 409, 412, 429, "5xx"]

[checks.negative_data_rejection]
expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429, "5xx"]

[[operations]]
include-path = "/v1/conversations"
include-method = "DELETE"
checks.positive_data_acceptance.expected-statuses = ["2xx", 401, 403, 404, 409, 422, 429, "5xx"]

# A search refuses what its parameters cannot say: a q of only whitespace, until not after
# since, and the cursor above (a listing's, not a search's; an operation's own parameters here
# made schemathesis drop the global ones for the listings).
[[operations]]
include-path = "/v1/search"
include-method = "GET"
checks.positive_data_acceptance.expected-statuses = ["2xx", 401, 403, 404, 409, 422, 429, "5xx"]

# An upload's form parts are text: schemathesis "breaks" the metadata object by changing a value's
# type, and its multipart encoding turns the broken value back into valid JSON text, which the
# service rightly accepts. Every other check still runs on uploads; tests/integration's file
# tests cover metadata that is not a JSON object.
[[operations]]
include-path = "/v1/conversations/{{conversation_id}}/files"
include-method = "POST"
checks.negative_data_rejection.enabled = false
"""


def run_schemathesis(base: str, key: str, config: Path) -> subprocess.CompletedProcess[str]:
    config.write_text(CONFIG.format(cursor=cursor.encode(datetime.now(UTC), uuid4())))
    return subprocess.run(
        [
            SCHEMATHESIS,
            "--config-file",
            str(config),
            "run",
            f"{base}/schema/openapi.json",
            "--header",
            f"Authorization: Bearer {key}",
            "--max-examples",
            EXAMPLES,
            "--seed",
            SEED,
            # Without replaying examples stored by earlier runs: the same cases every time.
            "--generation-database",
            "none",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def test_the_api_survives_schemathesis(database_url: str, tmp_path: Path) -> None:
    key = asyncio.run(create_key(database_url, ALL_PERMISSIONS))
    port = _free_port()
    # Anonymous access stays off (the default): any well-formed X-Session-ID names a visitor, so
    # no value is "invalid credentials" as the ignored_auth check expects. The ignored_auth probes
    # are failed authentications from one address: unlimited here, or they lock the run out.
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CHATKEEP_JWT_SECRET": JWT_SECRET,
        "CHATKEEP_LOG_LEVEL": "warning",
        "CHATKEEP_FAILED_AUTH_PER_MINUTE": "0",
        # POST /v1/auth/token is in the document only with accounts on.
        "CHATKEEP_ACCOUNTS": "true",
        # Event streams end by themselves after a second, so each call has a whole response.
        "CHATKEEP_EVENTS_MAX_SECONDS": "1",
    }
    process = live.serve(env, port)
    base = f"http://127.0.0.1:{port}"
    try:
        live.wait_ready(base, process)
        fuzz = run_schemathesis(base, key, tmp_path / "schemathesis.toml")
    finally:
        server_output = live.stop(process)
    assert fuzz.returncode == 0, fuzz.stdout[-6000:]
    assert "Traceback" not in server_output, server_output[-4000:]
