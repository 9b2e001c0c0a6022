# tcia-mirror: the daemon (default) or any other command, as a non-root user.
#   docker build -t tcia-mirror .
#   docker run -v mirror-archive:/data/archive -v mirror-catalog:/data/catalog \
#     -e TCIA_MIRROR_SYNC_COLLECTIONS=LIDC-IDRI -p 9188:9188 tcia-mirror
# Every config key can be set as TCIA_MIRROR_<SECTION>_<KEY>; a config file mounted at
# /data/tcia-mirror.toml is read too (the working directory is /data).
# BASE lets machines without registry access build on a locally made Debian bookworm
# (see tests/container/); it must provide apt and the bookworm archive.
ARG BASE=debian:bookworm-slim
FROM ${BASE}

# Debian's own python3 (3.11 in bookworm): security updates come with the base image.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log

# The package lives in its own venv so that pip never touches Debian's python3.
ENV VIRTUAL_ENV=/opt/tcia-mirror \
    PATH=/opt/tcia-mirror/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/tcia-mirror

# PIP_CERT names a CA bundle mounted into the build (podman build -v ...) so that pip
# trusts the same authority as the host's pip; it is a build argument only, never
# written into the image. Unset or empty means pip's own certificates.
ARG PIP_CERT

# Dependencies first, from pyproject.toml alone: editing the source does not
# re-download them. setuptools + wheel let the package build without an isolated env.
COPY pyproject.toml /src/pyproject.toml
RUN if [ -n "${PIP_CERT:-}" ]; then export PIP_CERT; else unset PIP_CERT; fi \
 && python3 -c 'import tomllib; print("\n".join(tomllib.load(open("/src/pyproject.toml", "rb"))["project"]["dependencies"]))' > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt "setuptools>=68" wheel \
 && rm /tmp/requirements.txt

# The package itself: no network needed, seconds to rebuild. Alembic's migrations/
# ship inside it as mirror/_migrations (see pyproject.toml).
COPY README.md /src/README.md
COPY mirror /src/mirror
COPY migrations /src/migrations
RUN pip install --no-deps --no-build-isolation /src \
 && rm -rf /src

# A fixed uid so that bind-mounted host directories can be chowned to match.
RUN groupadd --gid 10001 mirror \
 && useradd --uid 10001 --gid 10001 --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin mirror \
 && mkdir -p /data/archive /data/catalog \
 && chown -R mirror:mirror /data

# The image's defaults for where data goes are TCIA_MIRROR_DEFAULT_<SECTION>_<KEY>: they
# rank below a config file, so a mounted /data/tcia-mirror.toml's [archive] root and
# [catalog] url win (plain TCIA_MIRROR_* variables would silently beat the file). The
# listen address stays a plain variable: EXPOSE and the HEALTHCHECK below depend on it.
ENV TCIA_MIRROR_DEFAULT_ARCHIVE_ROOT=/data/archive \
    TCIA_MIRROR_DEFAULT_CATALOG_URL=sqlite+aiosqlite:////data/catalog/catalog.db \
    TCIA_MIRROR_DAEMON_LISTEN=0.0.0.0:9188

USER mirror
WORKDIR /data
VOLUME ["/data/archive", "/data/catalog"]
EXPOSE 9188

# python3, not curl: slim images have no curl. A wildcard listen address is probed on
# loopback; any error or a non-200 answer (503 = unhealthy) is a failed check. /healthz
# is 503 until the first poll of every collection succeeds, and a first full listing of
# a large collection (NLST) takes minutes: hence the long start period (a success
# inside it still marks the container healthy at once).
HEALTHCHECK --interval=30s --timeout=5s --start-period=5m --retries=3 \
  CMD ["python3", "-c", "import os, sys, urllib.request as r\nhost, _, port = os.environ.get('TCIA_MIRROR_DAEMON_LISTEN', '127.0.0.1:9188').rpartition(':')\nhost = host.strip('[]')\nhost = {'': '127.0.0.1', '0.0.0.0': '127.0.0.1', '::': '::1', '*': '127.0.0.1'}.get(host, host)\nhost = f'[{host}]' if ':' in host else host\ntry:\n    ok = r.urlopen(f'http://{host}:{port}/healthz', timeout=4).status == 200\nexcept Exception as exc:\n    sys.exit(f'unhealthy: {exc}')\nsys.exit(0 if ok else 1)\n"]

# SIGTERM starts the daemon's graceful drain ([daemon] shutdown_timeout, default 8 s,
# inside Docker's 10 s grace period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["tcia-mirror"]
CMD ["daemon"]
