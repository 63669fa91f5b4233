"""Producer tokens: bearer tokens held as SHA-256 hashes, each with scopes and,
optionally, the sending numbers it may use. Compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from fastapi import Request

from config import ProducerToken
from dispatcher.http.responses import ApiError


class Authenticator:
    def __init__(self, tokens: tuple[ProducerToken, ...]) -> None:
        self._tokens = tokens

    def identify(self, request: Request) -> ProducerToken:
        """The token of the request, or 401."""
        header = request.headers.get("authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise ApiError(401, message="Bearer token required (Authorization: Bearer <token>)")
        digest = hashlib.sha256(presented.strip().encode()).hexdigest()
        found = None
        for token in self._tokens:  # every hash is compared: no early exit to time
            if hmac.compare_digest(digest, token.sha256):
                found = token
        if found is None:
            raise ApiError(401, message="Invalid token")
        return found

    def require(self, scope: str) -> Callable[[Request], ProducerToken]:
        """A FastAPI dependency: the request's token, which must hold ``scope`` (or admin)."""

        def dependency(request: Request) -> ProducerToken:
            token = self.identify(request)
            if scope not in token.scopes and "admin" not in token.scopes:
                raise ApiError(403, message=f"token '{token.name}' lacks the '{scope}' scope")
            return token

        return dependency


def check_number(token: ProducerToken, number: str | None) -> None:
    """403 unless the token may use ``number`` (tokens without numbers may use any)."""
    if token.numbers is not None and number not in token.numbers:
        raise ApiError(403, message=f"token '{token.name}' may not use number {number}")
