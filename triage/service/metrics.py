"""Prometheus metrics of one service instance (its own registry, so tests and several apps in
one process do not collide). With pre-forked workers, every worker writes its samples to
``PROMETHEUS_MULTIPROC_DIR`` and a scrape of any worker sums them all."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class Metrics:
    def __init__(self, *, multiprocess: bool = False) -> None:
        if multiprocess and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            raise RuntimeError("several workers need PROMETHEUS_MULTIPROC_DIR set before prometheus_client is "
                               "imported (`triage serve --workers N` does it)")
        self.multiprocess = multiprocess
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("kefu_http_requests", "HTTP requests by route and status",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("kefu_http_request_duration_seconds", "Request latency by route",
                                 ["route"], buckets=_LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("kefu_model_batch_size", "Messages per model call (dynamic batching)",
                                    ["kind"], buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=r)
        self.messages = Counter("kefu_messages_triaged", "Messages triaged by intent and urgency",
                                ["intent", "urgency"], registry=r)
        self.failures = Counter("kefu_messages_failed", "Messages refused as invalid input", registry=r)
        self.webhooks = Counter("kefu_webhook_events", "Helpdesk webhook events by adapter and outcome",
                                ["adapter", "outcome"], registry=r)
        self.outbox_pending = Gauge("kefu_outbox_pending", "Write-back calls waiting to be delivered", registry=r,
                                    multiprocess_mode="mostrecent")
        self.outbox_sent = Counter("kefu_outbox_deliveries", "Write-back delivery attempts by adapter and outcome",
                                   ["adapter", "outcome"], registry=r)

    def render(self) -> bytes:
        if not self.multiprocess:
            return generate_latest(self.registry)
        combined = CollectorRegistry()
        multiprocess.MultiProcessCollector(combined)
        return generate_latest(combined)
