"""Metrics, traces and logs: what an operator sees of the gateway and of each vendor."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.observability.metrics import Metrics
from gateway.observability.tracing import Tracing


@dataclass(frozen=True)
class Observer:
    metrics: Metrics | None
    tracing: Tracing


__all__ = ["Metrics", "Observer", "Tracing"]
