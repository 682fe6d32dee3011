"""Prometheus metrics, served on `metrics.listen` when it is set."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from broker.broker import Broker


class BrokerMetrics:
    def __init__(self, broker: "Broker") -> None:
        # Imported here: a broker without metrics.listen never loads prometheus-client.
        from prometheus_client import CollectorRegistry, Counter, Histogram
        self.registry = CollectorRegistry()
        self.requests = Counter("gregor_requests", "Requests served, per API",
                                ["api"], registry=self.registry)
        self.request_latency = Histogram(
            "gregor_request_latency_seconds", "Time to answer a request, per API", ["api"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry)
        self._bytes_in = Counter("gregor_topic_bytes_in", "Record bytes appended, per topic",
                                 ["topic"], registry=self.registry)
        self._bytes_out = Counter("gregor_topic_bytes_out", "Record bytes fetched, per topic",
                                  ["topic"], registry=self.registry)
        self.registry.register(_PartitionCollector(broker))

    def observe_request(self, api: str, seconds: float) -> None:
        self.requests.labels(api).inc()
        self.request_latency.labels(api).observe(seconds)

    def bytes_in(self, topic: str, count: int) -> None:
        self._bytes_in.labels(topic).inc(count)

    def bytes_out(self, topic: str, count: int) -> None:
        self._bytes_out.labels(topic).inc(count)


class NoMetrics:
    """Stands in when metrics.listen is unset: nothing counted, prometheus not imported."""

    def observe_request(self, api: str, seconds: float) -> None:
        pass

    def bytes_in(self, topic: str, count: int) -> None:
        pass

    def bytes_out(self, topic: str, count: int) -> None:
        pass


class _PartitionCollector:
    """Partition counts and log end offsets, read when scraped."""

    def __init__(self, broker: "Broker") -> None:
        self._broker = broker

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        partitions = GaugeMetricFamily("gregor_partitions", "Partitions hosted by this broker")
        end_offsets = GaugeMetricFamily("gregor_log_end_offset", "Log end offset per partition",
                                        labels=["topic", "partition"])
        count = 0
        for manager in self._broker.log_managers:
            for (topic, partition), log in manager.logs().items():
                count += 1
                end_offsets.add_metric([topic, str(partition)], log.log_end_offset)
        partitions.add_metric([], count)
        yield partitions
        yield end_offsets
