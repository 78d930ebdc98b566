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
- **Credentials**: every request but the login form and its assets needs one. Scripts send
  ``Authorization: Bearer <token>`` (``[http] token``, or the one the daemon made in its
  state directory). Browsers get a session cookie, either from a one-time link printed by
  ``musiquectl web`` (``GET /login?ticket=``; only users the control socket admits can get
  one) or from the login form (``POST /api/v1/session`` with the token). Sessions are
  random ids held by the daemon (``sessions.py``): HttpOnly, SameSite=Strict, Path=/, with
  an expiry, ended by ``DELETE /api/v1/session`` and, all of them, by a new token. The
  cookie is named after the listener's port: cookies ignore ports, and two daemons on one
  host must not overwrite (or receive) each other's. Wrong tokens and links are throttled
  (``throttle.py``). The token is compared exactly, character for character, wherever it
  is given: the header's scheme may be in any case (``bearer``) and followed by several
  spaces, and what follows them is the token (HTTP drops whitespace at the end of a
  header's value); the login form's ``token`` is taken as sent. A configured token cannot
  start or end with whitespace (the config is refused), so no whitespace difference is
  ever accepted.

Every answer also carries a Content-Security-Policy that allows scripts, styles,
images and connections from this origin only, and no inline script.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import hdrs, web
from yarl import URL

from musiqued.config import is_loopback, parse_listen
from musiqued.http.common import Handler, HttpProblem, json_body
from musiqued.http.sessions import SessionStore
from musiqued.http.throttle import AuthThrottle
from musiqued.services.web_login import LOGIN_PATH, WebLogins

if TYPE_CHECKING:
    from musiqued.config import HttpConfig

COOKIE_PREFIX = "musiqued_session_"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Served to anyone who passes the Host check: the page (or its login form) and its assets.
PUBLIC_GET = ("/", "/settings", "/favicon.svg", LOGIN_PATH)
PUBLIC_PREFIX = "/static/"
SESSION_PATH = "/api/v1/session"
DAY_S = 86400

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


def cookie_name(listen: str) -> str:
    """The session cookie's name on the listener ``listen``: one per port."""
    return f"{COOKIE_PREFIX}{parse_listen(listen)[1]}" if listen else f"{COOKIE_PREFIX}0"


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
    """The checks above, as one middleware, and the login/logout endpoints.

    ``token`` is the one in force: ``[http] token``, or the daemon's generated one."""

    def __init__(
        self, config: HttpConfig, token: str, logins: WebLogins, *, sessions: SessionStore
    ) -> None:
        self._config = config
        self._token = token
        self._logins = logins
        self.throttle = AuthThrottle()
        self.sessions = sessions
        self.sessions.use_token(token)

    def reconfigure(self, config: HttpConfig, token: str) -> None:
        """New settings; a new token ends every session and every login link."""
        if token != self._token:
            self._logins.forget_all()
        self.sessions.use_token(token)
        self._config = config
        self._token = token

    @property
    def cookie(self) -> str:
        return cookie_name(self._config.listen)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(SESSION_PATH, self.login),
            web.delete(SESSION_PATH, self.logout),
            web.get(LOGIN_PATH, self.login_link),
        ]

    # -- the checks ------------------------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.check_host(request)
        if request.method not in SAFE_METHODS or _is_websocket(request):
            self.check_origin(request)
        if not self._public(request) and not self._authenticate(request):
            raise HttpProblem(
                401,
                "missing or wrong credential: send Authorization: Bearer <token>, or open "
                "the page through `musiquectl web`",
                kind="unauthorized",
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

    def has_session(self, request: web.Request) -> bool:
        return self.sessions.valid(request.cookies.get(self.cookie, ""))

    def _authenticate(self, request: web.Request) -> bool:
        """A live session, or the right bearer token (a wrong one is a throttled guess)."""
        if self.has_session(request):
            return True
        given = bearer_token(request.headers.get(hdrs.AUTHORIZATION, ""))
        if given is None:
            return False
        return self._check_guess(request, lambda: _same(given, self._token))

    def _check_guess(self, request: web.Request, guess: Callable[[], bool]) -> bool:
        """``guess()`` unless this client (or everyone) guessed wrong too often lately: then
        429 without looking. A wrong guess is counted."""
        client = request.remote or "?"
        wait = self.throttle.retry_after(client)
        if wait > 0:
            raise HttpProblem(
                429,
                "too many failed authentications; try again later",
                kind="too_many_failures",
                headers={"Retry-After": str(math.ceil(wait))},
            )
        if guess():
            return True
        self.throttle.failed(client)
        return False

    def _public(self, request: web.Request) -> bool:
        path = request.path
        if request.method in SAFE_METHODS:
            return path in PUBLIC_GET or path.startswith(PUBLIC_PREFIX)
        return path == SESSION_PATH

    # -- login / logout ---------------------------------------------------------------------

    def _with_session(self, response: web.StreamResponse) -> web.StreamResponse:
        days = self._config.session_days
        session = self.sessions.create(days * DAY_S)
        response.set_cookie(
            self.cookie,
            session,
            max_age=days * DAY_S,
            httponly=True,
            samesite="Strict",
            path="/",
        )
        return response

    async def login(self, request: web.Request) -> web.StreamResponse:
        """``{"token": "..."}`` → 204 with a session cookie, or 401 (429 when throttled)."""
        body = await json_body(request)
        given = body.get("token")
        if not isinstance(given, str):
            raise HttpProblem(422, "token: a string is required")
        if not self._check_guess(request, lambda: _same(given, self._token)):
            raise HttpProblem(401, "wrong token", kind="wrong_token")
        return self._with_session(web.Response(status=204))

    async def login_link(self, request: web.Request) -> web.StreamResponse:
        """``GET /login?ticket=…`` (from ``musiquectl web``) → a session and the page."""
        ticket = request.query.get("ticket", "")
        if not ticket or not self._check_guess(request, lambda: self._logins.redeem(ticket)):
            raise HttpProblem(
                401,
                "this login link is unknown, used or expired; run `musiquectl web` again",
                kind="wrong_ticket",
            )
        # 303 to the page: the link (and its spent ticket) leaves the address bar.
        return self._with_session(web.Response(status=303, headers={hdrs.LOCATION: "/"}))

    async def logout(self, request: web.Request) -> web.Response:
        self.sessions.revoke(request.cookies.get(self.cookie, ""))
        response = web.Response(status=204)
        response.del_cookie(self.cookie, path="/")
        return response


def _same(given: str, token: str) -> bool:
    return bool(token) and hmac.compare_digest(given.encode(), token.encode())


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
