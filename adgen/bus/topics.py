"""Topic set-up: create the events topic with its partitions, once (idempotent)."""

from __future__ import annotations

import logging

from kafka import KafkaAdminClient
from kafka.errors import KafkaError, TopicAlreadyExistsError

from adgen.errors import BusError

logger = logging.getLogger(__name__)


def ensure_topic(
    bootstrap: str, topic: str, partitions: int, replication_factor: int = 1
) -> bool:
    """Create ``topic`` with ``partitions`` unless it exists; True when it was created.

    An existing topic is left as it is (its partition count is logged if it differs).
    """
    if partitions < 1:
        raise BusError(f"a topic needs at least one partition, got {partitions}")
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    except (KafkaError, OSError) as exc:
        raise BusError(f"cannot reach the Kafka cluster at {bootstrap}: {exc}") from exc
    try:
        try:
            admin.create_topics(
                {topic: {"num_partitions": partitions, "replication_factor": replication_factor}},
                wait_for_metadata=True,
            )
            logger.info("created topic %s with %d partitions", topic, partitions)
            return True
        except TopicAlreadyExistsError:
            existing = _partition_count(admin, topic)
            if existing != partitions:
                logger.warning(
                    "topic %s exists with %s partitions (asked for %d); left as it is",
                    topic, existing, partitions,
                )
            return False
    except KafkaError as exc:
        raise BusError(f"cannot create topic {topic!r} on {bootstrap}: {exc}") from exc
    finally:
        admin.close()


def _partition_count(admin: KafkaAdminClient, topic: str) -> int | None:
    for info in admin.describe_topics([topic]):
        if info.get("name") == topic:
            return len(info.get("partitions") or [])
    return None
