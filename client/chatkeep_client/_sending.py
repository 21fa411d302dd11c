"""What the two clients share around sending: credentials, URLs, and the retry decisions for
one call's attempts (the loops themselves differ only in awaiting)."""

from __future__ import annotations

from typing import Any, NoReturn

import httpx

from chatkeep_client._call import Call
from chatkeep_client.errors import ConnectionFailed, from_response
from chatkeep_client.retry import NOT_SENT, Retry

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = 30.0
USER_AGENT = "chatkeep-client/0.1"


def credential_headers(
    api_key: str | None, token: str | None, session_id: str | None
) -> dict[str, str]:
    """An API key or a user token (both are bearer credentials), and/or a visitor's id."""
    if api_key is not None and token is not None:
        raise ValueError("pass api_key or token, not both")
    headers = {"User-Agent": USER_AGENT}
    bearer = api_key if api_key is not None else token
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    if session_id is not None:
        headers["X-Session-ID"] = session_id
    return headers


class Attempts:
    """The attempts at one call: after each failure or error answer, whether to try again and
    after how long."""

    def __init__(self, retry: Retry, call: Call[Any]) -> None:
        self.retry = retry
        self.call = call
        self.count = 0
        # An earlier attempt may have been carried out (its answer was lost).
        self.maybe_done = False

    def delay_after(self, error: httpx.TransportError) -> float:
        """Seconds to wait before the next attempt; raises ConnectionFailed when there is none."""
        delay = (
            self.retry.after_failure(self.count, error, self.call.idempotent)
            if self.call.resendable
            else None
        )
        if delay is None:
            raise ConnectionFailed(
                f"{self.call.method} {self.call.path}: {type(error).__name__}: {error}"
            ) from error
        self.maybe_done = self.maybe_done or not isinstance(error, NOT_SENT)
        self.count += 1
        return delay

    def settled(self, response: httpx.Response) -> bool:
        """Whether the response is the call's success (a 404 for a DELETE whose earlier attempt
        may have deleted it counts)."""
        return response.status_code < 400 or (
            self.call.gone_is_done and self.maybe_done and response.status_code == 404
        )

    def delay_before_retry(self, response: httpx.Response) -> float | None:
        """Seconds to wait before sending again after an error answer; None: it is final."""
        if not self.call.resendable:
            return None
        delay = self.retry.after_response(self.count, response)
        if delay is not None:
            self.count += 1
        return delay


def raise_for(response: httpx.Response) -> NoReturn:
    """The error an error answer (read already) stands for."""
    raise from_response(response)


def url(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + path
