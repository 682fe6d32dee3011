"""broker.config: server.properties parsing, Kafka's defaults, synonyms, validation,
dynamic configs, topic configs and DescribeConfigs entries."""

import re
from pathlib import Path

import pytest

from broker.config import (
    BROKER_CONFIGS,
    DEV_DEFAULTS,
    TOPIC_CONFIGS,
    ConfigEntry,
    ConfigError,
    ConfigSource,
    ConfigType,
    Endpoint,
    describe_topic_configs,
    load_broker_config,
    parse_properties,
    topic_log_config,
    topic_log_config_kwargs,
    validate_topic_configs,
)
from broker.config.__main__ import main as config_main
from broker.config.definitions import java_double_string, parse_value, render_value
from broker.config.markdown import configuration_markdown
from storage.log import LogConfig

DEFAULT = ConfigSource.DEFAULT_CONFIG
STATIC = ConfigSource.STATIC_BROKER_CONFIG
DYNAMIC = ConfigSource.DYNAMIC_BROKER_CONFIG
DYNAMIC_DEFAULT = ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG
TOPIC = ConfigSource.TOPIC_CONFIG
REPO = Path(__file__).resolve().parents[2]


def from_file(**properties: str):
    """A config loaded from a server.properties holding node.id=1 and these keys."""
    return load_broker_config({"node.id": "1", **{k.replace("_", "."): v
                                                  for k, v in properties.items()}}, {})


def load(properties: dict[str, str], overrides: dict[str, str] | None = None):
    return load_broker_config(properties, overrides or {})


def entry(entries: list[ConfigEntry], name: str) -> ConfigEntry:
    (found,) = [e for e in entries if e.name == name]
    return found


# -- enums -----------------------------------------------------------------------------------

def test_enums_match_describe_configs_numbers():
    assert [(s.name, int(s)) for s in ConfigSource] == [
        ("UNKNOWN", 0), ("TOPIC_CONFIG", 1), ("DYNAMIC_BROKER_CONFIG", 2),
        ("DYNAMIC_DEFAULT_BROKER_CONFIG", 3), ("STATIC_BROKER_CONFIG", 4),
        ("DEFAULT_CONFIG", 5), ("DYNAMIC_BROKER_LOGGER_CONFIG", 6),
        ("CLIENT_METRICS_CONFIG", 7), ("GROUP_CONFIG", 8)]
    assert [(t.name, int(t)) for t in ConfigType] == [
        ("UNKNOWN", 0), ("BOOLEAN", 1), ("STRING", 2), ("INT", 3), ("SHORT", 4), ("LONG", 5),
        ("DOUBLE", 6), ("LIST", 7), ("CLASS", 8), ("PASSWORD", 9)]


# -- .properties syntax ----------------------------------------------------------------------

def test_properties_separators_comments_and_blank_lines():
    text = ("# a comment\n"
            "! another comment\n"
            "\n"
            "   \t\n"
            "a=1\n"
            "b = 2\n"
            "c:3\n"
            "d 4\n"
            "  e\t=\t5\n"
            "f\n"
            "g=\n"
            "h = = x\n"
            "i==y\n")
    assert parse_properties(text) == {"a": "1", "b": "2", "c": "3", "d": "4", "e": "5",
                                      "f": "", "g": "", "h": "= x", "i": "=y"}


def test_properties_continuation_lines():
    text = ("listeners=PLAINTEXT://:9092,\\\n"
            "          CONTROLLER://:9093\n"
            "two=a\\\n"
            "  b\\\n"
            "\tc\n"
            "even=ends with backslash\\\\\n"
            "next=1\n"
            "# comment ending in backslash \\\n"
            "after.comment=2\n"
            "last=dangling\\")
    assert parse_properties(text) == {
        "listeners": "PLAINTEXT://:9092,CONTROLLER://:9093", "two": "abc",
        "even": "ends with backslash\\", "next": "1", "after.comment": "2", "last": "dangling"}


def test_properties_escapes_and_trailing_whitespace():
    text = ("key\\ with\\ spaces=v\n"
            "k\\=eq\\:colon = x\n"
            "tabs=a\\tb\\nc\\rd\\fe\n"
            "unicode=\\u0041\\u00e9\\u20AC\n"
            "plain=\\q\\\\\n"
            "trailing=value  \n")
    assert parse_properties(text) == {
        "key with spaces": "v", "k=eq:colon": "x", "tabs": "a\tb\nc\rd\fe",
        "unicode": "A\u00e9\u20ac", "plain": "q\\", "trailing": "value  "}


def test_properties_line_endings_and_last_value_wins():
    assert parse_properties("a=1\r\nb=2\rc=3\na=4") == {"a": "4", "b": "2", "c": "3"}


def test_properties_malformed_unicode_escape():
    with pytest.raises(ConfigError) as caught:
        parse_properties("ok=1\nbad=\\u12G4\n")
    assert str(caught.value) == "line 2: malformed \\uxxxx encoding: \\u12G4"


def test_trailing_whitespace_is_trimmed_when_parsed():
    config = load({"node.id": " 3 ", "num.partitions": "4  ", "auto.create.topics.enable":
                   " FALSE"})
    assert (config.node_id, config.num_partitions, config.auto_create_topics_enable) == (
        3, 4, False)


# -- dev defaults and Kafka defaults ---------------------------------------------------------

def test_dev_defaults_without_a_file():
    assert DEV_DEFAULTS == {
        "node.id": "0", "listeners": "PLAINTEXT://127.0.0.1:9092", "log.dirs": "./gregor-data",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1", "group.initial.rebalance.delay.ms": "0"}
    config = load_broker_config(None, {})
    assert config.node_id == 0
    assert config.listeners == [Endpoint("127.0.0.1", 9092)]
    assert config.advertised_listeners == []
    assert config.log_dirs == [Path("gregor-data")]
    assert config.value("offsets.topic.replication.factor") == 1
    assert config.value("transaction.state.log.replication.factor") == 1
    assert config.value("group.initial.rebalance.delay.ms") == 0
    assert config.source("log.dirs") is DEFAULT
    entries = config.describe()
    assert entry(entries, "offsets.topic.replication.factor") == ConfigEntry(
        name="offsets.topic.replication.factor", value="1", source=DEFAULT, read_only=True,
        is_sensitive=False,
        synonyms=[("offsets.topic.replication.factor", "1", DEFAULT)],
        config_type=ConfigType.SHORT,
        documentation="Replication factor of __consumer_offsets.")


def test_file_gets_kafka_defaults_not_dev_defaults():
    config = from_file()
    assert config.listeners == [Endpoint("", 9092)]
    assert config.log_dirs == [Path("/tmp/kafka-logs")]
    assert config.value("offsets.topic.replication.factor") == 3
    assert config.value("transaction.state.log.replication.factor") == 3
    assert config.value("group.initial.rebalance.delay.ms") == 3000


def test_kafka_defaults():
    config = from_file()
    expected = {
        "num.partitions": 1, "default.replication.factor": 1,
        "auto.create.topics.enable": True, "delete.topic.enable": True,
        "message.max.bytes": 1048588, "log.segment.bytes": 1073741824,
        "log.roll.ms": 604800000, "log.roll.hours": 168, "log.roll.jitter.ms": 0,
        "log.retention.ms": 604800000, "log.retention.minutes": None,
        "log.retention.hours": 168, "log.retention.bytes": -1,
        "log.index.interval.bytes": 4096, "log.index.size.max.bytes": 10485760,
        "log.flush.interval.messages": 2**63 - 1, "log.flush.interval.ms": 2**63 - 1,
        "log.retention.check.interval.ms": 300000,
        "log.flush.offset.checkpoint.interval.ms": 60000,
        "log.message.timestamp.type": "CreateTime",
        "log.message.timestamp.before.max.ms": 2**63 - 1,
        "log.message.timestamp.after.max.ms": 3600000,
        "log.segment.delete.delay.ms": 60000, "log.preallocate": False,
        "socket.request.max.bytes": 104857600, "metrics.listen": "",
        "offsets.topic.num.partitions": 50, "min.insync.replicas": 1,
        "zookeeper.connect": None, "broker.rack": None, "cluster.id": None,
        "compression.type": "producer", "producer.id.expiration.ms": 86400000,
        "max.connections": 2147483647, "log.cleanup.policy": ["delete"],
        "num.recovery.threads.per.data.dir": 2, "num.io.threads": 8,
        "log.cleaner.min.cleanable.ratio": 0.5, "listeners": "PLAINTEXT://:9092",
        "advertised.listeners": None, "log.dir": "/tmp/kafka-logs",
        "log.dirs": "/tmp/kafka-logs",
    }
    assert {name: config.value(name) for name in expected} == expected
    assert {name: config.source(name) for name in expected} == {name: DEFAULT
                                                                for name in expected}


def test_convenience_properties():
    config = load({"broker.id": "7", "listeners": "PLAINTEXT://0.0.0.0:19092",
                   "advertised.listeners": "PLAINTEXT://kafka.example:9092",
                   "log.dirs": "/data/a, /data/b", "num.partitions": "3",
                   "default.replication.factor": "2", "auto.create.topics.enable": "false",
                   "socket.request.max.bytes": "1000000", "message.max.bytes": "2000000",
                   "metrics.listen": "127.0.0.1:9100", "delete.topic.enable": "false",
                   "log.retention.check.interval.ms": "1000",
                   "log.flush.offset.checkpoint.interval.ms": "500",
                   "zookeeper.connect": "zk1:2181,zk2:2181/kafka", "broker.rack": "r1",
                   "cluster.id": "MkU3OEVBNTcwNTJENDM2Qk", "max.connections": "100",
                   "offsets.topic.num.partitions": "5"})
    assert (config.node_id, config.listeners, config.advertised_listeners, config.log_dirs,
            config.num_partitions, config.default_replication_factor,
            config.auto_create_topics_enable, config.socket_request_max_bytes,
            config.message_max_bytes, config.metrics_listen, config.delete_topic_enable,
            config.log_retention_check_interval_ms,
            config.log_flush_offset_checkpoint_interval_ms, config.zookeeper_connect,
            config.broker_rack, config.cluster_id, config.max_connections,
            config.offsets_topic_num_partitions) == (
        7, [Endpoint("0.0.0.0", 19092)], [Endpoint("kafka.example", 9092)],
        [Path("/data/a"), Path("/data/b")], 3, 2, False, 1000000, 2000000,
        ("127.0.0.1", 9100), False, 1000, 500, "zk1:2181,zk2:2181/kafka", "r1",
        "MkU3OEVBNTcwNTJENDM2Qk", 100, 5)


def test_every_default_is_valid_and_renders_back():
    for definition in [*BROKER_CONFIGS.values(), *TOPIC_CONFIGS.values()]:
        rendered = render_value(definition.config_type, definition.default)
        if rendered is None:
            continue
        assert definition.parse(rendered) == definition.default, definition.name


# -- synonyms ----------------------------------------------------------------------------------

def test_retention_synonyms_precedence():
    assert from_file(log_retention_hours="2").value("log.retention.ms") == 7200000
    assert from_file(log_retention_hours="2", log_retention_minutes="3").value(
        "log.retention.ms") == 180000
    config = from_file(log_retention_hours="2", log_retention_minutes="3",
                       log_retention_ms="4000")
    assert config.value("log.retention.ms") == 4000
    assert config.value("log.retention.minutes") == 3
    assert config.value("log.retention.hours") == 2
    assert from_file(log_retention_hours="-1").value("log.retention.ms") == -1
    assert from_file(log_retention_minutes="-5").value("log.retention.ms") == -1
    assert from_file(log_retention_ms="-2").value("log.retention.ms") == -1


def test_retention_source_is_the_deciding_synonym():
    config = from_file(log_retention_hours="2")
    assert config.source("log.retention.ms") is STATIC
    assert config.source("log.retention.minutes") is DEFAULT


def test_roll_and_flush_synonyms():
    assert from_file(log_roll_hours="1").value("log.roll.ms") == 3600000
    assert from_file(log_roll_hours="1", log_roll_ms="5000").value("log.roll.ms") == 5000
    assert from_file(log_roll_jitter_hours="2").value("log.roll.jitter.ms") == 7200000
    assert from_file(log_flush_scheduler_interval_ms="300").value(
        "log.flush.interval.ms") == 300
    assert from_file(log_flush_scheduler_interval_ms="300", log_flush_interval_ms="10").value(
        "log.flush.interval.ms") == 10


def test_log_dirs_over_log_dir():
    assert from_file(log_dir="/one").log_dirs == [Path("/one")]
    assert from_file(log_dir="/one", log_dirs="/two,/three").log_dirs == [
        Path("/two"), Path("/three")]
    assert from_file(log_dir="/one").value("log.dirs") == "/one"


def test_node_id_and_broker_id_are_synonyms():
    config = load({"broker.id": "5"})
    assert (config.node_id, config.value("broker.id"), config.value("node.id")) == (5, 5, 5)
    assert load({"node.id": "4", "broker.id": "4"}).node_id == 4
    with pytest.raises(ConfigError) as caught:
        load({"node.id": "4", "broker.id": "5"})
    assert str(caught.value) == ("node.id: value 4 differs from broker.id 5; they are "
                                 "synonyms and must be equal")
    # the command line wins over the file, for both names
    overridden = load({"broker.id": "5"}, {"node.id": "9"})
    assert (overridden.node_id, overridden.value("broker.id")) == (9, 9)
    assert overridden.source("node.id") is STATIC


def test_node_id_is_required_with_a_file():
    with pytest.raises(ConfigError) as caught:
        load({"num.partitions": "2"})
    assert str(caught.value) == ("node.id: not set; give this broker an id with node.id "
                                 "(or broker.id) >= 0")


def test_overrides_win_over_the_file():
    config = load({"node.id": "1", "num.partitions": "2"}, {"num.partitions": "6"})
    assert (config.num_partitions, config.source("num.partitions")) == (6, STATIC)
    dev = load_broker_config(None, {"log.dirs": "/tmp/x", "listeners": "PLAINTEXT://:0"})
    assert (dev.log_dirs, dev.listeners, dev.source("log.dirs")) == (
        [Path("/tmp/x")], [Endpoint("", 0)], STATIC)


# -- unknown keys and bad values -----------------------------------------------------------

def test_unknown_key_names_it_and_suggests_the_closest():
    with pytest.raises(ConfigError) as caught:
        from_file(**{"log_retension_ms": "1"})
    assert str(caught.value) == ("log.retension.ms: unknown broker config "
                                 "(did you mean 'log.retention.ms'?)")
    with pytest.raises(ConfigError) as caught:
        load_broker_config(None, {"qqqq": "1"})
    assert str(caught.value) == "qqqq: unknown broker config"


@pytest.mark.parametrize(("key", "value", "message"), [
    ("auto.create.topics.enable", "yes",
     "auto.create.topics.enable: invalid value 'yes': expected true or false"),
    ("num.partitions", "three",
     "num.partitions: invalid value 'three': not a number of type INT"),
    ("num.partitions", "2147483648",
     "num.partitions: invalid value '2147483648': out of range for type INT "
     "(-2147483648..2147483647)"),
    ("num.partitions", "0", "num.partitions: invalid value '0': must be at least 1"),
    ("offsets.topic.replication.factor", "40000",
     "offsets.topic.replication.factor: invalid value '40000': out of range for type SHORT "
     "(-32768..32767)"),
    ("log.retention.bytes", "1.5",
     "log.retention.bytes: invalid value '1.5': not a number of type LONG"),
    ("log.cleaner.min.cleanable.ratio", "half",
     "log.cleaner.min.cleanable.ratio: invalid value 'half': not a number of type DOUBLE"),
    ("log.cleaner.min.cleanable.ratio", "1.5",
     "log.cleaner.min.cleanable.ratio: invalid value '1.5': must be between 0 and 1"),
    ("log.cleanup.policy", "delete,shred",
     "log.cleanup.policy: invalid value 'delete,shred': each item must be one of: compact, "
     "delete (got 'shred')"),
    ("compression.type", "brotli",
     "compression.type: invalid value 'brotli': must be one of: uncompressed, zstd, lz4, "
     "snappy, gzip, producer"),
    ("log.message.timestamp.type", "createtime",
     "log.message.timestamp.type: invalid value 'createtime': must be one of: CreateTime, "
     "LogAppendTime"),
    ("log.segment.bytes", "1048575",
     "log.segment.bytes: invalid value '1048575': must be at least 1048576"),
    ("compression.gzip.level", "0",
     "compression.gzip.level: invalid value '0': must be between 1 and 9 or equal to -1"),
    ("metrics.listen", "localhost",
     "metrics.listen: invalid value 'localhost': expected HOST:PORT, or empty to turn it off "
     "(got 'localhost')"),
    ("listeners", "localhost:9092",
     "listeners: invalid value 'localhost:9092': expected a comma-separated list of "
     "NAME://HOST:PORT (got 'localhost:9092')"),
    ("log.retention.ms", "0",
     "log.retention.ms: invalid value 0: retention must be -1 (unlimited) or at least 1 ms"),
    ("log.roll.ms", "0",
     "log.roll.ms: invalid value 0 as default of topic config segment.ms: must be at least 1"),
    ("log.flush.interval.ms", "-5",
     "log.flush.interval.ms: invalid value -5 as default of topic config flush.ms: must be "
     "at least 0"),
    ("authorizer.class.name", "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
     "authorizer.class.name: invalid value "
     "'org.apache.kafka.metadata.authorizer.StandardAuthorizer': Gregor has no authorizer; "
     "leave it empty"),
])
def test_bad_values_name_key_value_and_reason(key, value, message):
    with pytest.raises(ConfigError) as caught:
        load({"node.id": "1", key: value})
    assert str(caught.value) == message


def test_values_accepted_like_kafka():
    config = from_file(log_cleaner_min_cleanable_ratio="1e-1", compression_gzip_level="-1",
                       log_retention_bytes="+100", log_cleanup_policy="compact , delete")
    assert (config.value("log.cleaner.min.cleanable.ratio"),
            config.value("compression.gzip.level"), config.value("log.retention.bytes"),
            config.value("log.cleanup.policy")) == (0.1, -1, 100, ["compact", "delete"])


def test_zookeeper_era_and_kraft_files_start():
    zookeeper_era = parse_properties("""
broker.id=0
port=9092
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600
log.dirs=/tmp/kafka-logs
num.partitions=1
num.recovery.threads.per.data.dir=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
log.retention.hours=168
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
zookeeper.connect=localhost:2181
zookeeper.connection.timeout.ms=18000
group.initial.rebalance.delay.ms=0
log.message.format.version=2.8
inter.broker.protocol.version=2.8
""")
    config = load(zookeeper_era)
    assert (config.node_id, config.zookeeper_connect, config.listeners) == (
        0, "localhost:2181", [Endpoint("", 9092)])
    kraft = parse_properties("""
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=localhost:9093
controller.quorum.voters=1@localhost:9093
listeners=PLAINTEXT://:9092,CONTROLLER://:9093
inter.broker.listener.name=PLAINTEXT
advertised.listeners=PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL
log.dirs=/tmp/kraft-combined-logs
""")
    config = load(kraft)
    assert (config.node_id, config.listeners, config.advertised_listeners) == (
        1, [Endpoint("", 9092)], [Endpoint("localhost", 9092)])


@pytest.mark.parametrize(("properties", "message"), [
    ({"listeners": "SSL://:9093"}, "listeners: listener SSL uses SSL; Gregor serves PLAINTEXT only"),
    ({"listeners": "INTERNAL://:9093"},
     "listeners: listener INTERNAL has no security protocol in listener.security.protocol.map"),
    ({"listeners": "PLAINTEXT://:9092,PLAINTEXT://:9093"},
     "listeners: listener PLAINTEXT appears more than once"),
    ({"listeners": "PLAINTEXT://:70000"}, "listeners: invalid port 70000 in 'PLAINTEXT://:70000'"),
    ({"listeners": ""}, "listeners: no listener given"),
    ({"listeners": "CONTROLLER://:9093", "controller.listener.names": "CONTROLLER",
      "listener.security.protocol.map": "CONTROLLER:PLAINTEXT"},
     "listeners: no PLAINTEXT broker listener (only controller ones)"),
    ({"advertised.listeners": "OTHER://h:1",
      "listener.security.protocol.map": "OTHER:PLAINTEXT,PLAINTEXT:PLAINTEXT"},
     "advertised.listeners: listener OTHER is not in listeners"),
    ({"advertised.listeners": "PLAINTEXT://0.0.0.0:9092"},
     "advertised.listeners: cannot advertise the non-routable address 0.0.0.0"),
])
def test_listener_errors(properties, message):
    with pytest.raises(ConfigError) as caught:
        load({"node.id": "1", **properties})
    assert str(caught.value) == message


def test_listeners_with_custom_names_and_ipv6():
    config = load({"node.id": "1", "listeners": "INSIDE://[::1]:9092, OUTSIDE://10.0.0.1:19092",
                   "listener.security.protocol.map": "INSIDE:PLAINTEXT,OUTSIDE:PLAINTEXT"})
    assert config.listeners == [Endpoint("::1", 9092), Endpoint("10.0.0.1", 19092)]


def test_listener_overrides_and_plugin_prefixes_are_accepted():
    config = load({"node.id": "1", "listener.name.plaintext.max.connections": "5",
                   "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": "secret",
                   "rsm.config.bucket": "b"})
    assert config.value("listener.name.plaintext.max.connections") == 5
    entries = config.describe()
    assert entry(entries, "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config") == ConfigEntry(
        name="listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config", value=None,
        source=STATIC, read_only=False, is_sensitive=True,
        synonyms=[("listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config", None, STATIC)],
        config_type=ConfigType.PASSWORD, documentation="JAAS login context.")
    with pytest.raises(ConfigError) as caught:
        load({"node.id": "1", "listener.name.plaintext.no.such.thing": "1"})
    assert str(caught.value) == "listener.name.plaintext.no.such.thing: unknown broker config"
    with pytest.raises(ConfigError) as caught:
        load({"node.id": "1", "listener.name.plaintext.max.connections": "-1"})
    assert str(caught.value) == ("max.connections: invalid value '-1': must be at least 0")


# -- dynamic broker configs ----------------------------------------------------------------

def test_dynamic_change_set_and_delete():
    config = from_file(log_retention_hours="24")
    changed = config.with_dynamic({"log.retention.ms": "1000", "message.max.bytes": "500"})
    assert (changed.value("log.retention.ms"), changed.source("log.retention.ms")) == (
        1000, DYNAMIC)
    assert (changed.message_max_bytes, changed.source("message.max.bytes")) == (500, DYNAMIC)
    assert changed.dynamic() == {"log.retention.ms": "1000", "message.max.bytes": "500"}
    assert config.dynamic() == {}  # the original is unchanged
    assert config.value("log.retention.ms") == 86400000
    reverted = changed.with_dynamic({"log.retention.ms": None, "num.io.threads": None})
    assert (reverted.value("log.retention.ms"), reverted.source("log.retention.ms")) == (
        86400000, STATIC)
    assert reverted.dynamic() == {"message.max.bytes": "500"}


def test_dynamic_rejects_unknown_static_and_bad():
    config = from_file()
    cases = [
        ({"log.retention.hours": "1"},
         "Cannot update these configs dynamically: [log.retention.hours]"),
        ({"num.partitions": "3"}, "Cannot update these configs dynamically: [num.partitions]"),
        ({"advertised.listeners": "PLAINTEXT://127.0.0.1:9092"},
         "Cannot update these configs dynamically: [advertised.listeners]"),
        ({"log.retentoin.ms": "1"},
         "log.retentoin.ms: unknown broker config (did you mean 'log.retention.ms'?)"),
        ({"log.segment.bytes": "100"},
         "log.segment.bytes: invalid value '100': must be at least 1048576"),
        ({"log.retention.ms": "0"},
         "log.retention.ms: invalid value 0: retention must be -1 (unlimited) or at least 1 ms"),
        ({"num.io.threads": "3"},
         "num.io.threads: invalid value '3': must be at least half the current value 8"),
        ({"num.io.threads": "17"},
         "num.io.threads: invalid value '17': must not be greater than double the current "
         "value 8"),
    ]
    for changes, message in cases:
        with pytest.raises(ConfigError) as caught:
            config.with_dynamic(changes)
        assert str(caught.value) == message
    assert config.with_dynamic({"num.io.threads": "16"}).value("num.io.threads") == 16


def test_dynamic_cluster_default_and_per_broker_precedence():
    config = from_file(log_retention_ms="5000")
    cluster = config.with_dynamic({"log.retention.ms": "6000"}, cluster_default=True)
    assert (cluster.value("log.retention.ms"), cluster.source("log.retention.ms")) == (
        6000, DYNAMIC_DEFAULT)
    both = cluster.with_dynamic({"log.retention.ms": "7000"})
    assert (both.value("log.retention.ms"), both.source("log.retention.ms")) == (7000, DYNAMIC)
    assert (both.dynamic(), both.dynamic_defaults()) == (
        {"log.retention.ms": "7000"}, {"log.retention.ms": "6000"})
    assert entry(both.describe(), "log.retention.ms").synonyms == [
        ("log.retention.ms", "7000", DYNAMIC), ("log.retention.ms", "6000", DYNAMIC_DEFAULT),
        ("log.retention.ms", "5000", STATIC), ("log.retention.hours", "168", DEFAULT)]


# -- describe broker configs -----------------------------------------------------------------

def test_describe_broker_entries():
    config = from_file(log_retention_hours="24", log_retention_ms="1000",
                       ssl_keystore_password="hunter2").with_dynamic({"log.roll.ms": "2000"})
    entries = config.describe()
    assert entry(entries, "log.retention.ms") == ConfigEntry(
        name="log.retention.ms", value="1000", source=STATIC, read_only=False,
        is_sensitive=False, synonyms=[("log.retention.ms", "1000", STATIC),
                                      ("log.retention.hours", "24", STATIC),
                                      ("log.retention.hours", "168", DEFAULT)],
        config_type=ConfigType.LONG,
        documentation=BROKER_CONFIGS["log.retention.ms"].doc)
    # Kafka drops higher-precedence synonyms when describing the lower one
    assert entry(entries, "log.retention.hours") == ConfigEntry(
        name="log.retention.hours", value="24", source=STATIC, read_only=True,
        is_sensitive=False, synonyms=[("log.retention.hours", "24", STATIC),
                                      ("log.retention.hours", "168", DEFAULT)],
        config_type=ConfigType.INT, documentation=BROKER_CONFIGS["log.retention.hours"].doc)
    assert entry(entries, "log.retention.minutes") == ConfigEntry(
        name="log.retention.minutes", value=None, source=DEFAULT, read_only=True,
        is_sensitive=False, synonyms=[], config_type=ConfigType.INT,
        documentation=BROKER_CONFIGS["log.retention.minutes"].doc)
    assert entry(entries, "log.roll.ms").synonyms == [("log.roll.ms", "2000", DYNAMIC),
                                                      ("log.roll.hours", "168", DEFAULT)]
    password = entry(entries, "ssl.keystore.password")
    assert (password.value, password.is_sensitive, password.synonyms, password.source) == (
        None, True, [("ssl.keystore.password", None, STATIC)], STATIC)
    ratio = entry(entries, "log.cleaner.io.max.bytes.per.second")
    assert (ratio.value, ratio.config_type) == ("1.7976931348623157E308", ConfigType.DOUBLE)
    assert entry(entries, "log.cleanup.policy").value == "delete"
    assert entry(entries, "auto.create.topics.enable").value == "true"


def test_describe_lists_current_configs_and_set_legacy_ones():
    names = [e.name for e in from_file().describe()]
    assert names == sorted(names)
    assert "zookeeper.connect" in names  # Gregor's cluster metadata store
    assert "log.message.format.version" not in names  # removed in Kafka 4.0
    assert "unstable.api.versions.enable" not in names  # internal
    assert len(names) == len([d for d in BROKER_CONFIGS.values()
                              if not d.legacy and not d.internal])
    with_legacy = [e.name for e in from_file(log_message_format_version="2.8").describe()]
    assert "log.message.format.version" in with_legacy


def test_java_double_rendering():
    assert [java_double_string(x) for x in (0.5, 0.05, 1e7, 1e-4, 12345678.5, 2.0, -3e10)] == [
        "0.5", "0.05", "1.0E7", "1.0E-4", "1.23456785E7", "2.0", "-3.0E10"]
    assert render_value(ConfigType.LIST, ["a", "b"]) == "a,b"
    assert render_value(ConfigType.BOOLEAN, False) == "false"
    assert parse_value("x", ConfigType.LIST, "  ") == []


# -- topic configs -----------------------------------------------------------------------------

def test_topic_config_names():
    assert sorted(TOPIC_CONFIGS) == [
        "cleanup.policy", "compression.gzip.level", "compression.lz4.level", "compression.type",
        "compression.zstd.level", "delete.retention.ms", "file.delete.delay.ms",
        "flush.messages", "flush.ms", "follower.replication.throttled.replicas",
        "index.interval.bytes", "leader.replication.throttled.replicas",
        "local.retention.bytes", "local.retention.ms", "max.compaction.lag.ms",
        "max.message.bytes", "message.downconversion.enable", "message.format.version",
        "message.timestamp.after.max.ms", "message.timestamp.before.max.ms",
        "message.timestamp.difference.max.ms", "message.timestamp.type",
        "min.cleanable.dirty.ratio", "min.compaction.lag.ms", "min.insync.replicas",
        "preallocate", "remote.log.copy.disable", "remote.log.delete.on.disable",
        "remote.storage.enable", "retention.bytes", "retention.ms", "segment.bytes",
        "segment.index.bytes", "segment.jitter.ms", "segment.ms",
        "unclean.leader.election.enable"]
    for definition in TOPIC_CONFIGS.values():
        for synonym in definition.broker_synonyms:
            assert synonym in BROKER_CONFIGS, synonym


def test_validate_topic_configs():
    configs = {"retention.ms": "1000", "cleanup.policy": "compact,delete",
               "segment.bytes": "1048576", "message.timestamp.type": "LogAppendTime",
               "min.cleanable.dirty.ratio": "0.1", "message.format.version": "2.8"}
    assert validate_topic_configs(configs) == configs
    assert validate_topic_configs({}) == {}


@pytest.mark.parametrize(("configs", "message"), [
    ({"retention.msec": "1"}, "retention.msec: unknown topic config (did you mean 'retention.ms'?)"),
    ({"xyzzy": "1"}, "xyzzy: unknown topic config"),
    ({"retention.ms": None}, "retention.ms: null value not supported for topic configs"),
    ({"retention.ms": "-2"}, "retention.ms: invalid value '-2': must be at least -1"),
    ({"segment.bytes": "1000"}, "segment.bytes: invalid value '1000': must be at least 1048576"),
    ({"cleanup.policy": "forever"},
     "cleanup.policy: invalid value 'forever': each item must be one of: compact, delete "
     "(got 'forever')"),
    ({"preallocate": "1"}, "preallocate: invalid value '1': expected true or false"),
    ({"max.message.bytes": "big"},
     "max.message.bytes: invalid value 'big': not a number of type INT"),
    ({"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "5"},
     "min.compaction.lag.ms: value 10 is greater than max.compaction.lag.ms 5"),
    ({"leader.replication.throttled.replicas": "0:1,x"},
     "leader.replication.throttled.replicas: invalid value '0:1,x': expected '*' or "
     "PARTITION:BROKER_ID entries (got 'x')"),
])
def test_validate_topic_config_errors(configs, message):
    with pytest.raises(ConfigError) as caught:
        validate_topic_configs(configs)
    assert str(caught.value) == message


def test_topic_log_config_defaults_and_overrides():
    config = from_file()
    assert topic_log_config_kwargs({}, config) == {
        "segment_bytes": 1073741824, "segment_ms": 604800000, "segment_jitter_ms": 0,
        "segment_index_bytes": 10485760, "index_interval_bytes": 4096,
        "retention_ms": 604800000, "retention_bytes": -1, "max_message_bytes": 1048588,
        "message_timestamp_type": "CreateTime", "flush_messages": 2**63 - 1,
        "flush_ms": 2**63 - 1, "file_delete_delay_ms": 60000, "preallocate": False,
        "message_timestamp_before_max_ms": 2**63 - 1,
        "message_timestamp_after_max_ms": 3600000, "cleanup_policy_compact": False,
        "min_cleanable_dirty_ratio": 0.5, "delete_retention_ms": 86400000, "min_compaction_lag_ms": 0}
    broker = from_file(log_retention_hours="1", log_roll_ms="5000", message_max_bytes="2000",
                       log_segment_bytes="2097152", log_flush_scheduler_interval_ms="3000",
                       log_message_timestamp_type="LogAppendTime", log_preallocate="true")
    kwargs = topic_log_config_kwargs({"retention.bytes": "100", "segment.jitter.ms": "7",
                                      "preallocate": "false"}, broker)
    assert kwargs == {
        "segment_bytes": 2097152, "segment_ms": 5000, "segment_jitter_ms": 7,
        "segment_index_bytes": 10485760, "index_interval_bytes": 4096,
        "retention_ms": 3600000, "retention_bytes": 100, "max_message_bytes": 2000,
        "message_timestamp_type": "LogAppendTime", "flush_messages": 2**63 - 1,
        "flush_ms": 3000, "file_delete_delay_ms": 60000, "preallocate": False,
        "message_timestamp_before_max_ms": 2**63 - 1,
        "message_timestamp_after_max_ms": 3600000, "cleanup_policy_compact": False,
        "min_cleanable_dirty_ratio": 0.5, "delete_retention_ms": 86400000, "min_compaction_lag_ms": 0}
    dynamic = broker.with_dynamic({"log.retention.ms": "42"})
    assert topic_log_config_kwargs({}, dynamic)["retention_ms"] == 42
    compacted = topic_log_config_kwargs({"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.25",
                                         "delete.retention.ms": "1000", "min.compaction.lag.ms": "5"}, broker)
    assert {key: compacted[key] for key in ("cleanup_policy_compact", "min_cleanable_dirty_ratio",
                                            "delete_retention_ms", "min_compaction_lag_ms",
                                            "retention_ms", "retention_bytes")} == {
        "cleanup_policy_compact": True, "min_cleanable_dirty_ratio": 0.25, "delete_retention_ms": 1000,
        "min_compaction_lag_ms": 5, "retention_ms": -1, "retention_bytes": -1}
    both = topic_log_config_kwargs({"cleanup.policy": "compact,delete"}, broker)
    assert (both["cleanup_policy_compact"], both["retention_ms"]) == (True, 3600000)


def test_topic_log_config_builds_storage_log_config():
    config = from_file(log_retention_hours="1")
    log_config = topic_log_config({"segment.bytes": "1048576"}, config)
    assert log_config == LogConfig(**{**topic_log_config_kwargs({}, config),
                                      "segment_bytes": 1048576})
    assert (log_config.segment_bytes, log_config.retention_ms) == (1048576, 3600000)


def test_describe_topic_configs_sources_and_synonyms():
    broker = from_file(log_retention_hours="24", message_max_bytes="2000").with_dynamic(
        {"log.retention.ms": "5000"})
    entries = describe_topic_configs({"segment.ms": "100", "message.format.version": "2.8"},
                                     broker)
    names = [e.name for e in entries]
    assert names == sorted(TOPIC_CONFIGS.keys() - {"message.downconversion.enable",
                                                    "message.timestamp.difference.max.ms"})
    assert entry(entries, "retention.ms") == ConfigEntry(
        name="retention.ms", value="5000", source=DYNAMIC, read_only=False,
        is_sensitive=False, synonyms=[("log.retention.ms", "5000", DYNAMIC),
                                      ("log.retention.hours", "24", STATIC),
                                      ("log.retention.hours", "168", DEFAULT)],
        config_type=ConfigType.LONG, documentation=TOPIC_CONFIGS["retention.ms"].doc)
    assert entry(entries, "segment.ms") == ConfigEntry(
        name="segment.ms", value="100", source=TOPIC, read_only=False, is_sensitive=False,
        synonyms=[("segment.ms", "100", TOPIC), ("log.roll.hours", "168", DEFAULT)],
        config_type=ConfigType.LONG, documentation=TOPIC_CONFIGS["segment.ms"].doc)
    assert entry(entries, "max.message.bytes") == ConfigEntry(
        name="max.message.bytes", value="2000", source=STATIC, read_only=False,
        is_sensitive=False, synonyms=[("message.max.bytes", "2000", STATIC),
                                      ("message.max.bytes", "1048588", DEFAULT)],
        config_type=ConfigType.INT, documentation=TOPIC_CONFIGS["max.message.bytes"].doc)
    assert entry(entries, "remote.storage.enable") == ConfigEntry(
        name="remote.storage.enable", value="false", source=DEFAULT, read_only=False,
        is_sensitive=False, synonyms=[], config_type=ConfigType.BOOLEAN,
        documentation=TOPIC_CONFIGS["remote.storage.enable"].doc)
    assert entry(entries, "cleanup.policy").value == "delete"
    assert entry(entries, "min.cleanable.dirty.ratio").value == "0.5"
    assert entry(entries, "flush.ms").synonyms == [
        ("log.flush.scheduler.interval.ms", str(2**63 - 1), DEFAULT)]
    assert entry(entries, "message.format.version").source is TOPIC


# -- generated docs ----------------------------------------------------------------------------

def configs_the_code_reads() -> tuple[set[str], set[str]]:
    """(broker, topic) config names read by name in broker/, coordinator/ and storage/
    (outside broker/config/): `….value("name")` and a topic's `configs.get("name")`."""
    broker_names, topic_names = set(), set()
    for package in ("broker", "coordinator", "storage"):
        for path in (REPO / package).rglob("*.py"):
            if path.parent == REPO / "broker" / "config":
                continue
            text = path.read_text("utf-8")
            broker_names.update(re.findall(r'\.value\(\s*"([a-z0-9.]+)"', text))
            topic_names.update(re.findall(r'configs\.get\(\s*"([a-z0-9.]+)"', text))
    return broker_names, topic_names


def test_every_config_the_code_reads_is_documented_as_honoured():
    """docs/configuration.md must not list a config Gregor acts on as having no effect."""
    broker_names, topic_names = configs_the_code_reads()
    assert {"auto.leader.rebalance.enable", "replica.lag.time.max.ms"} <= broker_names
    assert "unclean.leader.election.enable" in topic_names
    assert sorted(n for n in broker_names if not BROKER_CONFIGS[n].honoured) == []
    assert sorted(n for n in topic_names if not TOPIC_CONFIGS[n].honoured) == []


def test_committed_configuration_markdown_is_current():
    committed = (REPO / "docs" / "configuration.md").read_text("utf-8")
    assert committed == configuration_markdown(), (
        "docs/configuration.md is stale: run `python -m broker.config --markdown "
        "> docs/configuration.md`")


def test_markdown_command(capsys):
    assert config_main(["--markdown"]) == 0
    printed = capsys.readouterr().out
    assert printed == configuration_markdown()
    assert "| `log.retention.ms` | LONG | null |  | yes |" in printed
    assert "| `zookeeper.ssl.protocol` | STRING | `TLSv1.2` | removed in Kafka 4.0 |" in printed
