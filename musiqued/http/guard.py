"""What keeps a page served on localhost safe from the rest of the web.

A browser lets any page it shows send requests to ``http://127.0.0.1:8000``; three defences:

- **DNS rebinding**: a page at ``evil.example`` whose name is made to resolve to 127.0.0.1
  becomes "same-origin" with us, but its requests still say ``Host: evil.example``. On a
  loopback listener only loopback names and addresses are accepted as ``Host`` (any port:
  an SSH tunnel may forward another one). Off loopback a token is required anyway, and a
  rebound page never has its cookie.
- **Cross-site requests**: a form or ``fetch`` elsewhere can POST here, and a WebSocket
  can be opened from any page. Every state-changing request and the WebSocket handshake
  must come from this origin: its ``Origin`` (or, without one, ``Sec-Fetch-Site``) must
  say so. Requests with neither (curl, scripts) are not from a browser and pass.
- **The token** (``[http] token``): ``Authorization: Bearer`` for scripts; for the page, a
  cookie set by its login form (a browser cannot put a header on a WebSocket). The cookie
  is HttpOnly and SameSite=Strict, and its value is derived from the token, so a new
  token logs every browser out. Without a valid one, only the login form is served.
  The token is compared exactly, character for character, wherever it is given: the
  header's scheme may be in any case (``bearer``) and followed by several spaces, and what
  follows them is the token (HTTP drops whitespace at the end of a header's value); the
  login form's ``token`` is taken as sent. A configured token cannot start or end with
  whitespace (the config is refused), so no whitespace difference is ever accepted.

Every answer also carries a Content-Security-Policy that allows scripts, styles,
images and connections from this origin only, and no inline script.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from typing import TYPE_CHECKING

from aiohttp import hdrs, web
from yarl import URL

from musiqued.config import is_loopback, parse_listen
from musiqued.http.common import Handler, HttpProblem, json_body

if TYPE_CHECKING:
    from musiqued.config import HttpConfig

COOKIE = "musiqued_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Served to anyone who passes the Host check: the page (or its login form) and its assets.
PUBLIC_GET = ("/", "/settings", "/favicon.svg")
PUBLIC_PREFIX = "/static/"
SESSION_PATH = "/api/v1/session"
# A wrong token costs this long, which makes guessing it slow.
FAILED_LOGIN_DELAY_S = 0.3

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def session_value(token: str) -> str:
    """The cookie's value for ``token``: proves the token was given, without holding it."""
    return hmac.new(token.encode(), b"musiqued page session v1", hashlib.sha256).hexdigest()


def request_host(request: web.Request) -> str | None:
    """The host named by the request's ``Host`` header, lower-case, without port or []."""
    header = request.headers.get(hdrs.HOST, "")
    if not header:
        return None
    try:
        return URL(f"http://{header}").host
    except ValueError:
        return None


def is_loopback_name(host: str) -> bool:
    # Browsers resolve *.localhost to loopback themselves, never through DNS.
    return is_loopback(host) or host.endswith(".localhost")


class Guard:
    """The checks above, as one middleware, and the login/logout endpoints."""

    def __init__(self, config: HttpConfig) -> None:
        self._config = config

    def reconfigure(self, config: HttpConfig) -> None:
        self._config = config

    @property
    def token(self) -> str:
        return self._config.token.get_secret_value()

    def routes(self) -> list[web.RouteDef]:
        return [web.post(SESSION_PATH, self.login), web.delete(SESSION_PATH, self.logout)]

    # -- the checks ------------------------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.check_host(request)
        if request.method not in SAFE_METHODS or _is_websocket(request):
            self.check_origin(request)
        if not self._public(request) and not self.authenticated(request):
            raise HttpProblem(
                401,
                "missing or wrong token: send Authorization: Bearer <token>, or log in on the page",
                headers={"WWW-Authenticate": 'Bearer realm="musiqued"'},
            )
        return await handler(request)

    def check_host(self, request: web.Request) -> None:
        listen_host = parse_listen(self._config.listen)[0] if self._config.listen else ""
        if not listen_host or not is_loopback(listen_host):
            return
        host = request_host(request)
        if host is None or not is_loopback_name(host):
            raise HttpProblem(
                403,
                f"Host {request.headers.get(hdrs.HOST, '')!r} is not a loopback name; this "
                "daemon answers only as localhost or 127.0.0.1 (a DNS rebinding attempt?)",
                kind="foreign_host",
            )

    def check_origin(self, request: web.Request) -> None:
        origin = request.headers.get(hdrs.ORIGIN)
        if origin is not None:
            own = f"{request.scheme}://{request.headers.get(hdrs.HOST, '')}"
            if origin.lower() != own.lower():
                raise HttpProblem(
                    403,
                    f"cross-origin request refused: Origin {origin!r} is not {own!r}",
                    kind="cross_origin",
                )
            return
        site = request.headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            raise HttpProblem(
                403, f"cross-site request refused (Sec-Fetch-Site: {site})", kind="cross_origin"
            )

    def authenticated(self, request: web.Request) -> bool:
        token = self.token
        if not token:
            return True
        given = bearer_token(request.headers.get(hdrs.AUTHORIZATION, ""))
        if given is not None and hmac.compare_digest(given.encode(), token.encode()):
            return True
        cookie = request.cookies.get(COOKIE, "")
        return hmac.compare_digest(cookie.encode(), session_value(token).encode())

    def _public(self, request: web.Request) -> bool:
        path = request.path
        if request.method in SAFE_METHODS:
            return path in PUBLIC_GET or path.startswith(PUBLIC_PREFIX)
        return path == SESSION_PATH

    # -- login / logout ---------------------------------------------------------------------

    async def login(self, request: web.Request) -> web.Response:
        """``{"token": "..."}`` → 204 with the session cookie, or 401."""
        token = self.token
        body = await json_body(request)
        given = body.get("token")
        if not isinstance(given, str):
            raise HttpProblem(422, "token: a string is required")
        if not token:
            return web.Response(status=204)
        if not hmac.compare_digest(given.encode(), token.encode()):
            await asyncio.sleep(FAILED_LOGIN_DELAY_S)
            raise HttpProblem(401, "wrong token", kind="wrong_token")
        response = web.Response(status=204)
        response.set_cookie(
            COOKIE, session_value(token), httponly=True, samesite="Strict", path="/"
        )
        return response

    async def logout(self, _: web.Request) -> web.Response:
        response = web.Response(status=204)
        response.del_cookie(COOKIE, path="/")
        return response


def bearer_token(authorization: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` value, exactly as sent, or None.

    The scheme is case-insensitive (RFC 9110) and the spaces after it are a separator, not
    part of the token; a tab there is not a separator, so the token would start with it."""
    scheme, separator, rest = authorization.partition(" ")
    if not separator or scheme.lower() != "bearer":
        return None
    return rest.lstrip(" ")


def _is_websocket(request: web.Request) -> bool:
    return request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"


async def add_security_headers(_: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: every answer (pages, JSON, errors, the WebSocket handshake).

    Also ``Cache-Control: no-cache`` unless set: answers change with the daemon's state, and
    the page's files with its version."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Cache-Control", "no-cache")
