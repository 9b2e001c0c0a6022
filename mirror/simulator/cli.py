"""``tcia-mirror simulate``: run the offline TCIA simulator until SIGTERM or SIGINT.

Heavy modules are imported inside the command so that ``tcia-mirror --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mirror.errors import MirrorError, UsageError

FAULT_HELP = (
    "Inject a fault (repeatable): [DIALECT/]ENDPOINT:KIND[=VALUE][:key=value]... "
    "KIND is status, retry_after, reset, truncate, corrupt, slow, latency, expire_token, "
    "hostile or wrong_series; keys count=N (next N requests) and rate=P (probability, "
    "seeded by --fault-seed). Examples: getImage:status=500:count=3, "
    "nbia-v4/getImage:retry_after=2:status=503, getImage:truncate=0.5, "
    "getImage:reset=100000:rate=0.2, getImage:hostile=dotdot, '*:latency=0.2'.")


def _credentials_from(path: str, api_key: str | None, auth: bool,
                      accounts: dict[str, str]) -> tuple[str | None, bool]:
    """Take the credentials a mirror config will present (flags still win)."""
    from mirror.config.settings import load_settings

    try:
        source = load_settings(path).source
    except MirrorError as exc:
        click.echo(f"tcia-mirror: error: {exc.message}", err=True)
        sys.exit(exc.exit_code)
    if source.username:
        accounts.setdefault(source.username, source.password)
        auth = True
    return api_key or source.api_key or None, auth


def _users(values: tuple[str, ...]) -> dict[str, str]:
    users = {}
    for item in values:
        name, sep, password = item.partition(":")
        if not sep or not name:
            raise UsageError(f"--user {item!r} must be NAME:PASSWORD")
        users[name] = password
    return users


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8080, show_default=True, type=int,
              help="Port to bind; 0 picks a free one.")
@click.option("--seed", default=1, show_default=True, type=int, help="Dataset seed.")
@click.option("--data", "data_dir", default="./sim-data", show_default=True,
              type=click.Path(file_okay=False), help="Where DICOM files and ZIPs are kept.")
@click.option("--collections", default=1, show_default=True, type=click.IntRange(1))
@click.option("--patients", default=2, show_default=True, type=click.IntRange(1),
              help="Patients per collection.")
@click.option("--studies", default=1, show_default=True, type=click.IntRange(1),
              help="Studies per patient.")
@click.option("--series", default=2, show_default=True, type=click.IntRange(1),
              help="Series per study.")
@click.option("--instances", default=3, show_default=True, type=click.IntRange(1),
              help="Instances per series.")
@click.option("--instance-size", default=2048, show_default=True, type=click.IntRange(128),
              help="Bytes of pixel data per instance (roughly).")
@click.option("--api-key", default=None, help="v3 requires this api_key header when set.")
@click.option("--auth", is_flag=True, help="Require a Bearer token on NBIA image endpoints.")
@click.option("--user", "users", multiple=True, help="NAME:PASSWORD for the token endpoint "
              "(repeatable; nbia_guest always works).")
@click.option("--token-ttl", default=3600.0, show_default=True, type=float,
              help="Access token lifetime in seconds.")
@click.option("--fault", "faults", multiple=True, help=FAULT_HELP)
@click.option("--fault-seed", default=0, show_default=True, type=int,
              help="Seed of the fault RNG (rate=...).")
@click.option("--second-host-port", type=int, default=None,
              help="Also serve a second, independent NBIA host (its own dataset, like "
                   "NLST's own host) on this port; 0 picks a free one.")
@click.option("--second-host-collection", default="NLST", show_default=True,
              help="The second host's collection name.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="A tcia-mirror config whose [source] credentials the simulator then "
                   "requires: api_key for v3, username/password (token auth) for NBIA.")
def simulate(host: str, port: int, seed: int, data_dir: str, collections: int, patients: int,
             studies: int, series: int, instances: int, instance_size: int,
             api_key: str | None, auth: bool, users: tuple[str, ...], token_ttl: float,
             faults: tuple[str, ...], fault_seed: int, second_host_port: int | None,
             second_host_collection: str, config_path: str | None) -> None:
    """Run the offline TCIA simulator (v3, NBIA v1 and v4, token endpoint, /_sim/ admin)."""
    from mirror.simulator.model import DatasetSpec, second_host_spec
    from mirror.simulator.runner import run

    accounts = _users(users)
    if config_path is not None:
        api_key, auth = _credentials_from(config_path, api_key, auth, accounts)

    spec = DatasetSpec(seed=seed, collections=collections, patients=patients, studies=studies,
                       series=series, instances=instances, instance_size=instance_size)
    second = (None if second_host_port is None
              else (second_host_spec(spec, second_host_collection), second_host_port))
    try:
        run(Path(data_dir), spec, host=host, port=port, api_key=api_key, auth=auth,
            users=accounts, token_ttl=token_ttl, faults=faults, fault_seed=fault_seed,
            second=second)
    except MirrorError as exc:
        click.echo(f"tcia-mirror: error: {exc.message}", err=True)
        sys.exit(exc.exit_code)
