"""``GET /api/v1/library/<name>?…``: the library's views (``contract/library.py``), the
same answers as the ``library.<name>`` RPC methods, from query parameters checked by the
same params models."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from musiqued.contract.library import VIEWS
from musiqued.contract.shapes import library_shape
from musiqued.http.common import HttpProblem, validated

if TYPE_CHECKING:
    from musiqued.services.facade import Services

PREFIX = "/api/v1/library"


class LibraryApi:
    def __init__(self, services: Services) -> None:
        self._services = services

    def routes(self) -> list[web.RouteDef]:
        return [web.get(f"{PREFIX}/{{name}}", self.view)]

    async def view(self, request: web.Request) -> web.Response:
        found = VIEWS.get(request.match_info["name"])
        if found is None:
            raise HttpProblem(404, f"the library's views are {', '.join(VIEWS)}")
        model, view, _ = found
        library = self._services.library
        params = validated(model, request.query, context={"zone": library.zone})
        return web.json_response(library_shape(await view(library, params)))
