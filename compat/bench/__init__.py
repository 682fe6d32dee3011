"""Gregor against Apache Kafka: throughput, latency, startup, memory, many connections.

    python -m compat.bench [--rounds N] [--quick] [--write-docs]

Each workload runs against both brokers in the same run, rounds interleaved (Gregor,
Kafka, Gregor, Kafka, ...); the medians and the ratio Gregor / Kafka are printed, and
with --write-docs written to docs/performance.md. Load generators (librdkafka through
confluent-kafka, Kafka's ProducerPerformance) run in their own processes.
"""
