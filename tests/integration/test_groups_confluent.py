"""Kept only because tests/integration/test_consumer_protocol.py imports these three
confluent-kafka helpers from here; the consumer group tests are in test_groups.py."""
from __future__ import annotations

from .test_groups import CONFLUENT

create_topic = CONFLUENT.create_topic
produce = CONFLUENT.produce
committed_positions = CONFLUENT.committed_positions
