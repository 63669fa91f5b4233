"""Producer tokens: bearer tokens held as SHA-256 hashes, each with scopes and,
optionally, the sending numbers it may use. Compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from config import ProducerToken
from dispatcher.http.responses import ApiError

BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="producerToken",
    description="A producer token from DISPATCH_TOKENS: `Authorization: Bearer <token>`. "
    "Its scopes (send, read, campaigns, metrics, admin) and numbers decide what it may do.",
)


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

    def require(self, scope: str | None) -> Callable[..., ProducerToken]:
        """A FastAPI dependency: the request's token, which must hold ``scope`` (or admin;
        ``None``: any valid token).
        Declared through HTTPBearer so that OpenAPI names the scheme (Swagger's
        Authorize button); the header is read and refused here, in our words."""

        def dependency(
            request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)]
        ) -> ProducerToken:
            token = self.identify(request)
            if scope is not None and scope not in token.scopes and "admin" not in token.scopes:
                raise ApiError(403, message=f"token '{token.name}' lacks the '{scope}' scope")
            return token

        return dependency


def check_number(token: ProducerToken, number: str | None) -> None:
    """403 unless the token may use ``number`` (tokens without numbers may use any)."""
    if token.numbers is not None and number not in token.numbers:
        raise ApiError(403, message=f"token '{token.name}' may not use number {number}")
