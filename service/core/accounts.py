"""What an account's username, user id and password may be (README "Accounts")."""

from __future__ import annotations

import re

from service.core.errors import InvalidInput

MAX_USERNAME_LENGTH = 255
# No control characters: a username is typed and printed (Python's and JSON Schema's syntax).
USERNAME_PATTERN = "^[^\\u0000-\\u001f\\u007f]+$"
USERNAME_RULE = f"1 to {MAX_USERNAME_LENGTH} characters, none of them a control character"
MAX_USER_ID_LENGTH = 255
MIN_PASSWORD_LENGTH = 8
# Bounds the work one login asks for; far above any password a person types.
MAX_PASSWORD_LENGTH = 1024
NO_NUL_PATTERN = "^[^\\u0000]*$"

_username = re.compile(USERNAME_PATTERN)


def check_username(username: str) -> str:
    if len(username) > MAX_USERNAME_LENGTH or not _username.fullmatch(username):
        raise InvalidInput(f"must be {USERNAME_RULE}", field="username")
    return username


def check_user_id(user_id: str) -> str:
    if not 1 <= len(user_id) <= MAX_USER_ID_LENGTH or "\x00" in user_id:
        raise InvalidInput(
            f"must be 1 to {MAX_USER_ID_LENGTH} characters without NUL", field="user_id"
        )
    return user_id


def check_new_password(password: str) -> str:
    """A password an account may be given (logging in checks only that it matches)."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH or "\x00" in password:
        raise InvalidInput(
            f"must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters without NUL",
            field="password",
        )
    return password
