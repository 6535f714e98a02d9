"""The gRPC server every service runs: health, reflection, and error mapping.

Handlers raise ``core.errors`` exceptions; ``rpc`` turns them into the
matching status with a message that names the field or the rule, so callers
never see INTERNAL for a request they could have got right. A store that is
briefly away (``core.mongo.TRANSIENT_ERRORS``) is ``UNAVAILABLE``: the
request did nothing it cannot redo, and the caller may retry it as it is
(intake's registration is idempotent by request id). So is Kafka refusing a
command's republish of a case's events still waiting to go out
(``assignment.store``): the command has recorded nothing yet.

Two refusals come before any handler: a message larger than the server's
``max_receive_bytes`` is refused by gRPC itself (RESOURCE_EXHAUSTED), and
bytes that do not decode as the method's request message (invalid UTF-8 in a
string, a truncated field) are refused with INVALID_ARGUMENT naming
``request`` (``_DecodeRequests``): left to gRPC, they came back UNKNOWN.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import grpc
from aiokafka.errors import KafkaError
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
                caller = await authn.from_metadata(context.invocation_metadata())
                authorize(caller, request, roles)
                return await fn(self, request, context)
            except XinfangError as e:
                code = e.code_name
                await context.abort(getattr(grpc.StatusCode, e.code_name), _capped(e.message))
                raise  # unreachable: abort raises
            except grpc.aio.AbortError:
                raise
            except TRANSIENT_ERRORS as e:
                code = "UNAVAILABLE"
                log.warning("rpc: store unavailable", method=method, error=str(e)[:300])
                await context.abort(grpc.StatusCode.UNAVAILABLE, "store unavailable; retry")
                raise  # unreachable: abort raises
            except KafkaError as e:
                code = "UNAVAILABLE"
                log.warning("rpc: event bus unavailable", method=method, error=str(e)[:300])
                await context.abort(grpc.StatusCode.UNAVAILABLE, "event bus unavailable; retry")
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


# A refusal quoting what the caller sent (an unknown id) quotes at most this
# much of it: the message travels as a trailer, percent-encoded (9 bytes per
# CJK character), and a client drops trailers over 16 KiB, refusal and all,
# with RESOURCE_EXHAUSTED; a 60,000-character id did just that.
MAX_DETAILS_CHARS = 500


def _capped(message: str) -> str:
    if len(message) <= MAX_DETAILS_CHARS:
        return message
    return f"{message[: MAX_DETAILS_CHARS - 30]}… ({len(message)} characters in all)"


class _DecodeRequests(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Decodes each unary request inside the handler, so undecodable bytes
    get a clear INVALID_ARGUMENT instead of gRPC's UNKNOWN."""

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], details: Any
    ) -> Any:
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None or handler.request_deserializer is None:
            return handler
        decode, inner, method = handler.request_deserializer, handler.unary_unary, details.method

        async def behavior(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
            try:
                request = decode(raw)
            except Exception as e:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"request: not a valid request message for {method} ({type(e).__name__})",
                )
            return await inner(request, context)

        return grpc.unary_unary_rpc_method_handler(
            behavior, request_deserializer=None, response_serializer=handler.response_serializer
        )


class GrpcServer:
    def __init__(
        self, host: str, port: int, auth: Authenticator, max_receive_bytes: int = 4 << 20
    ) -> None:
        self.auth = auth
        self.max_receive_bytes = max_receive_bytes
        self.server = grpc.aio.server(
            interceptors=[_DecodeRequests()],
            options=[
                ("grpc.so_reuseport", 0),
                ("grpc.max_receive_message_length", max_receive_bytes),
            ],
        )
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
