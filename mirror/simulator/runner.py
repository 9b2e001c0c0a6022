"""The simulate command's event loop: start, print the base URLs, serve until a signal."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from mirror.errors import SourceError, UsageError
from mirror.simulator.faults import parse_spec
from mirror.simulator.model import DatasetSpec
from mirror.simulator.server import ADMIN_PREFIX, PREFIXES, TOKEN_PATH, Simulator, serve


def run(data_dir: Path, spec: DatasetSpec, *, host: str, port: int, api_key: str | None,
        auth: bool, users: dict[str, str], token_ttl: float, faults: tuple[str, ...],
        fault_seed: int) -> None:
    sim = Simulator(data_dir, spec, api_key=api_key, auth=auth, users=users,
                    token_ttl=token_ttl, fault_seed=fault_seed)
    for spec_text in faults:
        args = parse_spec(spec_text)
        sim.add_fault(args.pop("endpoint"), args.pop("kind"), **args)
    try:
        asyncio.run(_serve(sim, host, port))
    except OSError as exc:
        raise SourceError(f"cannot listen on {host}:{port}: {exc}") from exc
    except KeyboardInterrupt:  # a second Ctrl-C while stopping
        raise UsageError("interrupted") from None


async def _serve(sim: Simulator, host: str, port: int) -> None:
    runner, bound = await serve(sim, host, port)
    shown = f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{bound}"
    lines = [f"{name} {base}{prefix}" for name, prefix in PREFIXES.items()]
    lines += [f"token {base}{TOKEN_PATH}", f"admin {base}{ADMIN_PREFIX}/"]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
