"""Request handling shared by the three dialects: parameters, auth, faults, statistics.

Order per request: count it, draw faults, apply latency/status faults, check the api_key
(v3), parameters (v4 rejects unknown ones), required parameters, the Bearer token (image
endpoints with --auth; every v2 endpoint, see :mod:`v2`), then run the endpoint and send
its reply through the body faults.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import replace

from aiohttp import web

from mirror.simulator import v2
from mirror.simulator.endpoints import Endpoint
from mirror.simulator.faults import Fault
from mirror.simulator.images import DIALECTS
from mirror.simulator.replies import (
    EMPTY,
    AnyReply,
    FileReply,
    Reply,
    ZipReply,
    bad_request,
    server_error,
)
from mirror.simulator.respond import (
    early_close_limit,
    send_bytes,
    send_file,
    send_zip,
    truncated,
)
from mirror.simulator.state import SimulatorState
from mirror.simulator.tables import V2, V3, V4

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _params(request: web.Request) -> dict[str, str]:
    params = {k: request.query.getone(k) for k in request.query}
    if request.method == "POST" and request.content_type in (
            "application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        params.update({k: str(form.getone(k)) for k in form})
        if "list" in form:  # v4 getSeriesMetadata: @FormParam("list") List<String>
            params["list"] = ",".join(str(v) for v in form.getall("list"))
    return params


def _refuses_json(accept: str | None) -> bool:
    """JAX-RS content negotiation: 406 when Accept rules out application/json."""
    if not accept:
        return False
    kinds = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    return not kinds & {"*/*", "application/*", "application/json"}


def _early_reply(faults: list[Fault]) -> Reply | None:
    for f in faults:
        if f.kind == "status":
            status = int(f.params.get("status", 500))
            default = "Server was not able to process your request\nnull" if status == 500 else ""
            return Reply(status, str(f.params.get("body", default)).encode(), "text/plain")
        if f.kind == "retry_after":
            seconds = f.params.get("seconds", 1)
            return Reply(int(f.params.get("status", 429)), b"", None,
                         (("Retry-After", str(seconds)),))
    return None


def _check_params(dialect: str, ep: Endpoint, params: dict[str, str]) -> Reply | None:
    if dialect == V4:
        for key in params:
            if key not in ep.params:
                allowed = ", ".join(ep.params)
                return Reply(400, f"Invalid {ep.param_kind} parameter: '{key}'. Allowed "
                                  f"parameters are: [{allowed}]".encode(), "text/plain")
    if any(r not in params for r in ep.required):
        return bad_request(ep.missing)
    return None


def _check_auth(sim: SimulatorState, dialect: str, ep: Endpoint, request: web.Request,
                faults: list[Fault]) -> Reply | None:
    if dialect == V3:
        key = request.headers.get("api_key") or request.query.get("api_key")
        return Reply(401) if sim.api_key and key != sim.api_key else None
    if not sim.auth:
        return None
    header = request.headers.get("Authorization")
    if ep.image and any(f.kind == "expire_token" for f in faults):
        sim.tokens.expire(header)
    verdict = sim.tokens.check(header)
    if ep.image and verdict != "ok":
        return Reply(401)
    if dialect == V4 and verdict in ("invalid", "expired"):
        return EMPTY  # the handler swallows UnauthorizedException into an empty result
    return None


async def _answer(sim: SimulatorState, dialect: str, request: web.Request,
                  faults: list[Fault]) -> AnyReply:
    name = request.match_info["name"]
    ep = (v2.TABLE if dialect == V2 else DIALECTS[dialect]).get(name)
    if ep is None:
        return Reply(404) if dialect == V3 else server_error("HTTP 404 Not Found")
    if request.method not in ep.methods:
        return server_error("HTTP 405 Method Not Allowed")
    if ep.produces_json and _refuses_json(request.headers.get("Accept")):
        return Reply(406, b"", "text/html")
    params = await _params(request)
    if dialect == V3:
        params.pop("api_key", None)
    if dialect == V2:
        checks = [lambda: v2.check_user(sim, ep, request.headers.get("Authorization"), faults),
                  lambda: _check_params(dialect, ep, params)]
        if ep.name not in v2.ASKS_BEFORE_PARAMS:
            checks.reverse()
        problem = checks[0]() or checks[1]()
    else:
        problem = (_check_auth(sim, dialect, ep, request, faults)
                   or _check_params(dialect, ep, params))
    if problem is not None:
        return problem
    return ep.run(dialect, sim.catalog, params)


def dialect_handler(sim: SimulatorState, dialect: str) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        series_uid = request.query.get("SeriesInstanceUID")
        sim.stats.request(f"{dialect}:{name}", series_uid)
        faults = sim.take_faults(dialect, name, series_uid)
        for f in faults:
            if f.kind == "latency":
                await asyncio.sleep(float(f.params.get("seconds", 1)))
        reply = _early_reply(faults) or await _answer(sim, dialect, request, faults)
        sim.stats.status(getattr(reply, "status", 200))
        return await send(sim, request, reply, faults)

    return handle


async def send(sim: SimulatorState, request: web.Request, reply: AnyReply,
               faults: list[Fault]) -> web.StreamResponse:
    count = sim.stats.add_bytes
    if isinstance(reply, Reply):
        return await send_bytes(request, reply, faults, count)
    if isinstance(reply, FileReply):
        return await send_file(request, reply, sim.store.path(reply.blob), faults, count)
    reply, faults = await _zip_faults(sim, reply, faults)
    path = await sim.zips.get(reply.series, reply.collection, reply.variant)
    return await send_zip(request, reply, path, faults, count)


async def _zip_faults(sim: SimulatorState, reply: ZipReply,
                      faults: list[Fault]) -> tuple[ZipReply, list[Fault]]:
    """Faults that change which ZIP is sent (built as separate cached variants)."""
    rest = []
    for f in faults:
        if f.kind == "wrong_series":
            others = [s for s in sim.catalog.series.values()
                      if s.series_uid != reply.series.series_uid]
            if others:
                other = others[f.rng.randrange(len(others))]
                reply = replace(reply, series=other,
                                collection=sim.catalog.collections[other.collection])
        elif f.kind == "hostile":
            variant = replace(reply.variant, hostile=str(f.params["entry"]),
                              bomb_size=int(f.params.get("size", 1 << 30)))
            reply = replace(reply, variant=variant)
        elif f.kind == "truncate" and not f.params.get("raw"):
            full = await sim.zips.get(reply.series, reply.collection, reply.variant)
            limit = early_close_limit(full, f, reply.series.image_count)
            reply = truncated(reply, limit)
        else:
            rest.append(f)
    return reply, rest


def token_handler(sim: SimulatorState) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        sim.stats.request("token:oauth/token")
        faults = sim.take_faults("token", "token")
        if request.method != "POST":
            reply: Reply = server_error("HTTP 405 Method Not Allowed")
        else:
            form = await request.post()
            status, body = sim.tokens.grant({k: str(form.getone(k)) for k in form})
            reply = (server_error() if body is None
                     else Reply(status, json.dumps(body).encode(), "application/json"))
        reply = _early_reply(faults) or reply
        sim.stats.status(reply.status)
        return await send_bytes(request, reply, faults, sim.stats.add_bytes)

    return handle
