"""A partition's name, ``<topic>:<partition>``, made and split in one place."""

from portflow.domain.partitions import partition_name, split_partition_name


def test_a_name_splits_back_into_its_topic_and_partition():
    for topic, partition in [("portflow.shipments", 0), ("t1a.b-c_d.trains", 11)]:
        assert split_partition_name(partition_name(topic, partition)) == (topic, partition)
    assert partition_name("portflow.dlq", 3) == "portflow.dlq:3"
