"""The simulated Last.fm's admin API (JSON under ``/admin/``), for tests and demos.

The table of routes is in ``musiqued.sim.lastfm``'s docstring and in the README.
"""

from __future__ import annotations

import asyncio
from dataclasses import fields
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from musiqued.sim.history import scrobble_row

if TYPE_CHECKING:
    from musiqued.models import Scrobble
    from musiqued.sim.lastfm import LastfmSim


def _json(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json", charset="utf-8")


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        data = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        raise web.HTTPBadRequest(text="the body is not JSON") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="a JSON object is expected")
    return data


def _rows(scrobbles: list[Scrobble]) -> list[dict[str, Any]]:
    return [scrobble_row(s) for s in scrobbles]


def admin_routes(sim: LastfmSim) -> list[web.RouteDef]:
    """The admin handlers, bound to ``sim``."""

    async def stats(_: web.Request) -> web.Response:
        return _json(orjson.dumps(sim.stats_dict()))

    async def scrobbles(request: web.Request) -> web.Response:
        if request.method == "GET":
            return _json(orjson.dumps(_rows(sim.scrobbles())))
        data = await _body(request)
        if "scrobbles" in data:
            added = sim.add_rows(list(data["scrobbles"]))
        else:
            added = sim.add_scrobbles(
                int(data.get("n", 1)), data.get("at"), float(data.get("back_days", 0))
            )
        return _json(orjson.dumps({"added": _rows(added)}))

    async def now_playing(request: web.Request) -> web.Response:
        if request.method == "DELETE":
            sim.clear_now_playing()
        else:
            data = await _body(request)
            sim.set_now_playing(str(data["artist"]), str(data["title"]), str(data.get("album", "")))
        return _json(b'{"status":"ok"}')

    async def faults(request: web.Request) -> web.Response:
        data = await _body(request)
        force = data.pop("force", None)
        count = data.pop("count", 1)
        page = data.pop("page", None)
        try:
            if data.pop("clear", False):
                sim.faults.clear()
            if force is not None:
                sim.faults.force(str(force), int(count), None if page is None else int(page))
            if data:
                sim.faults.configure(**data)
        except (TypeError, ValueError) as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        plan = sim.faults.plan
        return _json(
            orjson.dumps(
                {"rate": plan.rate, "kinds": list(plan.kinds), "forced": sim.faults.forced()}
            )
        )

    async def reset(request: web.Request) -> web.Response:
        data = await _body(request)
        # Generating a large history takes a while: not on the loop that serves the API.
        await asyncio.to_thread(
            sim.reset, int(data.get("size", 0)), int(data.get("seed", 1)), data.get("end")
        )
        return _json(orjson.dumps({"scrobbles": len(sim.history)}))

    async def settings(request: web.Request) -> web.Response:
        data = await _body(request)
        try:
            changed = sim.configure(**data)
        except (TypeError, ValueError) as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        public = {f.name: getattr(changed, f.name) for f in fields(changed)}
        public.pop("api_secret")
        return _json(orjson.dumps(public))

    return [
        web.get("/admin/stats", stats),
        web.route("*", "/admin/scrobbles", scrobbles),
        web.route("*", "/admin/now_playing", now_playing),
        web.post("/admin/faults", faults),
        web.post("/admin/reset", reset),
        web.post("/admin/settings", settings),
    ]
