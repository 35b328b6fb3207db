"""Property-based run of the REST API's own OpenAPI document against a running node (schemathesis).

A real node runs in a thread with its own event loop, on SQLite and on PostgreSQL (skipped with
the reason when no server answers); schemathesis loads the document that node serves and calls
every operation over HTTP with requests it generates from it, valid ones and invalid ones:

* with the admin token, every response must: not be a 5xx, have a documented status, have the
  documented content type, have a body that conforms to the documented schema; and a valid
  request must not be refused as invalid (400), an invalid one must not be accepted;
* without a token, every operation but the public ones must answer 401, in the documented shape.

The database is seeded first (stations connected over OCPP 1.6, one with a connector status and
a transaction with meter values, id tokens, an API token), and path parameters are either
generated or name these records, so the by-id operations also reach existing records. The run is
reproducible (derandomized, no example database) and bounded: ``EXAMPLES`` per operation, about
15 s per database on two cores. A failure lists every failing operation with schemathesis's
account of it and a curl command that reproduces it.

Why schemathesis's Python API rather than its pytest plugin: the plugin's lazy schema
(``schemathesis.pytest.from_fixture``, the only way to load the document from a server a fixture
starts) does not run under pytest 9.2 (it reads ``request.node._nodeid``, which pytest removed).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
import websockets
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode, HookContext, Response
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.parameters import ParameterLocation
from stations import Driver, Station16

from chargegrid.bootstrap import build
from chargegrid.domain.model import IdToken
from chargegrid.entrypoints.settings import Settings

ADMIN_TOKEN = "fuzz-admin-token-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
API = "/api/v1"
STATION = "CP-FUZZ"  # connected over OCPP 1.6, with a connector status and a transaction
LIVE_STATION = "CP-LIVE"  # connected over OCPP 1.6, only sent commands (never rejected)
DISPOSABLE_STATION = "CP-GONE"  # DELETE removes it, the test puts it back
ID_TOKEN = "TAG-FUZZ"
DISPOSABLE_TOKEN = "TAG-GONE"
# 1.6 operations the station answers, and one it never receives (a station sends it)
OPERATIONS = ["ClearCache", "Reset", "DataTransfer", "TriggerMessage", "BootNotification"]
# Valid bodies some operations also get, besides generated ones: the document cannot say what
# makes a CSV or an OCPP payload valid, so generated ones almost never are.
BODIES: dict[str, list[Any]] = {
    f"POST {API}/tokens/import": ["value,kind,owner\nTAG-CSV,KeyCode,fuzz\n"],
    f"POST {API}/stations/{{station_id}}/commands/{{operation}}": [
        {},  # ClearCache
        {"type": "Soft"},  # Reset
        {"vendorId": "fuzz"},  # DataTransfer
        {"requestedMessage": "Heartbeat"},  # TriggerMessage
    ],
}
PUBLIC = {("GET", "/health"), ("GET", "/ready")}
STREAMS = ("/events", "/stream")  # Server-Sent Events: open until the client leaves
EXAMPLES = 40  # per operation, valid and invalid requests together

CONFORMANCE = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
CHECKS = [*CONFORMANCE, positive_data_acceptance, negative_data_rejection]
ACCEPTED = ["2xx", "401", "403", "404", "409", "422"]
CONFIG = {
    # Unknown query parameters are ignored, as HTTP APIs do; OpenAPI cannot say otherwise. The
    # token's header is not generated: the test without a token covers authentication.
    "generation": {"allow-extra-parameters": False, "with-security-parameters": False},
    "checks": {
        # 422 is this API's answer to a request the document allows but a rule it cannot state
        # refuses: a station password's characters, an OCPP payload (each operation and version
        # has its own schema), the rows of a CSV import.
        "positive_data_acceptance": {"expected-statuses": ACCEPTED},
    },
    "operations": [
        {
            # 502 and 504 are the station's answers (a CALLERROR; none within ?timeout=, which
            # may be a microsecond), documented, not failures of the server.
            "include-name": f"POST {API}/stations/{{station_id}}/commands/{{operation}}",
            "checks": {
                "not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "502", "504"]},
                "positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "502", "504"]},
            },
        }
    ],
}
SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    # The node is shared and requests go over HTTP: generation is slower than Hypothesis likes,
    # and some operations (GET /health) have few distinct inputs.
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)


@dataclass
class Node:
    """Where the node's API is, and the ids of records seeded in it."""

    base_url: str
    transaction_id: int
    api_token_id: int


@contextlib.asynccontextmanager
async def _station(port: int, station_id: str) -> AsyncIterator[Station16]:
    """stations.connect, without the client's keepalive pings: their payload comes from the
    global ``random``, and Hypothesis, generating in the test's thread meanwhile, takes a change
    of that state for a strategy using ``random`` (a HypothesisDeprecationWarning, an error)."""
    ws = await websockets.connect(
        f"ws://127.0.0.1:{port}/ocpp/{station_id}",
        subprotocols=[websockets.Subprotocol("ocpp1.6")],
        open_timeout=5,
        ping_interval=None,
    )
    cp = Station16(station_id, ws, response_timeout=5)
    task = asyncio.create_task(cp.start())
    try:
        yield cp
    finally:
        await ws.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
            await task


def _serve(db: str, ready: threading.Event, state: dict[str, Any]) -> None:
    """Run a node until ``state["stop"]`` is set; what it seeded goes into ``state``."""

    async def main() -> None:
        settings = Settings(
            host="127.0.0.1",
            ocpp_port=0,
            api_port=0,
            db=db,
            admin_token=ADMIN_TOKEN,
            ping_interval=0,
            unknown_stations="accept",
            call_timeout=5,
        )
        app = await build(settings)
        await app.start()
        stop = asyncio.Event()
        try:
            await app.store.save_token(IdToken(ID_TOKEN, owner="fuzz"))
            async with (
                _station(app.server.port, STATION) as cp,
                _station(app.server.port, LIVE_STATION) as live,
            ):
                await Driver(live, "1.6").boot()
                driver = Driver(cp, "1.6")
                await driver.boot()
                await driver.status(1, "Available")
                tx_id, _ = await driver.start(ID_TOKEN, 1000)
                await driver.meter(tx_id, 1500)
                transaction = await app.store.find_transaction(STATION, tx_id)
                assert transaction is not None
                state.update(
                    port=app.api.port,
                    transaction_id=transaction.id,
                    loop=asyncio.get_running_loop(),
                    stop=stop,
                )
                ready.set()
                await stop.wait()
        finally:
            await app.stop()

    try:
        asyncio.run(main())
    except BaseException as exc:  # handed to the test's thread, which raises it
        state["error"] = exc
    finally:
        ready.set()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def node(request: pytest.FixtureRequest, fresh_db_url: Callable[[str], str]) -> Iterator[Node]:
    """A running node on a seeded database, in a thread with its own event loop: on SQLite,
    and on PostgreSQL (skipped with the reason when no server answers)."""
    ready = threading.Event()
    state: dict[str, Any] = {}
    db = fresh_db_url(request.param)
    thread = threading.Thread(target=_serve, args=(db, ready, state), daemon=True)
    thread.start()
    assert ready.wait(30), "the node did not start in 30 s"
    if "error" in state:
        raise state["error"]
    try:
        base_url = f"http://127.0.0.1:{state['port']}"
        with httpx.Client(base_url=base_url + API, headers=ADMIN, timeout=10) as client:
            assert client.post("/tokens", json={"value": DISPOSABLE_TOKEN}).status_code == 201
            assert client.post("/stations", json={"id": DISPOSABLE_STATION}).status_code == 201
            created = client.post("/api-tokens", json={"name": "fuzz", "role": "viewer"})
            assert created.status_code == 201
        yield Node(base_url, state["transaction_id"], created.json()["api_token"]["id"])
    finally:
        if "stop" in state:
            state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(30)
    assert not thread.is_alive(), "the node did not stop in 30 s"
    if "error" in state:
        raise state["error"]


@pytest.fixture
def api_schema(node: Node) -> schemathesis.BaseSchema:
    """The document the node serves, with path parameters that may name the seeded records."""
    schema = schemathesis.openapi.from_url(
        f"{node.base_url}{API}/openapi.json", config=schemathesis.Config.from_dict(CONFIG)
    )

    def records(label: str, name: str) -> list[Any]:
        """The seeded records a path parameter of an operation may name."""
        if name == "station_id":
            if label.startswith("DELETE"):
                return [DISPOSABLE_STATION]  # the test puts it back
            if "/commands/" in label or label.endswith("/operations"):
                return [LIVE_STATION]  # connected whatever the other operations did
            return [STATION, DISPOSABLE_STATION]
        if name == "value":
            return (
                [DISPOSABLE_TOKEN] if label.startswith("DELETE") else [ID_TOKEN, DISPOSABLE_TOKEN]
            )
        return {
            "transaction_id": [node.transaction_id],
            "token_id": [node.api_token_id],
            "operation": OPERATIONS,
        }.get(name, [])

    @schema.hook
    def flatmap_case(context: HookContext, case: Case) -> st.SearchStrategy[Case]:
        """Where the path or the body was generated valid, it may also be replaced by a valid
        one the server knows: path parameters naming seeded records, :data:`BODIES`. (Invalid
        ones stay as generated: schemathesis expects them refused.)"""
        label = case.operation.label
        path: st.SearchStrategy[Any] = st.just(case.path_parameters)
        if case.path_parameters and _generated(
            case, ParameterLocation.PATH, GenerationMode.POSITIVE
        ):
            path = st.fixed_dictionaries(
                {
                    name: st.sampled_from([generated, *records(label, name)])
                    for name, generated in case.path_parameters.items()
                }
            )
        body: st.SearchStrategy[Any] = st.just(case.body)
        if label in BODIES and _generated(case, ParameterLocation.BODY, GenerationMode.POSITIVE):
            body = st.sampled_from([case.body, *BODIES[label]])
        return st.tuples(path, body).map(lambda drawn: _with(case, *drawn))

    @schema.hook
    def filter_failure(
        context: HookContext, failure: Failure, case: Case, response: Response
    ) -> bool:
        """A cursor is opaque: only one the server made is valid, so a generated one is refused
        (400) though the document (a string) allows it."""
        refused_cursor = (
            failure.code == "ST202"  # the check "Schema-valid request rejected"
            and bool((case.query or {}).get("cursor"))
            and "invalid cursor" in response.text
        )
        return not refused_cursor

    return schema


def _recreate(node: Node, case: Case) -> None:
    """Put back what a DELETE removed, so later examples find it again."""
    with httpx.Client(base_url=node.base_url + API, headers=ADMIN, timeout=10) as client:
        if case.operation.path == f"{API}/stations/{{station_id}}":
            client.post("/stations", json={"id": DISPOSABLE_STATION})
        elif case.operation.path == f"{API}/tokens/{{value}}":
            client.post("/tokens", json={"value": DISPOSABLE_TOKEN})


def _describe(exc: BaseException) -> str:
    """Schemathesis's account of a failure, or each of the distinct errors Hypothesis found."""
    if isinstance(exc, BaseExceptionGroup) and not isinstance(exc, FailureGroup):
        return "\n".join(_describe(e) for e in exc.exceptions)
    if isinstance(exc, FailureGroup):
        return str(exc)
    return "\n".join([f"{type(exc).__name__}: {exc}", *getattr(exc, "__notes__", [])])


def _generated(case: Case, where: ParameterLocation, mode: GenerationMode) -> bool:
    """Whether that part of the request was generated valid (positive) or invalid (negative)."""
    component = case.meta.components.get(where) if case.meta else None
    generated = component.mode if component else GenerationMode.POSITIVE
    return generated == mode


def _with(case: Case, path_parameters: dict[str, Any] | None, body: Any) -> Case:
    case.path_parameters = path_parameters
    case.body = body
    return case


def _fuzz(schema: schemathesis.BaseSchema, test: Callable[[Case], None], examples: int) -> None:
    """Run ``test`` on valid and invalid cases of every operation; then fail listing every
    operation that failed, with schemathesis's account of each failure (and a curl command)."""
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # raises if schemathesis cannot read an operation of the document
        operations += 1
        if operation.path.endswith(STREAMS):
            continue  # a stream never ends, so no body to check; test_events drives them
        strategy = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )

        @hypothesis.settings(SETTINGS, max_examples=examples)
        @hypothesis.given(case=strategy)
        def run(case: Case) -> None:
            test(case)

        try:
            run()
        except (Exception, FailureGroup) as exc:  # FailureGroup is a BaseExceptionGroup
            failures.append(f"{operation.label}:\n{_describe(exc)}")
    assert operations >= 30, f"the document has only {operations} operations"
    if failures:
        summary = f"{len(failures)} of {operations} operations failed:\n\n"
        pytest.fail(summary + "\n\n".join(failures))


@pytest.mark.slow
def test_every_operation_keeps_to_the_document(
    api_schema: schemathesis.BaseSchema, node: Node
) -> None:
    def test(case: Case) -> None:
        response = case.call_and_validate(headers=ADMIN, checks=CHECKS, timeout=10)
        if case.method.upper() == "DELETE" and response.status_code == 204:
            _recreate(node, case)

    _fuzz(api_schema, test, EXAMPLES)


def test_every_protected_operation_needs_a_token(api_schema: schemathesis.BaseSchema) -> None:
    def test(case: Case) -> None:
        response = case.call(timeout=10)
        if (case.method.upper(), case.operation.path) not in PUBLIC:
            # A path that does not fit the operation's (/transactions/1.5) names no route: the
            # router answers 404 before anything else.
            invalid = _generated(case, ParameterLocation.PATH, GenerationMode.NEGATIVE)
            expected = {401, 404} if invalid else {401}
            assert response.status_code in expected, (case.method, case.formatted_path)
        case.validate_response(response, checks=CONFORMANCE)

    _fuzz(api_schema, test, 5)
