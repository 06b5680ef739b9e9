"""Read-only roles: an ``auditor`` reads what it may and changes nothing.

Refused in one place, for every route, present and future: any request that could change
state (every method but GET, HEAD and OPTIONS) from a read-only account answers 403
``FORBIDDEN`` before the route runs, so before its body is validated and before anything is
written. Two guards, because an account's role can differ from its token's:

- :class:`ReadOnlyRoleMiddleware` refuses a write presenting a valid access token (bearer or
  the ``sl_access`` cookie) whose ``role`` is read-only, whatever the route, including the
  anonymous ones (register, the payment callbacks);
- :func:`refuse_read_only_write`, called by ``api.auth.current_principal``, refuses a write by
  an account that is read-only now even if its token was issued for another role (an admin
  turned auditor cannot keep writing until its token expires).

The exceptions are the caller's own session and credentials only (:data:`SESSION_WRITES`):
sign in, refresh the token pair, sign out, change its own password; they change no shop data.
Any other write an auditor should make (none today) must be added there too, deliberately.
"""

from __future__ import annotations

import json

from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import ACCESS_COOKIE
from api.errors import ApiError, envelope
from commands.credentials import InvalidJWT, Tokens

#: Roles that may read and never write.
READ_ONLY_ROLES = frozenset({"auditor"})
#: Methods that change nothing.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Writes a read-only account may still send: its own session, nothing else.
SESSION_WRITES = frozenset(
    {
        ("POST", "/api/auth/login"),
        ("POST", "/api/auth/refresh"),
        ("POST", "/api/auth/logout"),
        ("POST", "/api/auth/change-password"),
        ("POST", "/dashboard/login"),
        ("POST", "/dashboard/logout"),
    }
)
MESSAGE = "auditors have read-only access: this request would change something"


def is_read_only(role: str | None) -> bool:
    return role in READ_ONLY_ROLES


def guarded(method: str, path: str) -> bool:
    """Whether a read-only account is refused ``method path``."""
    return method.upper() not in READ_METHODS and (method.upper(), path) not in SESSION_WRITES


def details(role: str) -> dict[str, str]:
    return {"reason": "READ_ONLY_ROLE", "role": role}


def refuse_read_only_write(method: str, path: str, *roles: str) -> None:
    """403 if any of ``roles`` (the account's, the token's) is read-only and this is a write."""
    for role in roles:
        if is_read_only(role) and guarded(method, path):
            raise ApiError(403, "FORBIDDEN", MESSAGE, details(role))


def _presented_token(scope: Scope) -> str | None:
    header = cookie = None
    for name, value in scope.get("headers") or ():
        if name == b"authorization":
            header = value.decode("latin-1")
        elif name == b"cookie":
            cookie = value.decode("latin-1")
    if header is not None:
        scheme, _, token = header.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    if cookie is None:
        return None
    return cookie_parser(cookie).get(ACCESS_COOKIE) or None


class ReadOnlyRoleMiddleware:
    """Answers 403 to a write whose access token names a read-only role (see the module)."""

    def __init__(self, app: ASGIApp, tokens: Tokens) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and guarded(scope["method"], scope["path"]):
            token = _presented_token(scope)
            role = self._role_of(token) if token else None
            if role is not None and is_read_only(role):
                body = json.dumps(envelope("FORBIDDEN", MESSAGE, details(role))).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 403,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    def _role_of(self, token: str) -> str | None:
        """The role of a valid access token; None for anything else (the route answers 401)."""
        try:
            return self.tokens.verify(token, "access").role
        except InvalidJWT:
            return None
