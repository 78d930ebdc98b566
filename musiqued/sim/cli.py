"""``musique-sim``: the simulated web services, each a subcommand of one click group.

Each simulator is a ``@main.command`` that takes ``address_options`` (and the shared fault
options), builds its app and hands it to ``serve_until_signal``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click
from aiohttp import web

F = TypeVar("F", bound=Callable[..., None])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Simulated Last.fm, Spotify, AI and ListenBrainz services for tests, demos and benchmarks."""


async def run_until_signal(
    app: web.Application,
    host: str,
    port: int,
    banner: str,
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    """Serve ``app`` (over HTTPS with ``ssl_context``) until SIGINT/SIGTERM."""
    from musiqued.sim.server import bound_port, close_runner, serve

    runner = await serve(app, host, port, ssl_context=ssl_context)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    click.echo(banner.format(port=bound_port(runner)), err=True)
    try:
        await stop.wait()
    finally:
        await close_runner(runner)


def serve_until_signal(
    app: web.Application,
    host: str,
    port: int,
    banner: str,
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    """Run ``app`` in its own event loop until SIGINT/SIGTERM (or Ctrl-C)."""
    from musiqued.sim.server import run

    with contextlib.suppress(KeyboardInterrupt):
        run(run_until_signal(app, host, port, banner, ssl_context))


def server_tls(certfile: Path | None, keyfile: Path | None) -> ssl.SSLContext | None:
    """The HTTPS context for ``--certfile``/``--keyfile``, or None to serve plain HTTP."""
    if certfile is None:
        if keyfile is not None:
            raise click.UsageError("--keyfile needs --certfile")
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise click.BadParameter(
            f"cannot load {certfile}: {exc}", param_hint="--certfile"
        ) from None
    return context


def address_options(default_port: int) -> Callable[[F], F]:
    """``--host`` and ``--port`` of a simulator command."""

    def decorate(command: F) -> F:
        command = click.option(
            "--port", default=default_port, show_default=True, help="0 picks a free port."
        )(command)
        return click.option("--host", default="127.0.0.1", show_default=True)(command)

    return decorate


def fault_rate_option(help_text: str) -> Callable[[F], F]:
    return click.option("--fault-rate", type=float, default=0.0, show_default=True, help=help_text)


HTTP_FAULTS = "Share of requests that fail (5xx, 429 with Retry-After, malformed, reset)."


def retry_after_option(command: F) -> F:
    return click.option(
        "--retry-after",
        type=float,
        default=2.0,
        show_default=True,
        help="Retry-After (s) sent with a simulated 429.",
    )(command)


@main.command()
@address_options(8765)
@click.option("--size", default=20000, show_default=True, help="Scrobbles to generate.")
@click.option("--seed", default=1, show_default=True)
@click.option("--end", type=int, default=None, help="Newest generated scrobble (Unix s).")
@click.option(
    "--history",
    "history_file",
    type=click.Path(exists=True, path_type=Path),
    help="Load the history from a JSON file (our dump or a recorded page).",
)
@click.option("--api-key", default="simkey", show_default=True)
@click.option("--api-secret", default="simsecret", show_default=True)
@click.option("--username", default="simuser", show_default=True)
@click.option("--private", is_flag=True, help="Recent tracks need a session key (error 17).")
@click.option(
    "--rate-limit",
    type=float,
    default=0.0,
    show_default=True,
    help="Requests per second before answering error 29; 0: no limit.",
)
@fault_rate_option("Share of API requests that fail (HTTP 5xx, errors 8/11/16/29, ...).")
@click.option(
    "--faults", "fault_kinds", default="", help="Comma-separated fault kinds (default: all)."
)
@click.option(
    "--force",
    "forced",
    multiple=True,
    metavar="KIND[:PAGE[:COUNT]]",
    help="The next COUNT (default 1) requests, of recent-tracks page PAGE if given, fail "
    "with KIND (repeatable), e.g. short:3 or empty:2:5.",
)
@click.option(
    "--max-limit",
    type=int,
    default=1000,
    show_default=True,
    help="Largest page size accepted (200 is Last.fm's documented maximum).",
)
@click.option(
    "--page-cache-mb",
    type=int,
    default=0,
    show_default=True,
    help="Serve a recent-tracks page asked again from memory, keeping up to this many MB "
    "of them (benchmarks: Last.fm's own CPU is not on its client's machine).",
)
@click.option(
    "--certfile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Serve HTTPS with this certificate chain (PEM); `musiquectl lastfm login` needs it.",
)
@click.option(
    "--keyfile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The certificate's private key (PEM), if not in --certfile.",
)
def lastfm(  # noqa: PLR0917 (click passes every option)
    host: str,
    port: int,
    size: int,
    seed: int,
    end: int | None,
    history_file: Path | None,
    api_key: str,
    api_secret: str,
    username: str,
    private: bool,
    rate_limit: float,
    fault_rate: float,
    fault_kinds: str,
    forced: tuple[str, ...],
    max_limit: int,
    page_cache_mb: int,
    certfile: Path | None,
    keyfile: Path | None,
) -> None:
    """Simulated Last.fm API at http://HOST:PORT/2.0/ with an admin API under /admin/.

    With --certfile it serves HTTPS instead, which web auth (pylast) needs; the daemon then
    trusts the certificate's CA through SSL_CERT_FILE.

    \b
    Example:
      musique-sim lastfm --port 8765 --size 20000 --seed 1
    """
    tls = server_tls(certfile, keyfile)
    from musiqued.sim.history import History
    from musiqued.sim.lastfm import API_PATH, LastfmSim, Settings, make_app

    settings = Settings(
        api_key=api_key,
        api_secret=api_secret,
        username=username,
        private=private,
        rate_limit=rate_limit,
        max_limit=max_limit,
        page_cache_mb=page_cache_mb,
    )
    if history_file is not None:
        sim = LastfmSim.from_file(history_file, settings)
    else:
        sim = LastfmSim(History.generate(seed, size, end), settings)
    kinds = [k.strip() for k in fault_kinds.split(",") if k.strip()]
    try:
        sim.faults.configure(rate=fault_rate, kinds=kinds or None)
        for spec in forced:
            kind, page, count = _forced_fault(spec)
            sim.faults.force(kind, count, page)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    scheme = "https" if tls is not None else "http"
    banner = (
        f"simulated Last.fm: {scheme}://{host}:{{port}}{API_PATH} user "
        f"{sim.settings.username!r}, {len(sim.history)} scrobbles, api_key {api_key!r} "
        "(admin API under /admin/)"
    )
    serve_until_signal(make_app(sim), host, port, banner, tls)


def _forced_fault(spec: str) -> tuple[str, int | None, int]:
    """``KIND[:PAGE[:COUNT]]`` → (kind, page or None, count)."""
    kind, _, rest = spec.partition(":")
    page_text, _, count_text = rest.partition(":")
    try:
        page = int(page_text) if page_text else None
        count = int(count_text) if count_text else 1
    except ValueError:
        raise ValueError(f"--force {spec!r}: PAGE and COUNT are whole numbers") from None
    return kind, page, count


@main.command()
@address_options(8766)
@click.option("--client-id", default="simclient", show_default=True)
@click.option("--client-secret", default="simclientsecret", show_default=True)
@click.option("--token-ttl", default=3600, show_default=True, help="Access token lifetime (s).")
@fault_rate_option(HTTP_FAULTS)
@retry_after_option
def spotify(  # noqa: PLR0917 (click passes every option)
    host: str,
    port: int,
    client_id: str,
    client_secret: str,
    token_ttl: int,
    fault_rate: float,
    retry_after: float,
) -> None:
    """Simulated Spotify Web API: POST /api/token and GET /v1/search (album, artist).

    \b
    Configure musiqued with:
      [spotify] api_url = "http://HOST:PORT/v1/"  token_url = "http://HOST:PORT/api/token"
    """
    from musiqued.sim.spotify import API_PREFIX, TOKEN_PATH, Credentials, SpotifySim, make_app

    sim = SpotifySim(Credentials(client_id, client_secret), token_ttl=token_ttl)
    sim.faults.configure(rate=fault_rate, retry_after=retry_after)
    banner = (
        f"simulated Spotify: api_url http://{host}:{{port}}{API_PREFIX} token_url "
        f"http://{host}:{{port}}{TOKEN_PATH} client_id {client_id!r} (admin API under /admin/)"
    )
    serve_until_signal(make_app(sim), host, port, banner)


@main.command()
@address_options(8767)
@click.option(
    "--api-key",
    default="simaikey",
    show_default=True,
    help="Bearer key expected; empty accepts any.",
)
@click.option(
    "--model",
    "models",
    multiple=True,
    default=("sim-llm",),
    show_default=True,
    help="Model names served (repeatable).",
)
@fault_rate_option(HTTP_FAULTS)
@retry_after_option
def ai(  # noqa: PLR0917 (click passes every option)
    host: str,
    port: int,
    api_key: str,
    models: tuple[str, ...],
    fault_rate: float,
    retry_after: float,
) -> None:
    """Simulated OpenAI-compatible chat completions (EurIA's URL shape works too).

    \b
    Configure musiqued with:
      [ai] api_url = "http://HOST:PORT/1/ai/1/openai/chat/completions"  model = "sim-llm"
    """
    from musiqued.sim.ai import AiSim, make_app

    sim = AiSim(api_key=api_key, models=models)
    sim.faults.configure(rate=fault_rate, retry_after=retry_after)
    banner = (
        f"simulated AI: http://{host}:{{port}}/1/ai/1/openai/chat/completions (any path ending "
        f"/chat/completions), models {list(models)} (admin API under /admin/)"
    )
    serve_until_signal(make_app(sim), host, port, banner)


@main.command()
@address_options(8768)
@click.option(
    "--token",
    "tokens",
    multiple=True,
    default=("simlbtoken:simuser",),
    show_default=True,
    metavar="TOKEN:USER",
    help="A user token the server accepts and the user it belongs to (repeatable).",
)
@click.option(
    "--limit", default=50, show_default=True, help="Requests per window for a valid token."
)
@click.option(
    "--ip-limit", default=30, show_default=True, help="Requests per window without a token."
)
@click.option("--window", default=10, show_default=True, help="Seconds per rate-limit window.")
@click.option(
    "--count-only",
    is_flag=True,
    help="Count the listens received without keeping them (a long bench): /admin/stats "
    "counts them, /admin/listens lists none.",
)
@fault_rate_option(HTTP_FAULTS)
@retry_after_option
def listenbrainz(  # noqa: PLR0917 (click passes every option)
    host: str,
    port: int,
    tokens: tuple[str, ...],
    limit: int,
    ip_limit: int,
    window: int,
    count_only: bool,
    fault_rate: float,
    retry_after: float,
) -> None:
    """Simulated ListenBrainz API: POST /1/submit-listens and GET /1/validate-token.

    It checks submissions as ListenBrainz does and sends its X-RateLimit-* headers.

    \b
    Configure musiqued with:
      [listenbrainz] enabled = true  api_url = "http://HOST:PORT/"  token = "TOKEN"
    """
    from musiqued.sim.listenbrainz import ListenBrainzSim, Settings

    pairs = []
    for spec in tokens:
        token, sep, user = spec.partition(":")
        if not sep or not token or not user or " " in token:
            raise click.BadParameter(f"{spec!r} is not TOKEN:USER", param_hint="--token")
        pairs.append((token, user))
    try:
        settings = Settings(
            tokens=tuple(pairs),
            limit=limit,
            ip_limit=ip_limit,
            window=window,
            keep_listens=not count_only,
        )
        sim = ListenBrainzSim(settings)
        sim.faults.configure(rate=fault_rate, retry_after=retry_after)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    from musiqued.sim.listenbrainz import make_app

    users = ", ".join(f"{user!r}" for _, user in pairs)
    banner = (
        f"simulated ListenBrainz: api_url http://{host}:{{port}}/ users {users}, "
        f"{limit} requests per {window} s per token (admin API under /admin/)"
    )
    serve_until_signal(make_app(sim), host, port, banner)
