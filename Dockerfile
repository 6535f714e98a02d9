# One image for the four xinfang services. The service is the argument:
#   docker build -t xinfang:0.1.0 .
#   docker run --rm xinfang:0.1.0 xinfang.assignment      # python -m xinfang.assignment
#   docker run --rm xinfang:0.1.0 xinfang.cli --help      # the operators' CLI (default)
# docker-compose.yml and the Helm chart (charts/xinfang) give each container its
# service as the command. Settings come from XINFANG_* variables
# (services/xinfang/core/config.py); XINFANG_GRPC_HOST is 0.0.0.0 here so the
# gRPC port is reachable from outside the container.
#
# Runtime needs no writable root file system: Python byte code is compiled at
# build time, faust writes its (empty, in-memory store) data folder under the
# working directory /var/lib/xinfang and matplotlib its cache under /tmp; mount
# a tmpfs/emptyDir on both when the root file system is read-only.

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------- dependencies
# Every pinned dependency has a binary wheel for CPython 3.11 on manylinux
# x86_64, so no compiler is installed in either stage (a platform without those
# wheels fails here, loudly). The virtualenv is built in this stage and copied
# alone, without pip's caches or this stage's layers.
FROM ${PYTHON_IMAGE} AS deps
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
COPY requirements.txt constraints.txt /build/
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --prefer-binary -r /build/requirements.txt -c /build/constraints.txt

# ---------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE}
# Chinese glyphs for the report charts (reporting/render.py looks these up by
# path); set to "" for a smaller image whose charts show boxes for CJK text.
ARG CJK_FONTS=fonts-noto-cjk
ARG APP_UID=10001

LABEL org.opencontainers.image.title="xinfang" \
      org.opencontainers.image.description="xinfang petition case-work services: intake, assignment, supervision, reporting" \
      org.opencontainers.image.licenses="Apache-2.0"

# Debian's package versions follow the base image's point release: not pinned.
# hadolint ignore=DL3008
RUN set -eux; \
    if [ -n "$CJK_FONTS" ]; then \
      apt-get update; \
      apt-get install -y --no-install-recommends $CJK_FONTS; \
      rm -rf /var/lib/apt/lists/* /var/cache/apt/*; \
    fi; \
    groupadd --system --gid "$APP_UID" xinfang; \
    useradd --system --uid "$APP_UID" --gid xinfang --home-dir /var/lib/xinfang \
      --no-create-home --shell /usr/sbin/nologin xinfang; \
    install -d -o xinfang -g xinfang -m 0750 /var/lib/xinfang

COPY --from=deps /opt/venv /opt/venv
COPY --chown=root:root services/ /app/services/
RUN /opt/venv/bin/python -m compileall -q -j 0 /app/services

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app/services \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/var/lib/xinfang \
    MPLCONFIGDIR=/tmp/matplotlib \
    XINFANG_GRPC_HOST=0.0.0.0

WORKDIR /var/lib/xinfang
USER ${APP_UID}:${APP_UID}
# gRPC (with grpc.health.v1) and Prometheus /metrics of intake, assignment,
# supervision, reporting
EXPOSE 50061 50062 50063 50064 9161 9162 9163 9164

ENTRYPOINT ["python", "-m"]
CMD ["xinfang.cli", "--help"]
