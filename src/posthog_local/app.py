"""The ASGI app: PostHog's routes, bodies and status codes over the engine and the definitions.

Every API request passes ``_guard`` first: injected latency and faults (as infrastructure would
cause them), then the personal API key, the project id, and for the query endpoint the
throttles and the concurrency cap, each answering with PostHog's own error body.
"""

from __future__ import annotations

import json
import random
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .catalog import TABLES
from .compiler import Compiler, CompilerBusy
from .definitions import Definitions
from .engine import (
    Engine,
    EngineBusy,
    EngineError,
    EngineLimits,
    EngineTimeout,
    QueryOutput,
)
from .hogql import HogQLError
from .hogql._schema import expression_fields
from .jobs import ASYNC_MODES, Job, Jobs, valid_query_id
from .limits import ConcurrencyGate, SlidingWindowThrottle
from .options import ServerOptions, generate_api_key

__all__ = ["ServerState", "build_app"]

ORGANIZATION_ID = "018f0000-0000-4000-8000-00000000a11c"
MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_QUERY_CHARS = 100_000
MAX_TOKENS = 20_000  # cheap to count; longer queries would only meet the compile deadline
_TOKEN = re.compile(r"\w+|[^\w\s]")
ANSWER_SECONDS = 14.5  # no answer takes longer, whatever the query (wall time of one request)
BODY_SECONDS = 10.0  # a body that has not arrived by then is refused (slow or short bodies)


def _error(
    status: int, type_: str, code: str, detail: str, headers: dict[str, str] | None = None
) -> Response:
    body = {"type": type_, "code": code, "detail": detail, "attr": None}
    return JSONResponse(body, status_code=status, headers=headers)


async def _read_body(request: Request) -> bytes | Response:
    """The body, refused before it is all read when it is over ``MAX_BODY_BYTES``."""
    too_big = _validation(
        f"The request body is over the local server's limit of {MAX_BODY_BYTES:,} bytes; "
        "shorten the query or its values."
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return too_big
    chunks, size = [], 0
    with anyio.move_on_after(BODY_SECONDS) as timer:
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    return too_big
                chunks.append(chunk)
        except ClientDisconnect:  # the client hung up mid-body: nobody reads an answer
            return Response(status_code=400)
    if timer.cancelled_caught:
        return _validation(
            f"The request body did not arrive within {BODY_SECONDS:g} s; send it whole."
        )
    return b"".join(chunks)


async def _query_body(request: Request) -> tuple[dict[str, Any], dict[str, Any]] | Response:
    """The body and its `query` object, or the 400 PostHog gives for a body without one."""
    raw = await _read_body(request)
    if isinstance(raw, Response):
        return raw
    try:
        body = json.loads(raw or b"null")
    except RecursionError:
        return _validation("JSON parse error - the body is nested too deeply.", "parse_error")
    except ValueError as exc:
        return _validation(f"JSON parse error - {exc}", "parse_error")
    node = body.get("query") if isinstance(body, dict) else None
    if not isinstance(node, dict):
        return _validation(
            'The request body needs a `query` object, e.g. {"query": {"kind": "HogQLQuery", '
            '"query": "SELECT 1"}}.',
            "required",
        )
    assert isinstance(body, dict)
    return body, node


def _validation(detail: str, code: str = "invalid_input") -> Response:
    return _error(400, "validation_error", code, detail)


class ServerState:
    """Everything one server instance owns: options, key, engine, definitions, limits, faults."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.api_key = options.api_key or generate_api_key()
        self.engine = Engine(
            options.pool_size,
            EngineLimits(timeout=options.query_timeout, memory_bytes=options.query_memory_bytes),
            sandbox=options.sandbox,
            session_wait=options.session_wait,
        )
        self.compiler = Compiler(size=2, timeout=options.compile_timeout, sandbox=options.sandbox)
        self.definitions: Definitions | None = None
        self.random = random.Random(options.seed)  # noqa: S311 (fault points, not secrets)
        self.throttles = [
            SlidingWindowThrottle(rate, period)
            for rate, period in (
                (options.query_rate_per_minute, 60),
                (options.query_rate_per_hour, 3600),
            )
            if rate is not None
        ]
        self.gate = (
            ConcurrencyGate(options.max_concurrent_queries)
            if options.max_concurrent_queries
            else None
        )
        # What the emulated limits did to query requests: "admitted", "throttled" (rate 429)
        # and "concurrency" (concurrency 429); benchmarks and tests read it.
        self.limit_counts: Counter[str] = Counter()
        self.drop_connection: Callable[[dict[str, Any]], None] | None = None
        self.jobs = Jobs()
        self._load_lock = anyio.Lock()
        self.created_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def load(self) -> None:
        """Generate and load the demo data, then derive the definitions (blocking, idempotent)."""
        if self.definitions is not None:
            return
        failures: list[BaseException] = []

        def start_compiler() -> None:
            try:
                self.compiler.start()
            except BaseException as exc:  # noqa: BLE001 - raised below, in the caller's thread
                failures.append(exc)

        compiler = threading.Thread(target=start_compiler, daemon=True)
        compiler.start()  # in parallel with the engine's load
        ready = self.engine.start(self.options.events, self.options.seed)
        compiler.join()
        if failures:
            self.engine.close()
            raise failures[0]
        self.definitions = Definitions.from_rows(ready["event_rows"], ready["pair_rows"])

    async def ready(self) -> Definitions:
        """Load on first use (for in-process apps built without ``LocalServer``)."""
        if self.definitions is None:
            async with self._load_lock:
                if self.definitions is None:
                    await anyio.to_thread.run_sync(self.load)
        assert self.definitions is not None
        return self.definitions

    def close(self) -> None:
        """Stop the engine and the compiler processes."""
        self.engine.close()
        self.compiler.close()


def build_app(options: ServerOptions | None = None, state: ServerState | None = None) -> Starlette:
    """The ASGI app; the data loads on first request unless ``state`` is already loaded.

    Example::

        app = build_app(ServerOptions(events=5_000))
        transport = httpx.ASGITransport(app=app)
    """
    state = state or ServerState(options or ServerOptions())
    api = Api(state)
    routes = []
    for prefix in ("/api/projects/{project_id}", "/api/environments/{project_id}"):
        routes += [
            Route(prefix + "/", api.guarded(api.project, query=False), methods=["GET"]),
            Route(prefix + "/query/", api.guarded(api.query, query=True), methods=["POST"]),
            Route(prefix + "/query/{kind}/", api.guarded(api.query, query=True), methods=["POST"]),
            Route(
                prefix + "/query/{query_id}/",
                api.guarded(api.query_status, query=False),
                methods=["GET"],
            ),
            Route(
                prefix + "/query/{query_id}/",
                api.guarded(api.cancel, query=False),
                methods=["DELETE"],
            ),
            Route(prefix + "/event_definitions/", api.guarded(api.event_definitions, query=False)),
            Route(
                prefix + "/property_definitions/",
                api.guarded(api.property_definitions, query=False),
            ),
        ]
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    app.state.posthog = state
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return _error(
            405, "invalid_request", "method_not_allowed", f'Method "{request.method}" not allowed.'
        )
    return _error(404, "invalid_request", "not_found", "Not found.")


async def _server_error(request: Request, exc: Exception) -> Response:
    return _error(500, "server_error", "error", "A server error occurred.")


Handler = Callable[[Request], Awaitable[Response]]
Runner = Callable[[str, Any, "int | None", float], Awaitable["QueryOutput | None"]]


class Api:
    """The route handlers, bound to one ``ServerState``."""

    def __init__(self, state: ServerState) -> None:
        self.state = state

    def guarded(self, handler: Handler, query: bool) -> Handler:
        """Wrap ``handler`` in faults, auth, project check and (for queries) limits."""

        async def endpoint(request: Request) -> Response:
            refusal = await self._guard(request)
            if refusal is not None:
                return refusal
            if not query:
                return await handler(request)
            return await self._limited(request, handler)

        return endpoint

    async def _guard(self, request: Request) -> Response | None:
        opts, rng = self.state.options, self.state.random
        low, high = opts.latency_ms
        if high > 0:
            await anyio.sleep(rng.uniform(low, high) / 1000)
        if opts.fault_drop_rate and rng.random() < opts.fault_drop_rate:
            return await self._drop(request)
        if opts.fault_5xx_rate and rng.random() < opts.fault_5xx_rate:
            return _error(503, "server_error", "error", "A server error occurred.")
        if opts.fault_429_rate and rng.random() < opts.fault_429_rate:
            return _throttled(opts.retry_after)
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _error(
                401,
                "authentication_error",
                "not_authenticated",
                "Authentication credentials were not provided.",
            )
        if not secrets.compare_digest(token.strip().encode(), self.state.api_key.encode()):
            return _error(
                401,
                "authentication_error",
                "authentication_failed",
                "Personal API key found in request Authorization header is invalid.",
            )
        if request.path_params.get("project_id") != self.state.options.project_id:
            return _error(404, "invalid_request", "not_found", "Not found.")
        return None

    async def _drop(self, request: Request) -> Response:
        dropper = self.state.drop_connection
        if dropper is None:
            # without a server to reach into (in-process ASGI), failing the request is the closest
            raise ConnectionAbortedError("injected connection drop")
        dropper(dict(request.scope))
        await anyio.sleep(0.05)  # let the abort land before the (now unsendable) response
        return Response(status_code=500)

    async def _limited(self, request: Request, handler: Handler) -> Response:
        for throttle in self.state.throttles:
            wait = throttle.admit()
            if wait is not None:
                self.state.limit_counts["throttled"] += 1
                return _throttled(wait)
        gate = self.state.gate
        if gate is None:
            self.state.limit_counts["admitted"] += 1
            await self._query_latency()
            return await handler(request)
        if not gate.enter():
            self.state.limit_counts["concurrency"] += 1
            return _concurrency_limited(gate.limit)
        self.state.limit_counts["admitted"] += 1
        # A query started in async mode takes the slot over and gives it back when it ends.
        request.state.release_slot = gate.leave
        try:
            await self._query_latency()
            return await handler(request)
        finally:
            if request.state.release_slot is not None:
                gate.leave()

    async def _query_latency(self) -> None:
        low, high = self.state.options.query_latency_ms
        if high > 0:
            await anyio.sleep(self.state.random.uniform(low, high) / 1000)

    # -- handlers ------------------------------------------------------------------------------

    async def project(self, request: Request) -> Response:
        """``GET /api/projects/{id}/``: the project, as PostHog describes it."""
        pid = self.state.options.project_id
        return JSONResponse(
            {
                "id": int(pid) if pid.isdigit() else pid,
                "uuid": "018f0000-0000-4000-8000-0000000000a1",
                "organization": ORGANIZATION_ID,
                "project_id": int(pid) if pid.isdigit() else pid,
                "api_token": "phc_localdemo" + "0" * 30,
                "name": "Acme Analytics (local demo)",
                "timezone": "UTC",
                "week_start_day": 1,
                "created_at": self.state.created_at,
                "updated_at": self.state.created_at,
                "is_demo": True,
                "ingested_event": True,
                "completed_snippet_onboarding": True,
                "access_control": False,
                "person_display_name_properties": ["email", "name"],
                "primary_dashboard": 1,
            }
        )

    async def query(self, request: Request) -> Response:
        """``POST .../query/``: HogQLQuery and DatabaseSchemaQuery."""
        read = await _query_body(request)
        if isinstance(read, Response):
            return read
        body, node = read
        kind = node.get("kind")
        path_kind = request.path_params.get("kind")
        if path_kind is not None and path_kind != kind:
            return _validation(
                f'Query kind mismatch: path kind "{path_kind}" does not match body kind "{kind}".'
            )
        if kind == "DatabaseSchemaQuery":
            return JSONResponse(await self._schema())
        if kind not in ("HogQLQuery", "HogQLMetadata"):
            return _validation(
                f"Unsupported query kind {kind!r}: the local server answers HogQLQuery, "
                "HogQLMetadata and DatabaseSchemaQuery."
            )
        problem = _check_text(node)
        if problem is not None:
            return problem
        message = {key: node.get(key) for key in ("query", "values", "filters", "variables")}
        if kind == "HogQLMetadata":
            return await self._metadata({**message, "language": node.get("language")})
        query_id = body.get("client_query_id")
        if query_id is None:
            query_id = secrets.token_hex(16)
        elif not valid_query_id(query_id):
            return _validation(
                "client_query_id must be 1-128 letters, digits, '-' or '_'.", "invalid_input"
            )
        if self.state.jobs.running(query_id):
            return _validation(f"A query with client_query_id {query_id!r} is already running.")
        refresh = body.get("refresh")
        if refresh in ASYNC_MODES or (refresh is None and body.get("async") is True):
            return self._start(request, message, query_id)
        return await self._blocking(request, message, query_id)

    @property
    def _team_id(self) -> int:
        pid = self.state.options.project_id
        return int(pid) if pid.isdigit() else 0

    async def _blocking(self, request: Request, message: dict[str, Any], query_id: str) -> Response:
        job = self.state.jobs.register(query_id, self._team_id)

        async def run(sql: str, params: Any, limit: int | None, deadline: float) -> Any:
            engine = self.state.engine
            return await _run_until_disconnect(request, engine, sql, params, limit, deadline)

        try:
            with job.scope:
                return await self._answer(message, run)
            return _error(  # DELETE .../query/{id}/ cancelled it
                400, "validation_error", "query_cancelled", "The query was cancelled."
            )
        finally:
            self.state.jobs.forget(job)

    def _start(self, request: Request, message: dict[str, Any], query_id: str) -> Response:
        """Async mode: run in the background, answer 202 with the query's status at once."""
        release = getattr(request.state, "release_slot", None)
        request.state.release_slot = None  # the job gives the concurrency slot back

        async def work(job: Job) -> None:
            try:

                async def run(sql: str, params: Any, limit: int | None, deadline: float) -> Any:
                    return await self.state.engine.run(sql, params, limit, deadline=deadline)

                response = await self._answer(message, run)
                if response.status_code == 200:
                    job.finish(result=bytes(response.body))
                else:
                    detail = json.loads(bytes(response.body)).get("detail")
                    job.finish(error=str(detail or f"The query failed ({response.status_code})."))
            finally:
                if release is not None:
                    release()

        job = self.state.jobs.start(query_id, self._team_id, work)
        return Response(job.body(), status_code=202, media_type="application/json")

    async def query_status(self, request: Request) -> Response:
        """``GET .../query/{id}/``: 202 while running, 200 with the answer, 400 on error."""
        job = self.state.jobs.get(str(request.path_params.get("query_id")))
        if job is None or job.task is None:  # blocking queries are not polled
            return _error(404, "invalid_request", "not_found", "Not found.")
        status = 202 if not job.complete else 400 if job.error_message else 200
        return Response(job.body(), status_code=status, media_type="application/json")

    async def cancel(self, request: Request) -> Response:
        """``DELETE .../query/{id}/``: stop a running query (200, as PostHog's code answers)."""
        job = self.state.jobs.get(str(request.path_params.get("query_id")))
        if job is None:
            return _error(404, "invalid_request", "not_found", "Not found.")
        if job.complete:
            return JSONResponse({"message": "Query already completed"})
        self.state.jobs.cancel(job.id)
        return JSONResponse({"message": "Query cancelled"})

    async def _compile(self, message: dict[str, Any]) -> dict[str, Any] | Response:
        await self.state.ready()
        try:
            answer = await self.state.compiler.compile(message)
        except HogQLError as exc:
            return _validation(exc.detail, exc.code)
        except CompilerBusy:
            return _concurrency_limited(self.state.options.pool_size)
        if not answer.get("ok"):
            return _validation(
                str(answer.get("detail")), str(answer.get("code") or "invalid_input")
            )
        return answer

    async def _metadata(self, message: dict[str, Any]) -> Response:
        """``HogQLMetadata``: errors and their positions without running the query."""
        answer = await self._compile({**message, "op": "metadata"})
        if isinstance(answer, Response):
            return answer
        return JSONResponse(answer["metadata"])

    async def _answer(self, message: dict[str, Any], run: Runner) -> Response:
        # The whole answer within 14.5 s: what compiling took comes off the engine's wait.
        deadline = time.monotonic() + ANSWER_SECONDS
        answer = await self._compile({**message, "op": "compile"})
        if isinstance(answer, Response):
            return answer
        text = str(message["query"])
        started = time.perf_counter()
        try:
            output = await run(answer["sql"], answer["params"], answer["limit"], deadline)
        except EngineBusy:
            return _concurrency_limited(self.state.options.pool_size)
        except EngineTimeout:
            limit = self.state.options.query_timeout
            return _error(
                504,
                "server_error",
                "query_timeout",
                f"Query exceeded the maximum execution time of {limit:g} seconds. "
                "Narrow the time range or aggregate more.",
            )
        except EngineError as exc:
            return _engine_error(exc)
        if output is None:  # the client went away; nobody will read this
            return Response(status_code=499)
        return _hogql_response(
            text, answer["hogql"], answer["limit"], output, started, answer.get("columns")
        )

    async def _schema(self) -> dict[str, Any]:
        await self.state.ready()
        stats = self.state.engine.stats
        counts = stats.row_counts if stats else {}
        tables = {}
        for name, table in TABLES.items():
            fields = {c.name: c.serialize() for c in table.columns}
            fields.update(expression_fields(name))
            fields.update({r.name: r.serialize(TABLES) for r in table.relations})
            tables[name] = {
                "type": table.kind,
                "id": name,
                "name": name,
                "fields": fields,
                "row_count": counts.get(name, 0),
            }
        return {"tables": tables, "joins": []}

    async def event_definitions(self, request: Request) -> Response:
        """``GET .../event_definitions/`` with ``search`` and limit/offset pagination."""
        definitions = await self.state.ready()
        rows = definitions.event_page(request.query_params.get("search"))
        return _paginate(request, rows)

    async def property_definitions(self, request: Request) -> Response:
        """``GET .../property_definitions/``: ``type``, ``search``, ``event_names`` filters."""
        definitions = await self.state.ready()
        params = request.query_params
        kind = params.get("type", "event")
        if kind not in ("event", "person", "session", "group"):
            return _validation(f'"{kind}" is not a valid choice.', "invalid_choice")
        try:
            names = json.loads(params["event_names"]) if params.get("event_names") else None
        except (ValueError, RecursionError):
            names = None
        if names is not None and not (
            isinstance(names, list) and all(isinstance(n, str) for n in names)
        ):
            return _validation("event_names must be a JSON list of strings.")
        rows = definitions.property_page(
            kind,
            params.get("search"),
            names,
            _flag(params.get("filter_by_event_names")) is True,
            _flag(params.get("is_numerical")),
        )
        return _paginate(request, rows)


def _flag(value: str | None) -> bool | None:
    if value is None:
        return None
    return value.lower() in ("true", "1", "yes")


def _concurrency_limited(limit: int) -> Response:
    """PostHog's concurrency 429: no ``Retry-After``."""
    return _error(
        429,
        "throttled_error",
        "throttled",
        f"Exceeded maximum concurrency limit: {limit} for key: "
        f"api:query:per-org:{ORGANIZATION_ID} and task: api_personal_rate_limiter",
    )


def _engine_error(exc: EngineError) -> Response:
    """PostHog answers 504 for ClickHouse's memory limit, and a 400 for everything the query did."""
    if exc.code_name == "MEMORY_LIMIT_EXCEEDED":
        return _error(
            504,
            "server_error",
            "memory_limit_exceeded",
            "Query exceeded the memory limit. Narrow the time range, select fewer columns or "
            "aggregate more.",
        )
    if exc.code_name == "ENGINE_STOPPED":
        return _error(503, "server_error", "error", exc.message)
    return _validation(exc.message, "hogql_query_error")


def _check_text(node: dict[str, Any]) -> Response | None:
    """The query text and values as PostHog's shapes require, valid UTF-8, of a bounded size."""
    text, values = node.get("query"), node.get("values")
    if not isinstance(text, str) or not isinstance(values, dict | None):
        return _validation("`query` must be a string and `values` an object.")
    if len(text) > MAX_QUERY_CHARS:
        return _validation(
            f"The query has {len(text):,} characters, over the local server's limit of "
            f"{MAX_QUERY_CHARS:,}; move long lists into `values` or shorten it."
        )
    tokens = len(_TOKEN.findall(text))
    if tokens > MAX_TOKENS:
        return _validation(
            f"The query has about {tokens:,} tokens, over the local server's limit of "
            f"{MAX_TOKENS:,}; pass long lists as one value (`x IN {{names}}`) or shorten it.",
            "hogql_syntax_error",
        )
    for where, value in (
        ("query", text),
        ("values", node.get("values")),
        ("filters", node.get("filters")),
        ("variables", node.get("variables")),
    ):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            return _validation(
                f"The {where} have an invalid character (a lone UTF-16 surrogate at position "
                f"{exc.start}); send them as valid UTF-8.",
                "hogql_syntax_error",
            )
    return None


def _throttled(wait: int) -> Response:
    return _error(
        429,
        "throttled_error",
        "throttled",
        f"Request was throttled. Expected available in {wait} seconds.",
        headers={"Retry-After": str(wait)},
    )


def _paginate(request: Request, rows: list[dict[str, Any]]) -> Response:
    """DRF limit/offset pagination with absolute ``next``/``previous`` links."""
    try:
        limit = int(request.query_params.get("limit", 100))
        offset = int(request.query_params.get("offset", 0))
    except ValueError:
        return _validation("limit and offset must be integers.")
    limit, offset = max(1, min(limit, 1000)), max(0, offset)
    page = rows[offset : offset + limit]
    url = request.url
    next_url = (
        str(url.include_query_params(limit=limit, offset=offset + limit))
        if offset + limit < len(rows)
        else None
    )
    previous = None
    if offset > 0:
        previous = str(url.include_query_params(limit=limit, offset=max(0, offset - limit)))
    return JSONResponse(
        {"count": len(rows), "next": next_url, "previous": previous, "results": page}
    )


async def _run_until_disconnect(  # noqa: PLR0917 - one call site
    request: Request,
    engine: Engine,
    sql: str,
    params: dict[str, Any],
    limit: int | None,
    deadline: float,
) -> QueryOutput | None:
    """Run the query; if the client disconnects first, cancel it (the engine kills it)."""
    result: list[QueryOutput] = []
    failure: list[EngineError] = []

    async def watch(scope: anyio.CancelScope) -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass
        scope.cancel()

    async with anyio.create_task_group() as group:
        group.start_soon(watch, group.cancel_scope)
        try:
            result.append(await engine.run(sql, params, limit, deadline=deadline))
        except EngineError as exc:  # raised after the group, not as an ExceptionGroup
            failure.append(exc)
        group.cancel_scope.cancel()
    if failure:
        raise failure[0]
    return result[0] if result else None


def _hogql_response(  # noqa: PLR0917 - one call site
    text: str,
    hogql: str,
    limit: int | None,
    output: QueryOutput,
    started: float,
    names: list[str] | None,
) -> Response:
    """PostHog's HogQLQueryResponse; the rows are the engine's JSON bytes, never parsed here.

    Column names are PostHog's (from the compiler: repeated names stay repeated), where the
    engine returned as many columns."""
    types = [_public_type(t) for t in output.types]
    columns = names if names and len(names) == len(output.columns) else output.columns
    response: dict[str, Any] = {
        "columns": columns,
        "types": [[name, t] for name, t in zip(columns, types, strict=True)],
        "hogql": hogql,
        "query": text,
        "timings": [
            {"k": "./execute", "t": round(output.elapsed, 6)},
            {"k": ".", "t": round(time.perf_counter() - started, 6)},
        ],
    }
    if limit is not None:  # PostHog's paginator: the engine fetched limit + 1 rows to learn this
        response.update(hasMore=bool(output.has_more), limit=limit, offset=0)
    rest = json.dumps(response, separators=(",", ":"), ensure_ascii=False).encode()
    body = b'{"results":' + output.rows_json + b"," + rest[1:]
    return Response(body, media_type="application/json")


def _public_type(engine_type: str) -> str:
    # PostHog stores properties as String JSON; our typed JSON columns read back the same way.
    return "String" if engine_type.startswith("JSON") else engine_type
