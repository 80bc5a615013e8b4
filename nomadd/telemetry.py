"""In-process metrics with go-metrics' three kinds: gauges, counters and samples (timings).

Any component records with ``set_gauge``, ``incr_counter``, ``add_sample`` or ``measure_since``
(names are dotted, Nomad's: ``nomad.heartbeat.active``). ``GET /v1/metrics`` renders the registry
as go-metrics' inmem JSON (``to_json``) or, with ``?format=prometheus``, as the Prometheus text
format through prometheus-client (``to_prometheus``, imported only when asked for).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

__all__ = [
    "REGISTRY",
    "Registry",
    "add_sample",
    "incr_counter",
    "measure_since",
    "set_gauge",
]

LabelKey = tuple[tuple[str, str], ...]


@dataclass(slots=True)
class _Agg:
    count: int = 0
    total: float = 0.0
    sumsq: float = 0.0
    min: float = math.inf
    max: float = -math.inf

    def add(self, v: float) -> None:
        self.count += 1
        self.total += v
        self.sumsq += v * v
        self.min = min(self.min, v)
        self.max = max(self.max, v)

    def as_json(self, name: str, labels: LabelKey, interval_s: float) -> dict[str, object]:
        mean = self.total / self.count if self.count else 0.0
        var = self.sumsq / self.count - mean * mean if self.count > 1 else 0.0
        return {
            "Name": name,
            "Count": self.count,
            "Rate": self.total / interval_s if interval_s else 0.0,
            "Sum": self.total,
            "Min": self.min if self.count else 0.0,
            "Max": self.max if self.count else 0.0,
            "Mean": mean,
            "Stddev": math.sqrt(max(var, 0.0)),
            "Labels": dict(labels),
        }


@dataclass
class Registry:
    started: float = field(default_factory=time.monotonic)
    gauges: dict[tuple[str, LabelKey], float] = field(default_factory=dict)
    counters: dict[tuple[str, LabelKey], _Agg] = field(default_factory=dict)
    samples: dict[tuple[str, LabelKey], _Agg] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set_gauge(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        with self.lock:
            self.gauges[(name, _key(labels))] = float(value)

    def incr_counter(self, name: str, n: float = 1, labels: Mapping[str, str] | None = None) -> None:
        with self.lock:
            self.counters.setdefault((name, _key(labels)), _Agg()).add(float(n))

    def add_sample(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        with self.lock:
            self.samples.setdefault((name, _key(labels)), _Agg()).add(float(value))

    def to_json(self) -> dict[str, object]:
        interval = max(time.monotonic() - self.started, 1e-9)
        with self.lock:
            return {
                "Timestamp": time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime()),
                "Gauges": [
                    {"Name": n, "Value": v, "Labels": dict(lab)}
                    for (n, lab), v in sorted(self.gauges.items())
                ],
                "Counters": [a.as_json(n, lab, interval) for (n, lab), a in sorted(self.counters.items())],
                "Samples": [a.as_json(n, lab, interval) for (n, lab), a in sorted(self.samples.items())],
                "Points": [],
            }

    def to_prometheus(self) -> bytes:
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            SummaryMetricFamily,
        )

        registry = self

        class _Collector:
            def collect(self) -> Iterator[object]:
                with registry.lock:
                    gauges = dict(registry.gauges)
                    counters = {k: a.total for k, a in registry.counters.items()}
                    samples = {k: (a.count, a.total) for k, a in registry.samples.items()}
                for name, rows in _by_name(gauges).items():
                    g = GaugeMetricFamily(_prom_name(name), name, labels=_label_names(rows))
                    for lab, v in rows:
                        g.add_metric(_label_values(lab, g._labelnames), v)
                    yield g
                for name, rows in _by_name(counters).items():
                    c = CounterMetricFamily(_prom_name(name), name, labels=_label_names(rows))
                    for lab, v in rows:
                        c.add_metric(_label_values(lab, c._labelnames), v)
                    yield c
                for name, srows in _by_name(samples).items():
                    sm = SummaryMetricFamily(_prom_name(name), name, labels=_label_names(srows))
                    for lab, (cnt, tot) in srows:
                        sm.add_metric(_label_values(lab, sm._labelnames), count_value=cnt, sum_value=tot)
                    yield sm

        reg = CollectorRegistry(auto_describe=False)
        reg.register(_Collector())  # type: ignore[arg-type]
        out: bytes = generate_latest(reg)
        return out


_V = TypeVar("_V")


def _by_name(table: dict[tuple[str, LabelKey], _V]) -> dict[str, list[tuple[LabelKey, _V]]]:
    out: dict[str, list[tuple[LabelKey, _V]]] = {}
    for (name, labels), value in sorted(table.items(), key=lambda kv: kv[0]):
        out.setdefault(name, []).append((labels, value))
    return out


def _label_names(rows: list[tuple[LabelKey, _V]]) -> list[str]:
    return sorted({k for labels, _ in rows for k, _v in labels})


def _label_values(labels: LabelKey, names: Sequence[str]) -> list[str]:
    d = dict(labels)
    return [d.get(k, "") for k in names]


def _key(labels: Mapping[str, str] | None) -> LabelKey:
    return tuple(sorted(labels.items())) if labels else ()


def _prom_name(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


REGISTRY = Registry()


def set_gauge(name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
    REGISTRY.set_gauge(name, value, labels)


def incr_counter(name: str, n: float = 1, labels: Mapping[str, str] | None = None) -> None:
    REGISTRY.incr_counter(name, n, labels)


def add_sample(name: str, value_ms: float, labels: Mapping[str, str] | None = None) -> None:
    REGISTRY.add_sample(name, value_ms, labels)


def measure_since(name: str, start_monotonic: float, labels: Mapping[str, str] | None = None) -> None:
    """Record milliseconds elapsed since ``start_monotonic`` (a ``time.monotonic()`` value)."""
    REGISTRY.add_sample(name, (time.monotonic() - start_monotonic) * 1000.0, labels)
