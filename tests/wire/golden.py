"""Request frames (without the 4-byte size prefix) captured from real clients by
tests/wire/capture_golden.py: each client was pointed at a stand-in broker on
127.0.0.1 and these are the frames it sent, byte for byte."""

GOLDEN: dict[str, bytes] = {
    # kafka-python 3.0.12 KafkaAdminClient(client_id='golden-admin').list_topics()
    "kafka_python_admin_api_versions_v4": bytes.fromhex(
        "0012000400000001000c676f6c64656e2d61646d696e000d6b61666b612d707974686f6e07332e30"
        "2e313200"
    ),
    "kafka_python_admin_metadata_v12": bytes.fromhex(
        "0003000c00000002000c676f6c64656e2d61646d696e0001010000"
    ),
    "kafka_python_admin_metadata_v12_2": bytes.fromhex(
        "0003000c00000002000c676f6c64656e2d61646d696e0000000100"
    ),
    # kafka-python 3.0.12 KafkaProducer(client_id='golden-producer', acks=1).send(key=b'k1', value=b'v1', timestamp_ms=1700000000000)
    "kafka_python_producer_api_versions_v4": bytes.fromhex(
        "0012000400000001000f676f6c64656e2d70726f6475636572000d6b61666b612d707974686f6e07"
        "332e302e313200"
    ),
    "kafka_python_producer_metadata_v12": bytes.fromhex(
        "0003000c00000002000f676f6c64656e2d70726f64756365720001010000"
    ),
    "kafka_python_producer_produce_v9": bytes.fromhex(
        "0000000900000002000f676f6c64656e2d70726f64756365720000000100007530020d676f6c6465"
        "6e2d746f70696302000000004900000000000000000000003c00000000026ba48e85000000000000"
        "0000018bcfe568000000018bcfe56800ffffffffffffffffffffffffffff0000000114000000046b"
        "3104763100000000"
    ),
    # kafka-python 3.0.12 KafkaProducer(client_id='golden-pinned', api_version=(2, 0, 0), acks=1).send(key=b'k1', value=b'v1', timestamp_ms=1700000000000)
    "kafka_python_pinned_api_versions_v2": bytes.fromhex(
        "0012000200000001000d676f6c64656e2d70696e6e6564"
    ),
    "kafka_python_pinned_metadata_v6": bytes.fromhex(
        "0003000600000002000d676f6c64656e2d70696e6e656400000001000c676f6c64656e2d746f7069"
        "6301"
    ),
    "kafka_python_pinned_produce_v6": bytes.fromhex(
        "0000000600000002000d676f6c64656e2d70696e6e6564ffff00010000753000000001000c676f6c"
        "64656e2d746f70696300000001000000000000004800000000000000000000003c00000000026ba4"
        "8e850000000000000000018bcfe568000000018bcfe56800ffffffffffffffffffffffffffff0000"
        "000114000000046b3104763100"
    ),
    # confluent-kafka 2.16.1 (librdkafka 2.16.0) Producer(client.id='golden-rdkafka', acks=1).produce(key=b'k1', value=b'v1')
    "rdkafka_api_versions_v3": bytes.fromhex(
        "0012000300000001000e676f6c64656e2d72646b61666b610017636f6e666c75656e742d6b61666b"
        "612d707974686f6e16322e31362e312d72646b61666b612d322e31362e3000"
    ),
    "rdkafka_metadata_v12": bytes.fromhex(
        "0003000c00000002000e676f6c64656e2d72646b61666b6100020000000000000000000000000000"
        "00000d676f6c64656e2d746f70696300010000"
    ),
    "rdkafka_produce_v10": bytes.fromhex(
        "0000000a00000002000e676f6c64656e2d72646b61666b610000000100007530020d676f6c64656e"
        "2d746f70696302000000004900000000000000000000003c00000000026ba48e8500000000000000"
        "00018bcfe568000000018bcfe56800ffffffffffffffffffffffffffff0000000114000000046b31"
        "04763100000000"
    ),
}
