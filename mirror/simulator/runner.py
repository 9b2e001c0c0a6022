"""The simulate command's event loop: start, print the base URLs, serve until a signal.

Every API served is printed, NBIA v2 too: tcia-mirror speaks v3, nbia-v1 and nbia-v4, and
the v2 line is for other clients (nbiatoolkit) pointed at the same simulator.

With a second host (``--second-host-port``) a second, independent simulator serves its
own dataset on its own port, the way NLST has its own NBIA host; its lines are printed
with a ``second-`` prefix.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from mirror.errors import SourceError, UsageError
from mirror.simulator.faults import parse_spec
from mirror.simulator.model import DatasetSpec
from mirror.simulator.server import Simulator, serve
from mirror.simulator.state import ADMIN_PREFIX, SERVED, TOKEN_PATH


def run(data_dir: Path, spec: DatasetSpec, *, host: str, port: int, api_key: str | None,
        auth: bool, users: dict[str, str], token_ttl: float, faults: tuple[str, ...],
        fault_seed: int, second: tuple[DatasetSpec, int] | None = None) -> None:
    sim = Simulator(data_dir, spec, api_key=api_key, auth=auth, users=users,
                    token_ttl=token_ttl, fault_seed=fault_seed)
    for spec_text in faults:
        args = parse_spec(spec_text)
        sim.add_fault(args.pop("endpoint"), args.pop("kind"), **args)
    servers = [(sim, port, "")]
    if second is not None:
        other = Simulator(data_dir, second[0], api_key=api_key, auth=auth, users=users,
                          token_ttl=token_ttl, fault_seed=fault_seed)
        servers.append((other, second[1], "second-"))
    try:
        asyncio.run(_serve(servers, host))
    except OSError as exc:
        raise SourceError(f"cannot listen on {host}:{port}: {exc}") from exc
    except KeyboardInterrupt:  # a second Ctrl-C while stopping
        raise UsageError("interrupted") from None


async def _serve(servers: list[tuple[Simulator, int, str]], host: str) -> None:
    runners, lines = [], []
    shown = f"[{host}]" if ":" in host else host
    try:
        for sim, port, label in servers:
            runner, bound = await serve(sim, host, port)
            runners.append(runner)
            base = f"http://{shown}:{bound}"
            lines += [f"{label}{name} {base}{prefix}" for name, prefix in SERVED.items()]
            lines += [f"{label}token {base}{TOKEN_PATH}",
                      f"{label}admin {base}{ADMIN_PREFIX}/"]
    except BaseException:
        for runner in runners:
            await runner.cleanup()
        raise
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for runner in runners:
            await runner.cleanup()
