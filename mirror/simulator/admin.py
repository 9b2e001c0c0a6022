"""Admin routes under ``/_sim/``: releases, faults, statistics, ground truth, token expiry.

They mirror the Python handle of :mod:`mirror.simulator.testing`, so tests that run
``tcia-mirror simulate`` in a subprocess can drive it over HTTP. Not counted in stats.
"""

from __future__ import annotations

import asyncio
import functools
import json
from dataclasses import asdict
from datetime import date
from typing import Any

from aiohttp import web

from mirror.errors import MirrorError
from mirror.simulator.faults import parse_spec
from mirror.simulator.state import ADMIN_PREFIX, SimulatorState

SIM = web.AppKey("sim", SimulatorState)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(data, default=str).encode(),
                        content_type="application/json")


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json() if request.can_read_body else {}
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return data


async def release(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    body = await _body(request)
    try:
        on = date.fromisoformat(str(body.pop("on")))
        # Writing a release's files can take a while: keep the loop serving meanwhile.
        summary = await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(sim.publish_release, on, **body))
    except (KeyError, TypeError, ValueError, MirrorError) as exc:
        return _json({"error": str(exc)}, 400)
    return _json(asdict(summary))


async def add_fault(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    body = await _body(request)
    try:
        args = parse_spec(body["spec"]) if "spec" in body else dict(body)
        fault_id = sim.add_fault(args.pop("endpoint"), args.pop("kind"), **args)
    except (KeyError, TypeError, MirrorError) as exc:
        return _json({"error": str(exc)}, 400)
    return _json({"id": fault_id})


async def list_faults(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    return _json(sim.faults.list())


async def clear_faults(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    sim.faults.clear()
    return _json({"cleared": True})


async def stats(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    return _json(sim.stats.snapshot())


async def reset_stats(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    sim.stats.reset()
    return _json({"reset": True})


async def truth(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    found = sim.ground_truth(request.query.get("collection"))
    return _json({uid: asdict(t) for uid, t in found.items()})


async def info(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    return _json({"collections": sim.collections(),
                  "shared_lists": {k: list(v) for k, v in sim.catalog.shared_lists.items()},
                  "releases": sim.catalog.releases, "md5_cache": sim.md5_cache()})


async def refresh_md5(request: web.Request) -> web.Response:
    """Run the server's daily collection-hash job now (getMD5Hierarchy?Collection=)."""
    return _json({"md5_cache": request.app[SIM].refresh_md5_cache()})


async def clock(request: web.Request) -> web.Response:
    """``{"hours": H}``: simulated time passes; the daily hash job runs every 24 hours."""
    body = await _body(request)
    try:
        ran = request.app[SIM].advance_clock(float(body["hours"]))
    except (KeyError, TypeError, ValueError, MirrorError) as exc:
        return _json({"error": str(exc)}, 400)
    return _json({"md5_job_ran": ran, "md5_cache": request.app[SIM].md5_cache()})


async def stored_md5(request: web.Request) -> web.Response:
    """``{"short": N, "blank": N, "null": N, "collection": C, "sop_uids": {SOP: kind}}``:
    per-image MD5s the server then stores differently; answers {SOP: stored value}."""
    body = await _body(request)
    try:
        shown = request.app[SIM].set_stored_md5(**body)
    except (TypeError, MirrorError) as exc:
        return _json({"error": str(exc)}, 400)
    return _json(shown)


async def expire(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    sim.tokens.expire_all()
    return _json({"expired": True})


def add_routes(app: web.Application, sim: SimulatorState) -> None:
    app[SIM] = sim
    p = ADMIN_PREFIX
    app.router.add_get(p + "/", info)
    app.router.add_post(p + "/release", release)
    app.router.add_post(p + "/faults", add_fault)
    app.router.add_get(p + "/faults", list_faults)
    app.router.add_delete(p + "/faults", clear_faults)
    app.router.add_get(p + "/stats", stats)
    app.router.add_post(p + "/stats/reset", reset_stats)
    app.router.add_get(p + "/truth", truth)
    app.router.add_post(p + "/tokens/expire", expire)
    app.router.add_post(p + "/md5-cache/refresh", refresh_md5)
    app.router.add_post(p + "/clock", clock)
    app.router.add_post(p + "/stored-md5", stored_md5)
