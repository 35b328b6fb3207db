"""The Litestar application: routes, authentication, OpenAPI document, error responses.

``/api/v1/openapi.json`` is the OpenAPI 3.1 document and ``/api/v1/docs`` its interactive viewer;
both, with ``/health`` and ``/ready``, need no token. Errors are JSON
``{"status_code", "detail", "extra"?}`` with the HTTP status that says what went wrong (see each
route's documentation), and every 5xx is logged. The document lists every status a route can
answer, and says all the API refuses as invalid (400): what Litestar leaves out of it is added
when the application is built (:func:`_documented`, :func:`_refine`).
"""

from __future__ import annotations

from collections.abc import Iterable
from copy import copy
from pathlib import Path
from typing import Any

import msgspec
import structlog
from litestar import Litestar, Request, Response, Router, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.enums import ParamType
from litestar.exceptions import HTTPException, ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import (
    Components,
    OpenAPI,
    OpenAPIType,
    Operation,
    Parameter,
    Schema,
    SecurityScheme,
)
from litestar.static_files import create_static_files_router
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from chargegrid import __version__
from chargegrid.domain.access import Role
from chargegrid.entrypoints.api import (
    access,
    commands,
    events,
    firmware,
    message_log,
    metrics,
    oscp,
    overview,
    reservations,
    schemas,
    security,
    sites,
    stations,
    token_groups,
    tokens,
    transactions,
    webhooks,
)
from chargegrid.entrypoints.api.auth import PUBLIC, BearerAuth, role_guard
from chargegrid.entrypoints.api.context import ApiContext, Ctx
from chargegrid.entrypoints.api.schemas import ApiError
from chargegrid.entrypoints.dashboard import ASSETS as DASHBOARD_ASSETS
from chargegrid.entrypoints.dashboard import routes as dashboard_routes

log = structlog.get_logger(__name__)

API = "/api/v1"
DOCS = f"{API}/docs"
STATIC = "/static"


@get(f"{API}/openapi.json", opt={PUBLIC: True}, include_in_schema=False, sync_to_thread=False)
def openapi_document(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """The OpenAPI document (also at /api/v1/docs/openapi.json, where Litestar serves it)."""
    return Response(request.app.openapi_schema.to_schema())


@get("/health", opt={PUBLIC: True}, summary="The process is up", include_in_schema=True)
async def health() -> dict[str, str]:
    return {"status": "ok"}


@get(
    "/ready",
    opt={PUBLIC: True},
    summary="The node serves stations and the database answers",
    responses={
        503: ResponseSpec(
            dict[str, str], description="The database does not answer", generate_examples=False
        )
    },
)
async def ready(ctx: Ctx) -> Response[dict[str, str]]:
    try:
        await ctx.store.list_api_tokens()
    except Exception as exc:  # any failure to read means not ready
        log.warning("not ready", error=repr(exc))
        return Response({"status": "database unavailable"}, status_code=503)
    return Response({"status": "ready"})


#: What an error status means on every route that can answer it.
ERRORS = {
    400: "The request does not follow this document: a parameter or the body is invalid",
    401: "No bearer token, or an unknown or revoked one",
    403: "The token's role does not allow this",
    404: "No such record",
}

#: What a route that sends an operation to a station can also answer (commands.http_errors).
SENT = {
    502: "The station answered with a CALLERROR (extra: code, description, details)",
    504: "The station did not answer in time",
}

#: The error statuses particular to some routes (each route's documentation says when).
ROUTE_ERRORS: dict[HTTPRouteHandler, dict[int, str]] = {
    stations.register_station: {
        409: "A station with this id exists",
        422: "The password breaks the password rules",
    },
    stations.update_station: {422: "The password breaks the password rules"},
    commands.operations: {409: "The station is not connected"},
    commands.send_command: {
        409: "The station is not connected",
        422: "The payload fails the version's schema, or the operation is unknown (extra.errors)",
        **SENT,
    },
    security.raise_security_profile: {
        409: "The station is not connected, a prerequisite is missing, or the station declined"
        " a step (extra.steps)",
        422: "A fallback slot is out of range, or a step's payload fails the version's schema"
        " (extra.errors)",
        **SENT,
    },
    firmware.update_firmware: {
        409: "The station is not connected",
        422: "The signing certificate or signature is unusable, retries or retry_interval is"
        " out of range, or the payload fails the version's schema (extra.errors)",
        **SENT,
    },
    sites.put_site: {
        409: "An EVSE of the site is on another site",
        422: "The site breaks a rule (the message says which)",
    },
    sites.put_circuit: {422: "The site would break a rule (the message says which)"},
    sites.delete_circuit: {422: "Circuits or EVSEs are still on the circuit"},
    sites.put_evse: {
        409: "The EVSE is on another site",
        422: "The site would break a rule (the message says which)",
    },
    sites.put_limits: {422: "A circuit the site does not have"},
    oscp.add_peer: {
        409: "A peer with this id exists",
        422: "A group names a site or circuit that does not exist",
    },
    tokens.create_token: {
        409: "An id token with this value exists",
        422: "A MacAddress token whose value is no MAC address",
    },
    tokens.update_token: {422: "kind MacAddress for a value that is no vehicle MAC"},
    tokens.import_tokens: {422: "The CSV has errors, nothing was imported (extra.errors)"},
    reservations.make_reservation: {
        404: "No such station",
        409: "The station is not connected, or answered other than Accepted (extra.status)",
        422: "The payload fails the version's schema (extra.errors), or asks for what the"
        " station's version lacks",
        **SENT,
    },
    reservations.cancel_reservation: {
        409: "The reservation is no longer Accepted, or the station is not connected",
        422: "The request fails the version's schema (extra.errors)",
        **SENT,
    },
}


def _documented(handlers: Iterable[HTTPRouteHandler]) -> list[HTTPRouteHandler]:
    """Copies of routes that need a token, with every error they can answer in the document.

    That is 400 (every route checks the path and query for NUL: :func:`_refuse_nul`), 401, 403
    where a role can be refused, 404 where the path names a record, and what
    :data:`ROUTE_ERRORS` lists, each with an :class:`ApiError` body. Routes' own
    ``responses=`` win.
    """
    documented = []
    for handler in handlers:
        needed: Role = handler.opt.get("role", Role.VIEWER)
        statuses = {400: ERRORS[400], 401: ERRORS[401]}
        if any(not role.allows(needed) for role in Role):
            statuses[403] = ERRORS[403]
        if any("{" in path for path in handler.paths):
            statuses[404] = ERRORS[404]
        statuses.update(ROUTE_ERRORS.get(handler, {}))
        responses: dict[int, ResponseSpec] = {
            status: ResponseSpec(ApiError, description=text, generate_examples=False)
            for status, text in sorted(statuses.items())
        }
        route = copy(handler)  # as Litestar registers it; the module's handler stays as it is
        route.responses = {**responses, **(handler.responses or {})}
        documented.append(route)
    return documented


async def _refuse_nul(request: Request[Any, Any, Any]) -> None:
    """400 for a NUL character in the path or the query (``%00``): no record can have one
    (PostgreSQL text cannot hold it), and a database asked for it would fail (500)."""
    if "\x00" in request.scope["path"] or b"%00" in request.scope["query_string"]:
        raise ValidationException("the path and the query cannot have a NUL character (%00)")


def _refine(document: OpenAPI) -> None:
    """What Litestar does not say of the API by itself in the document it builds."""
    _strict_bodies(document)
    for path_item in (document.paths or {}).values():
        for method in ("get", "put", "post", "patch", "delete"):
            operation: Operation | None = getattr(path_item, method)
            for parameter in (operation.parameters or []) if operation else []:
                if isinstance(parameter, Parameter) and isinstance(parameter.schema, Schema):
                    _text_parameter(parameter.param_in, parameter.schema)


def _text_parameter(where: ParamType | str, schema: Schema) -> None:
    """The pattern of the text :func:`_refuse_nul` and the router accept: no NUL, and in a
    path, no "/" (``%2F`` is decoded before routing, so the path would name another route).

    And the format of an optional text parameter (``QueryParameter(format=...)``) on its text
    option: Litestar puts it beside the ``oneOf`` of text and null, where it says nothing."""
    options = [s for s in schema.one_of or [] if isinstance(s, Schema)]
    if schema.format and options:
        for option in options:
            if option.type == OpenAPIType.STRING:
                option.format = schema.format
        schema.format = None
    for option in [schema, *options]:
        if option.type == OpenAPIType.STRING and not (
            option.pattern or option.format or option.enum
        ):
            option.pattern = r"^[^/\x00]+$" if where == ParamType.PATH else schemas.NO_NUL


def _strict_bodies(document: OpenAPI) -> None:
    """``additionalProperties: false`` on the request bodies that refuse unknown fields.

    msgspec refuses them (400) for the structs made with ``forbid_unknown_fields``, but Litestar
    does not say so in their schemas, so the document would promise that any extra field does.
    """
    components = document.components.schemas
    declared = {
        **vars(schemas),
        **vars(reservations),
        **vars(security),
        **vars(firmware),
        **vars(sites),
        **vars(oscp),
    }  # the modules with request structs
    for name, struct in declared.items():
        if (
            isinstance(struct, type)
            and issubclass(struct, msgspec.Struct)
            and struct.__struct_config__.forbid_unknown_fields
            and name in components
        ):
            components[name].additional_properties = False


def _internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[ApiError]:
    log.error("API request failed", method=request.method, path=request.url.path, exc_info=exc)
    return Response(
        ApiError(HTTP_500_INTERNAL_SERVER_ERROR, "internal error"),
        status_code=HTTP_500_INTERNAL_SERVER_ERROR,
    )


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[ApiError]:
    if exc.status_code >= 500:
        log.error(
            "API request failed", path=request.url.path, status=exc.status_code, detail=exc.detail
        )
    return Response(
        ApiError(exc.status_code, exc.detail, exc.extra or None),
        status_code=exc.status_code,
        headers=exc.headers,
    )


def create_api(ctx: Ctx) -> Litestar:
    def provide_ctx(state: State) -> ApiContext:
        context: ApiContext = state.ctx
        return context

    v1 = Router(
        API,
        route_handlers=[
            Router(
                "/stations",
                route_handlers=_documented(
                    [
                        *stations.handlers,
                        *message_log.handlers,
                        *commands.handlers,
                        *security.handlers,
                        *firmware.handlers,
                    ]
                ),
                tags=["stations"],
            ),
            Router("/tokens", route_handlers=_documented(tokens.handlers), tags=["id tokens"]),
            Router(
                "/token-groups",
                route_handlers=_documented(token_groups.handlers),
                tags=["id tokens"],
            ),
            Router(
                "/transactions",
                route_handlers=_documented(transactions.handlers),
                tags=["transactions"],
            ),
            Router("/api-tokens", route_handlers=_documented(access.handlers), tags=["API tokens"]),
            Router("/events", route_handlers=_documented(events.handlers), tags=["events"]),
            Router("/webhooks", route_handlers=_documented(webhooks.handlers), tags=["webhooks"]),
            Router(
                "/reservations",
                route_handlers=_documented(reservations.handlers),
                tags=["reservations"],
            ),
            Router("/sites", route_handlers=_documented(sites.handlers), tags=["load balancing"]),
            Router("/oscp", route_handlers=_documented(oscp.handlers), tags=["load balancing"]),
            Router("/", route_handlers=_documented(overview.handlers), tags=["dashboard"]),
            Router(
                "/",
                route_handlers=_documented([security.certificate_authority]),
                tags=["certificates"],
            ),
        ],
        security=[{"bearer": []}],
        before_request=_refuse_nul,
    )
    openapi = OpenAPIConfig(
        title="chargegrid",
        version=__version__,
        description="The REST API of the chargegrid charging station management system.",
        # Litestar's document routes include a catch-all under their path that answers HTML:
        # kept under /docs, so an unknown /api/v1/... gets the API's JSON 404.
        path=DOCS,
        render_plugins=[
            # Served from the package (static/swagger-ui, see VENDORED.txt), not a CDN: the
            # documentation works on a site without Internet access.
            SwaggerRenderPlugin(
                path="/",
                js_url=f"{STATIC}/swagger-ui/swagger-ui-bundle.js",
                css_url=f"{STATIC}/swagger-ui/swagger-ui.css",
                standalone_preset_js_url=f"{STATIC}/swagger-ui/swagger-ui-standalone-preset.js",
                favicon="",
            )
        ],
        components=Components(
            security_schemes={
                "bearer": SecurityScheme(type="http", scheme="bearer", description="an API token")
            }
        ),
    )
    app = Litestar(
        route_handlers=[
            v1,
            openapi_document,
            health,
            ready,
            *_documented([metrics.metrics]),
            create_static_files_router(
                STATIC,
                directories=[Path(__file__).parent / "static"],
                opt={PUBLIC: True},
                include_in_schema=False,
            ),
            *dashboard_routes(),  # the operator dashboard at / (public page, data by token)
            oscp.receive,  # OSCP 2.0: its own token scheme, not the REST API's
        ],
        state=State({"ctx": ctx}),
        dependencies={"ctx": Provide(provide_ctx, sync_to_thread=False)},
        middleware=[
            DefineMiddleware(
                BearerAuth,
                exclude=[
                    f"^{API}/openapi.json$",
                    f"^{DOCS}",
                    f"^{STATIC}/",
                    "^/$",
                    f"^{DASHBOARD_ASSETS}/",
                    "^/oscp/",
                ],
                exclude_from_auth_key=PUBLIC,
            )
        ],
        guards=[role_guard],
        openapi_config=openapi,
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
        debug=False,
        # Logging is set up once, by entrypoints.logs: Litestar's default configuration would put
        # the root logger back at INFO, and every INFO line of the OCPP server would be written.
        logging_config=None,
    )
    # Litestar builds the document once, on first use, and serves that object from then on:
    # build it now, to finish what it cannot say by itself.
    _refine(app.openapi_schema)
    return app
