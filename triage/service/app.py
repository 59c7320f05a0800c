"""The HTTP API: ``create_app(config)`` builds the FastAPI application ``triage serve`` runs.

One :class:`~triage.Triage` is loaded at start-up and shared read-only by every request; model
calls and knowledge-base writes all run on the batcher's single model thread (see
:mod:`triage.service.batching`), so concurrent requests are batched and writes are serialised.
"""

from __future__ import annotations

import email.message
import itertools
import json
import logging
import time
import uuid
from collections.abc import Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from retrieval import store
from retrieval.search import KnowledgeBase, RecordError

from .. import __version__
from ..serving import ServingModel
from ..feedback import FeedbackError
from ..helpdesk import (Deliverer, HelpdeskAdapter, Outbox, WebhookAuthError,
                        WebhookPayloadError, make_adapter)
from ..pipeline import Triage
from ..results import AssistResult, TriageFailure, TriageResult
from . import schemas
from .batching import ItemError, MicroBatcher, run_isolated
from .config import ApiKey, ServiceConfig
from .metrics import Metrics
from .security import ANONYMOUS, KeyRing, RateLimiter

log = logging.getLogger("kefu.service")

_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": schemas.ErrorResponse, "description": text}
    for status, text in ((401, "Missing or unknown API key"), (403, "The key lacks the scope"),
                         (400, "Body is not valid JSON or not UTF-8; `message` says where"),
                         (413, "Body larger than max_body_bytes"),
                         (415, "A JSON body sent without 'Content-Type: application/json'"),
                         (422, "Invalid field; `details` says which"),
                         (429, "Rate limit exceeded; see Retry-After"))
}


_MAYBE_ABSENT: dict[int | str, dict[str, Any]] = {
    404: {"model": schemas.ErrorResponse, "description": "No such entry, draft or adapter"},
    409: {"model": schemas.ErrorResponse, "description": "Not available in this configuration"},
}


class ApiError(Exception):
    """An error answer; `field` and `detail` (default: `message`) make its one `details` item."""

    def __init__(self, status: int, code: str, message: str, *, field: str | None = None,
                 detail: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field, self.headers = status, code, message, field, headers
        self.detail = detail or message


class _BodyTooLarge(Exception):
    pass


class _Guard:
    """ASGI middleware: request ids, the body-size limit (declared or streamed) and metrics."""

    def __init__(self, app, *, max_body_bytes: int, metrics: Metrics) -> None:
        self.app, self.max_body_bytes, self.metrics = app, max_body_bytes, metrics
        self._prefix = uuid.uuid4().hex[:8] + "-"  # unique per process, then a counter: cheap and unique
        self._counter = itertools.count(1)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        request_id = f"{self._prefix}{next(self._counter):x}"
        scope.setdefault("state", {})["request_id"] = request_id
        status = {"code": 500, "sent": False, "too_large": False}

        async def send_wrapper(message):
            if status["too_large"]:
                return  # the app's answer to a truncated body (FastAPI says 400) is replaced by 413
            if message["type"] == "http.response.start":
                status["code"], status["sent"] = message["status"], True
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"x-request-id", request_id.encode())]}
            await send(message)

        declared = dict(scope.get("headers", [])).get(b"content-length")
        received = 0

        async def receive_wrapper():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    status["too_large"] = True
                    raise _BodyTooLarge()
            return message

        try:
            try:
                if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
                    status["too_large"] = True
                else:
                    await self.app(scope, receive_wrapper, send_wrapper)
            except _BodyTooLarge:
                pass
            if status["too_large"]:
                status["too_large"] = False
                response = _error_response(413, "payload_too_large",
                                           f"request body is larger than the limit of {self.max_body_bytes} bytes; "
                                           "send fewer or shorter messages", request_id=request_id)
                await response(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(route, scope["method"], str(status["code"])).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)


class _JsonRequest(Request):
    """A request whose JSON body must be UTF-8 (RFC 8259), refused as 400 `bad_body` with where it breaks.

    Starlette's json() also takes UTF-16 and UTF-32, and FastAPI reports broken JSON as a 422
    on a field such as `body.13`; raising an HTTPException here passes FastAPI's body parsing
    untouched.
    """

    async def json(self) -> Any:
        raw = await self.body()
        try:
            return json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise StarletteHTTPException(400, f"the request body is not UTF-8 text: byte {raw[exc.start]:#04x} at "
                                              f"offset {exc.start}; send JSON encoded as UTF-8") from None
        except json.JSONDecodeError as exc:
            raise StarletteHTTPException(400, f"the request body is not valid JSON: {exc.msg}: line {exc.lineno} "
                                              f"column {exc.colno} (character {exc.pos})") from None


def _is_json_type(content_type: str) -> bool:
    """``application/json`` or ``application/<anything>+json``, with or without parameters."""
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


class _JsonRoute(APIRoute):
    """Every route parses its JSON body with :class:`_JsonRequest`, and a route that takes a JSON
    body refuses one sent without a JSON content type (415, saying so) rather than FastAPI's 422
    "Input should be a valid dictionary". A missing Content-Type is refused too, not guessed as
    JSON: a browser sends such a request (and text/plain or form bodies) cross-origin without a
    CORS preflight, so accepting it would let any web page write to a service running with
    allow_anonymous (FastAPI's strict_content_type, for the same reason)."""

    def get_route_handler(self):
        handler = super().get_route_handler()
        takes_json = self.body_field is not None

        async def strict_json(request: Request) -> Response:
            if takes_json:
                content_type = request.headers.get("content-type", "")
                if not _is_json_type(content_type):
                    got = f"got {content_type!r}" if content_type else "it is missing"
                    raise StarletteHTTPException(415, f"send the body as JSON with 'Content-Type: application/json' "
                                                      f"({got}); with curl add -H 'Content-Type: application/json'")
            return await handler(_JsonRequest(request.scope, request.receive))
        return strict_json


def _error_response(status: int, code: str, message: str, *, details: Sequence[dict] = (),
                    request_id: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": code, "message": message, "details": list(details), "request_id": request_id}
    return JSONResponse(body, status_code=status, headers=headers)


def _json_kind(value: Any) -> str:
    """A parsed JSON value's type in JSON's words, with the value itself when it is a scalar."""
    if value is None:
        return "null"
    if isinstance(value, (bool, int, float)):
        return f"{'a boolean' if isinstance(value, bool) else 'a number'} ({json.dumps(value)[:40]})"
    return "an array" if isinstance(value, list) else "an object"


def _json(data: Any, status: int = 200) -> Response:
    """Already-typed results skip FastAPI's response re-validation (the schema still documents them)."""
    return Response(json.dumps(data, ensure_ascii=False), status_code=status, media_type="application/json")


class ServiceState:
    """What the routes share: the model, the batcher, keys, limits, adapters and the outbox."""

    def __init__(self, config: ServiceConfig, triage: Triage | None, *, bundle: ServingModel | None = None,
                 worker: int = 0, workers: int = 1) -> None:
        self.config = config
        self.triage = triage or Triage(bundle or config.model, max_chars=config.max_chars,
                                       strip_boilerplate=config.strip_boilerplate, knowledge_base=config.knowledge_base,
                                       feedback_store=config.feedback_db)
        self.worker, self.workers = worker, workers
        self.metrics = Metrics(multiprocess=workers > 1)
        self.keys = KeyRing(config.api_keys)
        # Each worker limits alone, so each gets its share of every key's rate.
        self.limiter = RateLimiter(config.rate_limit, share=1 / workers)
        self.batcher = MicroBatcher(max_batch=config.max_batch, wait_ms=config.batch_wait_ms,
                                    on_batch=lambda kind, n: self.metrics.batch_size.labels(kind).observe(n))
        # AdapterConfigError is a ValueError: `triage serve` reports it like any bad setting.
        self.adapters: dict[str, HelpdeskAdapter] = {name: make_adapter(name, settings or {})
                                                     for name, settings in config.adapters.items()}
        self.outbox: Outbox | None = None
        self.deliverer: Deliverer | None = None
        if not self.keys and not config.allow_anonymous:
            raise ValueError("no API keys configured: set KEFU_API_KEYS=name=key (or api_keys in the config "
                             "file), or allow_anonymous for local development")

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        self.triage.warm_up()
        self.triage.knowledge_base.warm_up()
        await self.batcher.start()
        if self.adapters:
            self.outbox = Outbox(self.config.outbox, **self.config.outbox_retry)
            if self.worker == 0:  # one sender, so no call goes out twice
                self.deliverer = Deliverer(self.outbox, self.adapters, on_attempt=self._count_delivery).start()

    async def stop(self) -> None:
        await self.batcher.stop()
        if self.deliverer is not None:
            self.deliverer.stop()
        if self.outbox is not None:
            self.outbox.close()

    def _count_delivery(self, adapter: str, outcome: str) -> None:
        self.metrics.outbox_sent.labels(adapter, outcome).inc()

    # -- model calls (run on the model thread) --------------------------------------------------
    def _saved_kb_version(self) -> str | None:
        directory = self.config.knowledge_base
        pointer = Path(directory) / store.CURRENT if directory else None
        return pointer.read_text(encoding="utf-8").strip() if pointer is not None and pointer.is_file() else None

    def follow_kb(self) -> KnowledgeBase:
        """The knowledge base, reloaded first if another worker saved a newer version."""
        saved = self._saved_kb_version()
        # Compared with the version the live index was loaded from, not with the pointer as
        # read at start-up: another worker may save between our load and any later read.
        if saved is not None and saved != self.triage.knowledge_base.saved_version:
            kb = KnowledgeBase.load(self.config.knowledge_base)
            kb.warm_up()
            self.triage.use_knowledge_base(kb)
        return self.triage.knowledge_base

    def _count(self, results: Sequence) -> None:
        for r in results:
            t = r.triage if isinstance(r, AssistResult) else r
            if isinstance(t, TriageResult):
                self.metrics.messages.labels(t.intent.label, t.urgency.level).inc()
            else:
                self.metrics.failures.inc()

    def triage_many(self, texts: list, times: list[datetime | None], explain: bool,
                    invalid: dict[int, str] | None = None) -> list:
        """`texts` are JSON values: one that is not a string fails alone, with its JSON type named
        (the library would speak of Python's None); so does position i of `invalid` (its error)."""
        invalid = invalid or {}

        def refusal(i: int, text: Any) -> str | None:
            if not isinstance(text, str):
                return f"text must be a string, got {_json_kind(text)}; send the message as a JSON string"
            return invalid.get(i)

        refused = {i: reason for i, text in enumerate(texts) if (reason := refusal(i, text)) is not None}
        kept = [i for i in range(len(texts)) if i not in refused]
        scored = iter(self.triage.triage_batch([texts[i] for i in kept], received_at=[times[i] for i in kept],
                                               explain=explain, on_error="return"))
        results = [TriageFailure(index=i, error=refused[i]) if i in refused else next(scored)
                   for i in range(len(texts))]
        self._count(results)
        return results

    def assist_many(self, items: list[tuple], k: int, filters_json: str, draft: bool) -> list:
        self.follow_kb()
        texts, times, names = zip(*items)
        results = self.triage.assist_batch(list(texts), k=k, filters=json.loads(filters_json) or None,
                                           received_at=list(times), customer_names=list(names), draft=draft,
                                           on_error="return")
        self._count(results)
        return results

    async def assist(self, text: str, *, k: int = 3, filters: dict | None = None, draft: bool = True,
                     received_at: datetime | None = None, customer_name: str | None = None) -> AssistResult:
        key = (k, json.dumps(filters or {}, sort_keys=True), draft)
        # A failure of this message alone (an exception) raises here: a 500 for this request only.
        result = await self.batcher.submit("assist", key, lambda items: self.assist_many(items, *key),
                                           (text, received_at, customer_name))
        if isinstance(result, TriageFailure):
            raise ApiError(422, "invalid_input", result.error, field="body.text")
        return result

    def change_kb(self, upserts: list[dict], removals: list[str]) -> dict:
        directory = self.config.knowledge_base
        if directory is None or not (Path(directory) / store.CURRENT).is_file():
            raise ApiError(409, "read_only", "the knowledge base is read-only here: start the service with "
                                             "knowledge_base set to a saved directory (`triage kb build --out DIR`)")
        # Raising inside edit() saves nothing: a bad request leaves the knowledge base as it was.
        with KnowledgeBase.edit(directory) as kb:
            missing = [i for i in removals if i not in kb]
            if missing:
                raise ApiError(404, "not_found", f"no knowledge-base entries with ids {missing}")
            try:  # validates every entry first; ids compared as validated (stripped)
                added, updated = kb.upsert(upserts)
            except RecordError as exc:
                where = f"body.entries.{exc.record - 1}"  # the request's own index
                field = f"{where}.{exc.field}" if exc.field else where
                named = f" (id {exc.entry_id!r})" if exc.field != "id" and isinstance(exc.entry_id, str) else ""
                reason = exc.reason if exc.duplicate_of is None else \
                    f"id {exc.entry_id!r} is also the id of body.entries.{exc.duplicate_of - 1}"
                raise ApiError(422, "invalid_entry", f"invalid knowledge-base entry: {field}{named}: {reason}",
                               field=field, detail=reason) from None
            except (ValueError, TypeError) as exc:
                raise ApiError(422, "invalid_entry", str(exc), field="body.entries") from None
            if removals:
                kb.remove(removals)
        kb.warm_up()
        self.triage.use_knowledge_base(kb)  # the saved version is now the live one
        return {"added": added, "updated": updated, "removed": removals, "entries": len(kb),
                "version": kb.saved_version}

    # -- auth -----------------------------------------------------------------------------------
    def authenticate(self, request: Request, scope: str) -> ApiKey:
        presented = request.headers.get("x-api-key")
        auth = request.headers.get("authorization", "")
        if presented is None and auth.lower().startswith("bearer "):
            presented = auth[7:].strip()
        if presented:
            key = self.keys.find(presented)
            if key is None:
                raise ApiError(401, "unauthorized", "unknown API key", headers={"WWW-Authenticate": "Bearer"})
        elif self.config.allow_anonymous:
            key = ANONYMOUS
        else:
            raise ApiError(401, "unauthorized", "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key'",
                           headers={"WWW-Authenticate": "Bearer"})
        if scope not in key.scopes:
            raise ApiError(403, "forbidden", f"API key {key.name!r} lacks the {scope!r} scope")
        wait = self.limiter.acquire(key)
        if wait > 0:
            raise ApiError(429, "rate_limited", f"rate limit of API key {key.name!r} exceeded; retry in {wait:.2f} s",
                           headers={"Retry-After": str(max(1, round(wait + 0.5)))})
        return key


def create_app(config: ServiceConfig | None = None, *, triage: Triage | None = None, bundle: ServingModel | None = None,
               worker: int = 0, workers: int = 1) -> FastAPI:
    """The application. `triage` reuses an already-loaded pipeline (embedding in a larger app);
    `bundle`, `worker` and `workers` are set by the pre-forking server."""
    config = config or ServiceConfig.load()
    state = ServiceState(config, triage, bundle=bundle, worker=worker, workers=workers)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        await state.start()
        try:
            yield
        finally:
            await state.stop()

    app = FastAPI(
        title="Kefu triage API", version=__version__, lifespan=lifespan, responses=_ERROR_RESPONSES,
        description="Bilingual (Chinese/English) customer-message triage, knowledge-base answers and reply "
                    "drafts, plus webhooks for Zendesk, Freshdesk, Zammad, Chatwoot and your own backend. "
                    "Authenticate with `Authorization: Bearer <key>` or `X-API-Key`.",
    )
    app.router.route_class = _JsonRoute
    app.state.service = state
    if config.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=config.cors_origins, allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type"])
    app.add_middleware(_Guard, max_body_bytes=config.max_body_bytes, metrics=state.metrics)
    _install_error_handlers(app)

    def scope(name: str):
        async def dependency(request: Request) -> ApiKey:  # async: no thread hop per request
            return state.authenticate(request, name)
        return Depends(dependency)

    @app.post("/v1/triage", response_model=schemas.TriageResponse, tags=["triage"], dependencies=[scope("read")])
    async def triage_one(body: schemas.TriageRequest) -> Response:
        """Intent, urgency (with reasons and the first-response deadline), sentiment and entities."""
        result = await state.batcher.submit(
            "triage", body.explain,
            lambda items: state.triage_many([i[0] for i in items], [i[1] for i in items], body.explain),
            (body.text, body.received_at))
        if isinstance(result, TriageFailure):
            raise ApiError(422, "invalid_input", result.error, field="body.text")
        return _json(result.to_dict())

    @app.post("/v1/triage:batch", response_model=schemas.BatchResponse, tags=["triage"],
              dependencies=[scope("read")])
    async def triage_batch(body: schemas.BatchRequest, request: Request) -> Response:
        """Many messages in one request; a bad message fails alone (`error`), the rest are triaged."""
        if len(body.messages) > config.max_batch:
            raise ApiError(422, "too_many_messages", f"{len(body.messages)} messages; at most {config.max_batch} "
                                                     "per request", field="body.messages")
        texts = [m.text for m in body.messages]
        times: list[datetime | None] = []
        invalid: dict[int, str] = {}
        for i, m in enumerate(body.messages):  # a bad time fails its message alone, like a bad text
            try:
                times.append(None if m.received_at is None else schemas.parse_time(m.received_at))
            except ValueError as exc:
                times.append(None)
                invalid[i] = f"received_at: {exc}"

        def run(positions: list[int]) -> list:
            return state.triage_many([texts[i] for i in positions], [times[i] for i in positions], body.explain,
                                     {n: invalid[i] for n, i in enumerate(positions) if i in invalid})

        # An unexpected exception fails only the message that causes it (the others are rerun alone).
        results = await state.batcher.call(run_isolated, run, list(range(len(texts))))
        request_id = request.scope.get("state", {}).get("request_id")
        out = []
        for i, (m, r) in enumerate(zip(body.messages, results)):
            if isinstance(r, ItemError):
                log.error("message %d of a batch failed (request %s)", i, request_id, exc_info=r.exception)
                error = f"internal error while triaging this message; the server log has the details under " \
                        f"request id {request_id}"
            else:
                error = r.error if isinstance(r, TriageFailure) else None
            out.append({"id": m.id, "index": i, "result": r.to_dict() if isinstance(r, TriageResult) else None,
                        "error": error})
        return _json({"results": out, "failed": sum(o["error"] is not None for o in out)})

    @app.post("/v1/assist", response_model=schemas.AssistResponse, tags=["triage"], dependencies=[scope("read")])
    async def assist(body: schemas.AssistRequest) -> Response:
        """Triage, knowledge-base answers and reply drafts in Chinese and English."""
        result = await state.assist(body.text, k=body.k, filters=body.filters, draft=body.draft,
                                    received_at=body.received_at, customer_name=body.customer_name)
        return _json(result.to_dict())

    @app.post("/v1/kb/search", response_model=schemas.SearchResponse, tags=["knowledge base"],
              dependencies=[scope("read")])
    async def kb_search(body: schemas.SearchRequest) -> Response:
        """Knowledge-base answers for a query, with the calibrated knowledge-gap verdict."""
        try:
            result = await state.batcher.call(lambda: state.follow_kb().search(body.query, body.k,
                                                                               filters=body.filters))
        except ValueError as exc:  # TextInputError: whitespace-only or undecodable query
            raise ApiError(422, "invalid_input", str(exc), field="body.query") from None
        return _json(result.to_dict())

    @app.post("/v1/kb/entries", response_model=schemas.KBChangeResponse, tags=["knowledge base"], responses=_MAYBE_ABSENT,
              dependencies=[scope("kb:write")])
    async def kb_upsert(body: schemas.KBEntriesRequest) -> Response:
        """Add entries, or replace those whose id exists; saved as a new version (needs `kb:write`).

        Every entry is validated before anything changes; a bad one is named by its index in the
        request (`body.entries.3.id`) and nothing is saved."""
        return _json(await state.batcher.call(state.change_kb, body.entries, []))

    @app.delete("/v1/kb/entries/{entry_id:path}", response_model=schemas.KBChangeResponse, tags=["knowledge base"],
                responses=_MAYBE_ABSENT,
                dependencies=[scope("kb:write")])
    async def kb_remove(entry_id: Annotated[str, PathParam(
            description="The entry's id; it may contain `/` (`faq/returns`): send it as is, or percent-encoded "
                        "as `%2F` if your client rewrites `..` or `//` in paths.")]) -> Response:
        """Remove one entry; saved as a new version (needs `kb:write`)."""
        return _json(await state.batcher.call(state.change_kb, [], [entry_id]))

    @app.post("/v1/feedback", response_model=schemas.FeedbackResponse, tags=["feedback"], responses=_MAYBE_ABSENT,
              dependencies=[scope("feedback")])
    async def feedback(body: schemas.FeedbackRequest) -> Response:
        """Record what an agent did with a draft (accepted, edited or rejected, and corrections)."""
        if state.triage.feedback_store is None:
            raise ApiError(409, "not_configured", "feedback is off: start the service with feedback_db "
                                                  "(or KEFU_FEEDBACK_DB) set")
        try:
            await state.batcher.call(state.triage.feedback, body.draft_id, body.action, body.final_text,
                                     corrected_intent=body.corrected_intent, corrected_urgency=body.corrected_urgency,
                                     agent_id=body.agent_id)
        except FeedbackError as exc:
            missing = str(exc).startswith("no draft with id")
            raise ApiError(404 if missing else 422, "not_found" if missing else "invalid_feedback", str(exc),
                           field="body.draft_id" if missing else None) from None
        return _json({"status": "recorded", "draft_id": body.draft_id})

    @app.get("/v1/health", response_model=schemas.Health, tags=["service"])
    async def health() -> Response:
        """Liveness and readiness (no key needed): the model is loaded once this answers."""
        return _json({"status": "ok"})

    @app.get("/v1/info", response_model=schemas.Info, tags=["service"], dependencies=[scope("read")])
    async def info() -> Response:
        """Model and knowledge-base versions."""
        kb = await state.batcher.call(state.follow_kb)
        kb_stats = kb.stats()
        kb_dir = config.knowledge_base
        version = kb.saved_version if kb_dir else None
        manifest = state.triage.manifest
        return _json({
            "service_version": __version__, "model_version": state.triage.version,
            "model": {"labels": {h: spec.get("labels") for h, spec in manifest.get("heads", {}).items()},
                      **{k: manifest[k] for k in ("name", "version", "created_at", "encoder", "featurizer",
                                                  "training_data", "metrics", "library_versions") if k in manifest}},
            "knowledge_base": {"entries": kb_stats["entries"], "passages": kb_stats["passages"],
                               "encoder": kb_stats["encoder"], "index": kb_stats["index"], "version": version,
                               "source": str(kb_dir) if kb_dir else "shipped default"},
            "adapters": sorted(state.adapters), "max_batch": config.max_batch,
            "max_body_bytes": config.max_body_bytes,
        })

    @app.get("/metrics", tags=["service"], response_class=Response,
             responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
    async def metrics() -> Response:
        """Prometheus metrics (no key needed; keep the port internal)."""
        if state.outbox is not None:
            state.metrics.outbox_pending.set(state.outbox.counts()["pending"])
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.post("/v1/webhooks/{adapter}", response_model=schemas.WebhookResponse, status_code=202,
              tags=["helpdesk"], responses={200: {"model": schemas.WebhookResponse,
                                                  "description": "Ignored or already seen"},
                                            404: _MAYBE_ABSENT[404]})
    async def webhook(adapter: str, request: Request) -> Response:
        """A helpdesk's new-ticket or new-message webhook: verified by the helpdesk's signature,
        triaged, and written back (tags, priority, intent, internal note with the draft) through
        the persistent queue."""
        handler = state.adapters.get(adapter)
        if handler is None:
            raise ApiError(404, "not_found", f"no helpdesk adapter {adapter!r} is configured; "
                                             f"configured: {sorted(state.adapters)}", field="path.adapter")
        raw = await request.body()
        try:
            handler.verify(request.headers, raw)
        except WebhookAuthError as exc:
            state.metrics.webhooks.labels(adapter, "unauthorized").inc()
            raise ApiError(401, "bad_signature", str(exc)) from None
        try:
            payload = await request.json()
        except StarletteHTTPException:  # not UTF-8 JSON: 400 bad_body, as on every endpoint
            state.metrics.webhooks.labels(adapter, "invalid").inc()
            raise
        try:
            if not isinstance(payload, dict):
                raise WebhookPayloadError("the webhook body must be a JSON object")
            ticket = handler.parse(payload)
        except ValueError as exc:  # WebhookPayloadError is a ValueError
            state.metrics.webhooks.labels(adapter, "invalid").inc()
            raise ApiError(422, "invalid_payload", f"not a {adapter} webhook: {exc}", field="body") from None
        if ticket is None:
            state.metrics.webhooks.labels(adapter, "ignored").inc()
            return _json({"status": "ignored", "reason": "not a new customer message", "writes": 0}, 200)
        assert state.outbox is not None
        if state.outbox.seen(adapter, ticket.event_id):
            state.metrics.webhooks.labels(adapter, "duplicate").inc()
            return _json({"status": "duplicate", "ticket_id": ticket.ticket_id, "writes": 0}, 200)
        # The built-in adapters check their payloads; whatever an adapter still lets through (a name
        # that is not text, a time outside the supported years) must not fail the model batch, so
        # the name is left out of the greeting and the time taken as now.
        name = ticket.customer_name if isinstance(ticket.customer_name, str) else None
        received = ticket.received_at
        if received is not None and not schemas.MIN_YEAR <= received.year <= schemas.MAX_YEAR:
            received = None
        result = await state.assist(ticket.text, received_at=received, customer_name=name)
        calls = handler.writeback(ticket, result)
        if not state.outbox.enqueue(adapter, ticket.event_id, ticket.ticket_id, calls):
            return _json({"status": "duplicate", "ticket_id": ticket.ticket_id, "writes": 0}, 200)
        state.metrics.webhooks.labels(adapter, "queued").inc()
        return _json({"status": "queued", "ticket_id": ticket.ticket_id, "intent": result.triage.intent.label,
                      "urgency": result.triage.urgency.level, "writes": len(calls)}, 202)

    return app


def _install_error_handlers(app: FastAPI) -> None:
    def request_id(request: Request) -> str | None:
        return request.scope.get("state", {}).get("request_id")

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        details = [{"field": exc.field, "message": exc.detail}] if exc.field else []
        return _error_response(exc.status, exc.code, exc.message, details=details, request_id=request_id(request),
                               headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        details = [{"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "invalid")}
                   for e in exc.errors()]
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
        return _error_response(422, "invalid_request", f"invalid request: {summary}", details=details,
                               request_id=request_id(request))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        code = {400: "bad_body", 404: "not_found", 405: "method_not_allowed",
                415: "unsupported_media_type"}.get(exc.status_code, "http_error")
        return _error_response(exc.status_code, code, str(exc.detail), request_id=request_id(request),
                               headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception):
        log.exception("unhandled error in %s %s", request.method, request.url.path)
        rid = request_id(request)
        # Answered outside the _Guard middleware (Starlette's ServerErrorMiddleware), so the
        # X-Request-Id header every response carries is added here.
        return _error_response(500, "internal_error", "internal error; the server log has the details under "
                                                      "this request id", request_id=rid,
                               headers={"X-Request-Id": rid} if rid else None)
