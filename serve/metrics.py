"""Prometheus metrics: request counts and latencies by route, and generated tokens."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()  # one per app: tests start several
        self._requests = Counter(
            "ragstack_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self._latency = Histogram(
            "ragstack_request_seconds",
            "HTTP request latency",
            ["route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self._tokens = Counter(
            "ragstack_generated_tokens", "tokens generated for answers", registry=self.registry
        )

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        self._requests.labels(method, route, str(status)).inc()
        self._latency.labels(route).observe(seconds)

    def tokens(self, count: int) -> None:
        self._tokens.inc(count)

    def render(self) -> str:
        return generate_latest(self.registry).decode()


async def measure_requests(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """HTTP middleware: count each request and time it, by route template (not by path: one
    series per route, whatever the ids in it)."""
    start = time.perf_counter()
    response = await call_next(request)
    route = _template(request) if request.scope.get("route") is not None else "unmatched"
    seconds = time.perf_counter() - start
    request.app.state.rag.metrics.request(request.method, route, response.status_code, seconds)
    return response


def _template(request: Request) -> str:
    """The request's path with its path parameters' values put back as {names}: the route as
    declared, whichever router prefix (default or named collection) it came through."""
    names = {str(value): f"{{{name}}}" for name, value in request.path_params.items()}
    return "/".join(names.get(part, part) for part in request.url.path.split("/"))
