"""Cluster metadata in ZooKeeper, in Kafka's pre-KRaft layout (docs/cluster.md).

`server` runs a real ZooKeeper server process (Debian's `zookeeper` package) for
`gregor cluster` and the tests; `store` reads and writes Kafka's znodes through kazoo.
"""
