"""The operator dashboard: a static single-page application served by the API server.

``/`` is its page and ``/ui/...`` its scripts, styles and vendored libraries (``static/``, see
``static/vendor/VENDORED.txt``): plain HTML, ES modules and CSS, shipped inside the package, so
it needs no build step and no Internet access. Loading it needs no token; everything it shows
comes from the REST API with the operator's bearer token, which the page asks for.

Every response carries a Content-Security-Policy that allows only this server's scripts and
styles (no inline script; images may also come from an https tile server the operator sets for
the map), ``X-Content-Type-Options: nosniff``, and ``Cache-Control: no-cache`` so a browser
revalidates (ETag) and picks up a new version after an upgrade.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Response, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.response import File
from litestar.static_files import create_static_files_router

from chargegrid.entrypoints.api.auth import PUBLIC

STATIC = Path(__file__).parent / "static"
ASSETS = "/ui"

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: https:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
_CACHE = CacheControlHeader(no_cache=True)


async def _secure(response: Response[Any]) -> Response[Any]:
    for name, value in HEADERS.items():
        response.headers[name] = value
    return response


@get(
    "/",
    opt={PUBLIC: True},
    include_in_schema=False,
    cache_control=_CACHE,
    after_request=_secure,
    sync_to_thread=False,
)
def index() -> File:
    """The dashboard's page."""
    return File(
        STATIC / "index.html",
        filename="index.html",
        media_type="text/html",
        content_disposition_type="inline",
    )


def routes() -> list[Any]:
    """The dashboard's routes, for the API application."""
    assets: Router = create_static_files_router(
        ASSETS,
        directories=[STATIC],
        name="dashboard",
        opt={PUBLIC: True},
        include_in_schema=False,
        cache_control=_CACHE,
        after_request=_secure,
    )
    return [index, assets]
