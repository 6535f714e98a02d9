"""The gRPC server every service runs: health, reflection, and error mapping.

Handlers raise ``core.errors`` exceptions; ``rpc`` turns them into the
matching status with a message that names the field or the rule, so callers
never see INTERNAL for a request they could have got right. A store that is
briefly away (``core.mongo.TRANSIENT_ERRORS``) is ``UNAVAILABLE``: the
request did nothing it cannot redo, and the caller may retry it as it is
(intake's registration is idempotent by request id).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from xinfang.core.auth import Authenticator, authorize
from xinfang.core.errors import XinfangError
from xinfang.core.logging import get_logger
from xinfang.core.metrics import GRPC_LATENCY, GRPC_REQUESTS
from xinfang.core.mongo import TRANSIENT_ERRORS

__all__ = ["GrpcServer", "rpc"]

log = get_logger(__name__)

Req = TypeVar("Req")
Resp = TypeVar("Resp")
Handler = Callable[[Any, Req, grpc.aio.ServicerContext], Awaitable[Resp]]


def rpc(
    service: str, roles: frozenset[str] | None = None
) -> Callable[[Handler[Req, Resp]], Handler[Req, Resp]]:
    """Decorate a servicer method: authenticate and authorize the caller (see
    core.auth; ``roles`` limits who may call it), map domain errors to status
    codes, count it."""

    def deco(fn: Handler[Req, Resp]) -> Handler[Req, Resp]:
        method = fn.__name__

        @functools.wraps(fn)
        async def wrapper(self: Any, request: Req, context: grpc.aio.ServicerContext) -> Resp:
            t0 = time.perf_counter()
            code = "OK"
            try:
                authn: Authenticator = self._xinfang_auth
                authorize(authn.from_metadata(context.invocation_metadata()), request, roles)
                return await fn(self, request, context)
            except XinfangError as e:
                code = e.code_name
                await context.abort(getattr(grpc.StatusCode, e.code_name), e.message)
                raise  # unreachable: abort raises
            except grpc.aio.AbortError:
                raise
            except TRANSIENT_ERRORS as e:
                code = "UNAVAILABLE"
                log.warning("rpc: store unavailable", method=method, error=str(e)[:300])
                await context.abort(grpc.StatusCode.UNAVAILABLE, "store unavailable; retry")
                raise  # unreachable: abort raises
            except Exception:
                code = "INTERNAL"
                log.exception("rpc failed", method=method)
                raise
            finally:
                GRPC_REQUESTS.labels(service, method, code).inc()
                GRPC_LATENCY.labels(service, method).observe(time.perf_counter() - t0)

        return wrapper

    return deco


class GrpcServer:
    def __init__(self, host: str, port: int, auth: Authenticator) -> None:
        self.auth = auth
        self.server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        self.address = f"{host}:{port}"
        self.health = health.aio.HealthServicer()
        self._names: list[str] = []

    def add(
        self, adder: Callable[[Any, grpc.aio.Server], None], servicer: Any, full_name: str
    ) -> None:
        servicer._xinfang_auth = self.auth  # read by every @rpc method
        adder(servicer, self.server)
        self._names.append(full_name)

    async def start(self) -> None:
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        names: Iterable[str] = (
            *self._names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        )
        reflection.enable_server_reflection(tuple(names), self.server)
        if self.server.add_insecure_port(self.address) == 0:
            raise RuntimeError(f"cannot bind gRPC to {self.address}")
        await self.server.start()
        for n in ("", *self._names):
            await self._set(n, health_pb2.HealthCheckResponse.SERVING)
        log.info("grpc listening", listen=self.address)

    async def _set(self, name: str, status: int) -> None:
        await self.health.set(name, status)

    async def stop(self, grace: float = 2.0) -> None:
        for n in ("", *self._names):
            await self._set(n, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.server.stop(grace)
