"""NBIA v2 (``/nbia-api/services/v2``): the v1 answers behind a Keycloak Bearer token.

The ``V2_*`` resources run the v1 queries on the token user's collections instead of the
guest's; every simulated collection is public, so the rows are v1's and the v1 handlers
answer. What differs is who may ask (reference §6.3 (a), ``getData.getUserName``):

- every handler asks Keycloak who the caller is; ``Bearer undefined`` is the guest;
- the image handlers let a failure escape: no Authorization header is a
  NullPointerException (500 ``…request\\nnull``), a bad or expired token a 401.
  ``V2_getImage`` asks before it checks its parameter, the others after;
- the metadata handlers swallow it: the user sees no collection, an empty 200
  (``getSeriesMetaData``: its 204);
- a series the user may not see gets v4's "has not been granted" 400.
"""

from __future__ import annotations

from dataclasses import replace

from mirror.simulator.endpoints import Endpoint
from mirror.simulator.faults import Fault
from mirror.simulator.images import DIALECTS
from mirror.simulator.replies import EMPTY, Reply, server_error
from mirror.simulator.state import SimulatorState
from mirror.simulator.tables import V1

#: Handlers that call getUserName() outside a try block.
USER_FIRST = frozenset({"getImage", "getImageWithMD5Hash", "getSingleImage",
                        "getM5HashForImage"})
#: Handlers that ask for the user before checking their required parameters.
ASKS_BEFORE_PARAMS = frozenset({"getImage"})
#: Handlers whose v1 code already speaks v2 (the "not granted" text depends on it).
_OWN_DIALECT = frozenset({"getImage", "getImageWithMD5Hash"})


def _as_v1(ep: Endpoint) -> Endpoint:
    run = ep.run
    return replace(ep, run=lambda _d, cat, p: run(V1, cat, p))


TABLE: dict[str, Endpoint] = {
    name: ep if name in _OWN_DIALECT else _as_v1(ep) for name, ep in DIALECTS[V1].items()}


def check_user(sim: SimulatorState, ep: Endpoint, header: str | None,
               faults: list[Fault]) -> Reply | None:
    """The reply when the caller is not a known user, ``None`` when the handler runs."""
    image = ep.name in USER_FIRST
    if image and any(f.kind == "expire_token" for f in faults):
        sim.tokens.expire(header)
    if header is not None and header.strip().lower() == "bearer undefined":
        return None  # the guest: every simulated collection is public
    verdict = sim.tokens.check(header)
    if verdict == "ok":
        return None
    if image:
        return server_error() if verdict == "missing" else Reply(401)
    return Reply(204) if ep.name == "getSeriesMetaData" else EMPTY
