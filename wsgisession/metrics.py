"""Prometheus metrics for session events and store latency.

::

    from wsgisession.metrics import instrument, metrics_app

    sessions = SessionMiddleware(app, secret_key=KEY, store=RedisStore(...))
    instrument(sessions)
    # serve the metrics, e.g. under /metrics with werkzeug's DispatcherMiddleware:
    application = DispatcherMiddleware(sessions, {"/metrics": metrics_app()})

Two metrics:

- ``wsgisession_session_events_total{event=…}``: a counter per
  :class:`~wsgisession.events.EventName` (created, logged_in, revoked, tampered …);
- ``wsgisession_store_seconds{operation=…}``: a histogram of the store's ``load``,
  ``save``, ``delete`` and ``touch`` calls (server-side stores).

**Under gunicorn** (several worker processes) set ``PROMETHEUS_MULTIPROC_DIR`` to an
empty directory before the server starts: ``prometheus_client`` then keeps each
worker's values in files there, and :func:`metrics_app` adds them up, so whichever
worker answers ``/metrics`` reports the whole server. Empty the directory on each
start (``rm -rf "$PROMETHEUS_MULTIPROC_DIR"/*`` in the start script).

Needs the ``metrics`` extra: ``pip install 'sessionlayer[metrics]'``.
"""

from __future__ import annotations

import os
import time
import weakref
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from .errors import ConfigurationError
from .events import EventName, SessionEvent
from .stores.base import ServerSessionStore

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

    from .middleware import SessionMiddleware

__all__ = ["SessionMetrics", "instrument", "metrics_app"]

#: Store calls take from about 10 µs (LRU) to a few ms (a remote Redis).
_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.0)


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError as exc:
        raise ConfigurationError(
            "wsgisession.metrics needs the prometheus_client package:"
            " pip install 'sessionlayer[metrics]'"
        ) from exc
    return prometheus_client


class SessionMetrics:
    """The counters and histogram of one registry; see :func:`instrument`."""

    def __init__(self, registry: Any, namespace: str) -> None:
        prometheus = _prometheus()
        self.events = prometheus.Counter(
            "session_events",
            "Session events, by event (wsgisession.events.EventName).",
            ["event"],
            namespace=namespace,
            registry=registry,
        )
        self.store_seconds = prometheus.Histogram(
            "store_seconds",
            "Latency of session store calls, by operation.",
            ["operation"],
            namespace=namespace,
            registry=registry,
            buckets=_BUCKETS,
        )
        # Every label is present from the start, so a dashboard sees 0, not "no data".
        for name in EventName:
            self.events.labels(name.value)
        self._timers = {
            op: self.store_seconds.labels(op) for op in ("load", "save", "delete", "touch")
        }

    def count(self, event: SessionEvent) -> None:
        """Count one event (the :meth:`~wsgisession.SessionMiddleware.on_event` callback)."""
        self.events.labels(event.name.value).inc()

    def observe(self, operation: str, seconds: float) -> None:
        """Record one store call."""
        self._timers[operation].observe(seconds)


# Per registry, weakly: keyed by id() a registry made after another was freed could
# get the old one's metrics (ids are reused), and its samples would go nowhere.
_made: weakref.WeakKeyDictionary[Any, dict[str, SessionMetrics]] = weakref.WeakKeyDictionary()


class _TimedStore(ServerSessionStore):
    """A server store whose four calls are timed; everything else is the store's."""

    def __init__(self, store: ServerSessionStore, metrics: SessionMetrics) -> None:
        self.store = store
        self.metrics = metrics
        self.process_local = store.process_local

    def load(self, key: str) -> dict[str, bytes] | None:
        start = time.perf_counter()
        try:
            return self.store.load(key)
        finally:
            self.metrics.observe("load", time.perf_counter() - start)

    def save(
        self,
        key: str,
        changed: Mapping[str, bytes],
        removed: Collection[str],
        ttl: int,
        *,
        create: bool,
    ) -> bool:
        start = time.perf_counter()
        try:
            return self.store.save(key, changed, removed, ttl, create=create)
        finally:
            self.metrics.observe("save", time.perf_counter() - start)

    def delete(self, key: str) -> None:
        start = time.perf_counter()
        try:
            self.store.delete(key)
        finally:
            self.metrics.observe("delete", time.perf_counter() - start)

    def touch(self, key: str, ttl: int) -> None:
        start = time.perf_counter()
        try:
            self.store.touch(key, ttl)
        finally:
            self.metrics.observe("touch", time.perf_counter() - start)

    def close(self) -> None:
        self.store.close()


def instrument(
    middleware: SessionMiddleware, *, registry: Any = None, namespace: str = "wsgisession"
) -> SessionMetrics:
    """Count *middleware*'s session events and time its store calls.

    Several middlewares may share one registry: their counts add up.

    :param middleware: The :class:`~wsgisession.SessionMiddleware` to observe.
    :param registry: A ``prometheus_client.CollectorRegistry``; default: the global one.
    :param namespace: The metric names' prefix.
    :raises ConfigurationError: ``prometheus_client`` is not installed.
    """
    prometheus = _prometheus()
    registry = prometheus.REGISTRY if registry is None else registry
    made = _made.setdefault(registry, {})
    metrics = made.get(namespace)
    if metrics is None:
        metrics = made[namespace] = SessionMetrics(registry, namespace)
    middleware.on_event(metrics.count)
    if isinstance(middleware.store, ServerSessionStore):
        middleware.wrap_store(
            lambda store: store if isinstance(store, _TimedStore) else _TimedStore(store, metrics)
        )
    return metrics


def metrics_app(registry: Any = None) -> WSGIApplication:
    """A WSGI app serving the metrics in Prometheus's text format.

    With ``PROMETHEUS_MULTIPROC_DIR`` set it reports the sum over every process
    (gunicorn workers); otherwise *registry* (default: the global one).
    """
    prometheus = _prometheus()
    if registry is None and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = prometheus.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    app: WSGIApplication = prometheus.make_wsgi_app(
        prometheus.REGISTRY if registry is None else registry
    )
    return app
