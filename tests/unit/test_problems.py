"""The one mapping from domain errors to problem documents: status, title, field, headers."""

from __future__ import annotations

import asyncpg
import pytest

from service.api.problems import HeadersTooLarge, from_database, from_domain
from service.core import errors


@pytest.mark.parametrize(
    ("error", "status", "title"),
    [
        (errors.ChatkeepError("x"), 400, "Bad request"),
        (errors.Unauthorized("x"), 401, "Unauthorized"),
        (errors.Forbidden("x"), 403, "Forbidden"),
        (errors.conversation_not_found("c1"), 404, "Not found"),
        (errors.Conflict("x"), 409, "Conflict"),
        (errors.PreconditionFailed("x"), 412, "Precondition failed"),
        (errors.TooLarge("x"), 413, "Content too large"),
        (errors.RangeNotSatisfiable("x", size=10), 416, "Range not satisfiable"),
        (errors.InvalidInput("x"), 422, "Invalid input"),
        (HeadersTooLarge("x"), 431, "Request header fields too large"),
        (errors.Unavailable("x"), 503, "Service unavailable"),
    ],
)
def test_each_error_has_its_status(error: errors.ChatkeepError, status: int, title: str) -> None:
    problem = from_domain(error)
    assert (problem.status_code, problem.title) == (status, title)


def test_a_subclass_takes_its_nearest_listed_base() -> None:
    class Gone(errors.NotFound):
        pass

    assert from_domain(Gone("x")).status_code == 404


def test_the_field_and_detail_are_carried() -> None:
    problem = from_domain(errors.conversation_not_found("c1"))
    assert problem.detail == "conversation c1 does not exist"
    assert problem.extra == {"field": "conversation_id"}
    assert from_domain(errors.Conflict("x")).extra is None


@pytest.mark.parametrize(
    ("error", "headers"),
    [
        (errors.Unauthorized("x"), {"WWW-Authenticate": 'Bearer realm="chatkeep"'}),
        (errors.Unavailable("x"), {"Retry-After": "1"}),
        (errors.RangeNotSatisfiable("x", size=10), {"Content-Range": "bytes */10"}),
        (errors.NotFound("x"), None),
    ],
)
def test_problems_carry_the_headers_http_wants(
    error: errors.ChatkeepError, headers: dict[str, str] | None
) -> None:
    assert from_domain(error).headers == headers


@pytest.mark.parametrize(
    "error", [asyncpg.DeadlockDetectedError("deadlock"), asyncpg.SerializationError("conflict")]
)
def test_a_rolled_back_transaction_is_a_503_to_retry(error: Exception) -> None:
    problem = from_database(error)
    assert problem.status_code == 503
    assert problem.headers is not None
    assert "Retry-After" in problem.headers
