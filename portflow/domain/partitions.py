"""The name of a Kafka partition in portflow's state and messages: ``<topic>:<partition>``.

Redis keys its marks, lost offsets and worker announcements by it, metrics label by
its parts, and logs and reports show it. Topic names never hold ``:`` (Kafka allows only
letters, digits, ``.``, ``_`` and ``-``), so the last ``:`` splits it.
"""

from __future__ import annotations


def partition_name(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


def split_partition_name(name: str) -> tuple[str, int]:
    topic, _, partition = name.rpartition(":")
    return topic, int(partition)
