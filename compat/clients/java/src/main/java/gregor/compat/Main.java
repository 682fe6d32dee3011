package gregor.compat;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.function.BooleanSupplier;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.GroupType;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.InvalidTopicException;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The Java client (kafka-clients) runner of the compat matrix: one scenario of
 * compat/SCENARIOS.md per process.
 *
 * <pre>
 *   run --list
 *   run --bootstrap HOST:PORT --scenario NAME --topic TOPIC
 * </pre>
 *
 * Exit 0: pass; 1: fail, the last line of stderr says why; 2: not applicable.
 */
public final class Main {
    static final String CLIENT = "java";
    static final long T0_MS = 1_700_000_000_000L;
    static final int VALUE_BYTES = 100;
    static final Duration WAIT = Duration.ofSeconds(60);

    static final List<String> SCENARIOS = List.of(
            "metadata", "topic_admin", "produce_consume", "compression", "acks", "idempotent",
            "list_offsets", "delete_records", "large_messages", "unknown_topic",
            "consumer_group", "consumer_group_848", "commits_rebalance", "transactions",
            "cross_produce", "cross_consume");

    /** A scenario's check failed; the message is the one-line reason. */
    static final class Failure extends RuntimeException {
        Failure(String reason) {
            super(reason);
        }
    }

    final String bootstrap;
    final String topic;

    Main(String bootstrap, String topic) {
        this.bootstrap = bootstrap;
        this.topic = topic;
    }

    public static void main(String[] args) {
        Map<String, String> options = new HashMap<>();
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--list")) {
                SCENARIOS.forEach(System.out::println);
                System.exit(0);
            }
            if (i + 1 < args.length && args[i].startsWith("--")) {
                options.put(args[i].substring(2), args[++i]);
            }
        }
        String scenario = options.get("scenario");
        if (scenario == null || !options.containsKey("bootstrap") || !options.containsKey("topic")) {
            System.err.println("usage: run --list | run --bootstrap HOST:PORT --scenario NAME --topic TOPIC");
            System.exit(1);
        }
        if (!SCENARIOS.contains(scenario)) {
            System.err.println("n/a: the java runner has no scenario " + scenario);
            System.exit(2);
        }
        int code;
        try {
            new Main(options.get("bootstrap"), options.get("topic")).run(scenario);
            code = 0;
        } catch (Throwable failure) {
            Throwable shown = failure instanceof ExecutionException && failure.getCause() != null
                    ? failure.getCause() : failure;
            String reason = shown instanceof Failure ? shown.getMessage()
                    : shown.getClass().getSimpleName() + ": " + shown.getMessage();
            System.err.flush();
            System.err.println(reason.replace('\n', ' '));
            code = 1;
        }
        System.exit(code);
    }

    void run(String scenario) throws Exception {
        switch (scenario) {
            case "metadata" -> metadata();
            case "topic_admin" -> topicAdmin();
            case "produce_consume" -> produceConsume();
            case "compression" -> compression();
            case "acks" -> acks();
            case "idempotent" -> idempotent();
            case "list_offsets" -> listOffsets();
            case "delete_records" -> deleteRecords();
            case "large_messages" -> largeMessages();
            case "unknown_topic" -> unknownTopic();
            case "consumer_group" -> consumerGroup(Map.of());
            case "consumer_group_848" -> consumerGroup(Map.of(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer"));
            case "commits_rebalance" -> commitsRebalance();
            case "transactions" -> transactions();
            case "cross_produce" -> crossProduce();
            case "cross_consume" -> crossConsume();
            default -> throw new IllegalStateException("unlisted scenario " + scenario);
        }
    }

    // -- the standard messages ------------------------------------------------------------

    static byte[] bytes(String text) {
        return text.getBytes(StandardCharsets.US_ASCII);
    }

    static byte[] standardKey(int i) {
        return bytes("key-" + i);
    }

    static byte[] standardValue(int i) {
        String head = "value-" + i + "-";
        return bytes(head + "x".repeat(VALUE_BYTES - head.length()));
    }

    static List<Header> standardHeaders(int i, String client) {
        return List.of(new RecordHeader("index", bytes(Integer.toString(i))),
                new RecordHeader("client", bytes(client)));
    }

    static ProducerRecord<byte[], byte[]> standardRecord(String topic, Integer partition, int i) {
        return new ProducerRecord<>(topic, partition, T0_MS + i, standardKey(i), standardValue(i),
                standardHeaders(i, CLIENT));
    }

    /** Checks a consumed record field by field against what was produced. */
    static void checkRecord(ConsumerRecord<byte[], byte[]> record, byte[] key, byte[] value,
                            List<Header> headers, long timestampMs) {
        String where = record.topic() + "-" + record.partition() + "@" + record.offset();
        check(Arrays.equals(record.key(), key), "%s: key %s, expected %s", where, show(record.key()), show(key));
        check(Arrays.equals(record.value(), value), "%s: value %s, expected %s", where,
                show(record.value()), show(value));
        List<String> got = new ArrayList<>();
        record.headers().forEach(header -> got.add(header.key() + "=" + show(header.value())));
        List<String> expected = new ArrayList<>();
        headers.forEach(header -> expected.add(header.key() + "=" + show(header.value())));
        check(got.equals(expected), "%s: headers %s, expected %s", where, got, expected);
        check(record.timestampType() == TimestampType.CREATE_TIME && record.timestamp() == timestampMs,
                "%s: timestamp %s %d, expected CreateTime %d", where, record.timestampType(),
                record.timestamp(), timestampMs);
    }

    static void checkStandard(ConsumerRecord<byte[], byte[]> record, int i, String client) {
        checkRecord(record, standardKey(i), standardValue(i), standardHeaders(i, client), T0_MS + i);
    }

    static String show(byte[] data) {
        if (data == null) {
            return "null";
        }
        String text = new String(data, StandardCharsets.ISO_8859_1);
        return text.length() > 24 ? text.substring(0, 24) + "...(" + data.length + " bytes)" : text;
    }

    static void check(boolean condition, String format, Object... args) {
        if (!condition) {
            throw new Failure(String.format(format, args));
        }
    }

    /** Polls `condition` every 100 ms until it holds; fails with `what` after WAIT. */
    static void waitUntil(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new Failure("timed out after " + WAIT.toSeconds() + " s waiting for " + what);
            }
            Thread.sleep(100);
        }
    }

    // -- clients --------------------------------------------------------------------------

    Admin admin() {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 15_000);
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30_000);
        return Admin.create(props);
    }

    KafkaProducer<byte[], byte[]> producer(Map<String, Object> overrides) {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 15_000);
        props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 45_000);
        props.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 30_000);
        props.putAll(overrides);
        return new KafkaProducer<>(props, new ByteArraySerializer(), new ByteArraySerializer());
    }

    KafkaConsumer<byte[], byte[]> consumer(Map<String, Object> overrides) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        props.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, 15_000);
        props.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30_000);
        props.putAll(overrides);
        return new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }

    /** Creates `name` and waits until every partition has a leader. */
    static void createTopic(Admin admin, String name, int partitions, Map<String, String> configs)
            throws Exception {
        admin.createTopics(List.of(new NewTopic(name, partitions, (short) 1).configs(configs))).all().get();
        waitUntil("leaders of " + name, () -> {
            try {
                TopicDescription description = admin.describeTopics(List.of(name)).allTopicNames().get().get(name);
                return description.partitions().size() == partitions
                        && description.partitions().stream().allMatch(partition -> partition.leader() != null);
            } catch (Exception notYet) {
                return false;
            }
        });
    }

    void createTopic(String name, int partitions) throws Exception {
        try (Admin admin = admin()) {
            createTopic(admin, name, partitions, Map.of());
        }
    }

    /** Sends all records, then waits for every acknowledgement (in send order). */
    static List<RecordMetadata> sendAll(KafkaProducer<byte[], byte[]> producer,
                                        List<ProducerRecord<byte[], byte[]>> records) throws Exception {
        List<Future<RecordMetadata>> futures = new ArrayList<>();
        for (ProducerRecord<byte[], byte[]> record : records) {
            futures.add(producer.send(record));
        }
        producer.flush();
        List<RecordMetadata> acknowledged = new ArrayList<>();
        for (Future<RecordMetadata> future : futures) {
            acknowledged.add(future.get());
        }
        return acknowledged;
    }

    static List<TopicPartition> partitions(String topic, int count) {
        List<TopicPartition> result = new ArrayList<>();
        for (int partition = 0; partition < count; partition++) {
            result.add(new TopicPartition(topic, partition));
        }
        return result;
    }

    /** Assigns `partitions` (no group), reads each from its beginning to its end offset as
     *  the consumer sees it when starting, and returns the records per partition, in order. */
    Map<TopicPartition, List<ConsumerRecord<byte[], byte[]>>> readToEnd(
            Collection<TopicPartition> partitions, Map<String, Object> overrides) throws Exception {
        try (KafkaConsumer<byte[], byte[]> consumer = consumer(overrides)) {
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            Map<TopicPartition, Long> endOffsets = consumer.endOffsets(partitions);
            Map<TopicPartition, List<ConsumerRecord<byte[], byte[]>>> result = new LinkedHashMap<>();
            partitions.forEach(partition -> result.put(partition, new ArrayList<>()));
            long deadline = System.nanoTime() + WAIT.toNanos();
            while (partitions.stream().anyMatch(p -> consumer.position(p) < endOffsets.get(p))) {
                check(System.nanoTime() < deadline, "read %s: stuck at %s, end offsets %s", partitions,
                        positions(consumer, partitions), endOffsets);
                for (ConsumerRecord<byte[], byte[]> record : consumer.poll(Duration.ofMillis(200))) {
                    result.get(new TopicPartition(record.topic(), record.partition())).add(record);
                }
            }
            return result;
        }
    }

    static Map<TopicPartition, Long> positions(KafkaConsumer<byte[], byte[]> consumer,
                                               Collection<TopicPartition> partitions) {
        Map<TopicPartition, Long> result = new TreeMap<>((a, b) -> Integer.compare(a.partition(), b.partition()));
        partitions.forEach(partition -> result.put(partition, consumer.position(partition)));
        return result;
    }

    /** Checks a partition holds exactly the standard messages `first`.. in order at offsets 0... */
    static void checkStandardRun(List<ConsumerRecord<byte[], byte[]>> records, int first, int count,
                                 String client) {
        check(records.size() == count, "read %d records, expected %d", records.size(), count);
        for (int n = 0; n < count; n++) {
            ConsumerRecord<byte[], byte[]> record = records.get(n);
            check(record.offset() == n, "%s-%d: record %d at offset %d", record.topic(), record.partition(),
                    n, record.offset());
            checkStandard(record, first + n, client);
        }
    }

    // -- scenarios --------------------------------------------------------------------------

    void metadata() throws Exception {
        try (Admin admin = admin()) {
            DescribeClusterResult cluster = admin.describeCluster();
            Collection<Node> nodes = cluster.nodes().get();
            int bootstrapPort = Integer.parseInt(bootstrap.substring(bootstrap.lastIndexOf(':') + 1));
            check(nodes.size() == 1, "brokers %s, expected one", nodes);
            check(nodes.iterator().next().port() == bootstrapPort, "broker port %d, bootstrap port %d",
                    nodes.iterator().next().port(), bootstrapPort);
            String clusterId = cluster.clusterId().get();
            check(clusterId != null && !clusterId.isEmpty(), "cluster id %s", clusterId);
            check(cluster.controller().get() != null, "no controller in metadata");
            createTopic(admin, topic, 3, Map.of());
            TopicDescription description = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
            check(description.partitions().size() == 3, "%d partitions", description.partitions().size());
            for (TopicPartitionInfo partition : description.partitions()) {
                check(partition.leader() != null && partition.leader().port() == bootstrapPort,
                        "partition %d leader %s", partition.partition(), partition.leader());
            }
        }
        try (KafkaConsumer<byte[], byte[]> consumer = consumer(Map.of())) {
            List<PartitionInfo> partitions = consumer.partitionsFor(topic);
            check(partitions.size() == 3, "consumer metadata: %d partitions of %s", partitions.size(), topic);
        }
    }

    static ConfigEntry topicConfig(Admin admin, String topic, String name) throws Exception {
        ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        Config config = admin.describeConfigs(List.of(resource)).all().get().get(resource);
        ConfigEntry entry = config.get(name);
        check(entry != null, "describe configs of %s has no %s", topic, name);
        return entry;
    }

    void topicAdmin() throws Exception {
        try (Admin admin = admin()) {
            createTopic(admin, topic, 3, Map.of("retention.ms", "3600000"));
            TopicDescription description = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
            check(description.partitions().size() == 3, "created with %d partitions", description.partitions().size());
            ConfigEntry retention = topicConfig(admin, topic, "retention.ms");
            check(retention.value().equals("3600000") && retention.source() == ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG,
                    "retention.ms %s from %s, expected 3600000 from DYNAMIC_TOPIC_CONFIG", retention.value(), retention.source());
            ConfigEntry cleanup = topicConfig(admin, topic, "cleanup.policy");
            check(cleanup.value().equals("delete") && cleanup.isDefault(), "cleanup.policy %s (default %s)",
                    cleanup.value(), cleanup.isDefault());

            ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            admin.incrementalAlterConfigs(Map.of(resource, List.of(new AlterConfigOp(
                    new ConfigEntry("retention.ms", "7200000"), AlterConfigOp.OpType.SET)))).all().get();
            retention = topicConfig(admin, topic, "retention.ms");
            check(retention.value().equals("7200000"), "after alter retention.ms is %s", retention.value());

            admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(5))).all().get();
            waitUntil("5 partitions of " + topic, () -> {
                try {
                    return admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic).partitions().size() == 5;
                } catch (Exception notYet) {
                    return false;
                }
            });

            admin.deleteTopics(List.of(topic)).all().get();
            waitUntil(topic + " gone from the topic list", () -> {
                try {
                    return !admin.listTopics().names().get().contains(topic);
                } catch (Exception notYet) {
                    return false;
                }
            });
            try {
                admin.describeTopics(List.of(topic)).allTopicNames().get();
                throw new Failure("describing deleted topic " + topic + " succeeded");
            } catch (ExecutionException expected) {
                check(expected.getCause() instanceof UnknownTopicOrPartitionException,
                        "describing the deleted topic: %s", expected.getCause());
            }
        }
    }

    void produceConsume() throws Exception {
        createTopic(topic, 3);
        int count = 1000;
        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            records.add(standardRecord(topic, null, i));
        }
        // One null value and one null key, both to partition 0, after the keyed messages.
        records.add(new ProducerRecord<>(topic, 0, T0_MS + count, standardKey(count), null,
                standardHeaders(count, CLIENT)));
        records.add(new ProducerRecord<>(topic, 0, T0_MS + count + 1, null, standardValue(count + 1),
                standardHeaders(count + 1, CLIENT)));
        List<RecordMetadata> acknowledged;
        try (KafkaProducer<byte[], byte[]> producer = producer(Map.of(ProducerConfig.LINGER_MS_CONFIG, 5))) {
            acknowledged = sendAll(producer, records);
        }
        Map<TopicPartition, List<ConsumerRecord<byte[], byte[]>>> read = readToEnd(partitions(topic, 3), Map.of());
        Map<Integer, Integer> nextOffset = new HashMap<>();
        int total = 0;
        for (int i = 0; i < records.size(); i++) {
            RecordMetadata metadata = acknowledged.get(i);
            int expectedOffset = nextOffset.merge(metadata.partition(), 1, Integer::sum) - 1;
            check(metadata.offset() == expectedOffset, "message %d acknowledged at %d-%d, expected offset %d",
                    i, metadata.partition(), metadata.offset(), expectedOffset);
            List<ConsumerRecord<byte[], byte[]>> partition = read.get(new TopicPartition(topic, metadata.partition()));
            check(expectedOffset < partition.size(), "message %d missing from partition %d", i, metadata.partition());
            ConsumerRecord<byte[], byte[]> record = partition.get(expectedOffset);
            check(record.offset() == expectedOffset, "partition %d: offset %d where %d was expected",
                    metadata.partition(), record.offset(), expectedOffset);
            ProducerRecord<byte[], byte[]> sent = records.get(i);
            checkRecord(record, sent.key(), sent.value(), Arrays.asList(sent.headers().toArray()), sent.timestamp());
        }
        for (List<ConsumerRecord<byte[], byte[]>> partition : read.values()) {
            total += partition.size();
        }
        check(total == records.size(), "read %d records, produced %d", total, records.size());
        check(read.values().stream().allMatch(partition -> !partition.isEmpty()), "a partition got no message");
    }

    void compression() throws Exception {
        for (String codec : List.of("gzip", "snappy", "lz4", "zstd")) {
            String codecTopic = topic + "-" + codec;
            createTopic(codecTopic, 1);
            List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
            for (int i = 0; i < 200; i++) {
                records.add(standardRecord(codecTopic, 0, i));
            }
            try (KafkaProducer<byte[], byte[]> producer = producer(Map.of(
                    ProducerConfig.COMPRESSION_TYPE_CONFIG, codec, ProducerConfig.LINGER_MS_CONFIG, 20))) {
                sendAll(producer, records);
            }
            TopicPartition partition = new TopicPartition(codecTopic, 0);
            try {
                checkStandardRun(readToEnd(List.of(partition), Map.of()).get(partition), 0, 200, CLIENT);
            } catch (Failure failure) {
                throw new Failure(codec + ": " + failure.getMessage());
            }
        }
    }

    void acks() throws Exception {
        createTopic(topic, 3);
        String[] modes = {"0", "1", "all"};
        for (int partition = 0; partition < modes.length; partition++) {
            List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
            for (int i = 0; i < 100; i++) {
                records.add(standardRecord(topic, partition, i));
            }
            // Idempotence needs acks=all; the other two are plain producers.
            try (KafkaProducer<byte[], byte[]> producer = producer(Map.of(ProducerConfig.ACKS_CONFIG, modes[partition],
                    ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, modes[partition].equals("all")))) {
                List<RecordMetadata> acknowledged = sendAll(producer, records);
                if (!modes[partition].equals("0")) {  // acks=0 has no offsets to report
                    for (int i = 0; i < 100; i++) {
                        check(acknowledged.get(i).offset() == i, "acks=%s: message %d acknowledged at offset %d",
                                modes[partition], i, acknowledged.get(i).offset());
                    }
                }
            }
        }
        Map<TopicPartition, List<ConsumerRecord<byte[], byte[]>>> read = readToEnd(partitions(topic, 3), Map.of());
        for (int partition = 0; partition < modes.length; partition++) {
            try {
                checkStandardRun(read.get(new TopicPartition(topic, partition)), 0, 100, CLIENT);
            } catch (Failure failure) {
                throw new Failure("acks=" + modes[partition] + ": " + failure.getMessage());
            }
        }
    }

    void idempotent() throws Exception {
        createTopic(topic, 1);
        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        for (int i = 0; i < 1000; i++) {
            records.add(standardRecord(topic, 0, i));
        }
        try (KafkaProducer<byte[], byte[]> producer = producer(Map.of(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true,
                ProducerConfig.ACKS_CONFIG, "all", ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, 5,
                ProducerConfig.LINGER_MS_CONFIG, 5, ProducerConfig.BATCH_SIZE_CONFIG, 4096))) {
            List<RecordMetadata> acknowledged = sendAll(producer, records);
            for (int i = 0; i < records.size(); i++) {
                check(acknowledged.get(i).offset() == i, "message %d acknowledged at offset %d", i,
                        acknowledged.get(i).offset());
            }
        }
        TopicPartition partition = new TopicPartition(topic, 0);
        checkStandardRun(readToEnd(List.of(partition), Map.of()).get(partition), 0, 1000, CLIENT);
    }

    void listOffsets() throws Exception {
        createTopic(topic, 1);
        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            records.add(new ProducerRecord<>(topic, 0, T0_MS + i * 1000L, standardKey(i), standardValue(i),
                    standardHeaders(i, CLIENT)));
        }
        try (KafkaProducer<byte[], byte[]> producer = producer(Map.of())) {
            sendAll(producer, records);
        }
        TopicPartition partition = new TopicPartition(topic, 0);
        try (Admin admin = admin()) {
            Map<String, OffsetSpec> specs = new LinkedHashMap<>();
            specs.put("earliest", OffsetSpec.earliest());
            specs.put("latest", OffsetSpec.latest());
            specs.put("T0+5000", OffsetSpec.forTimestamp(T0_MS + 5000));
            specs.put("T0+5500", OffsetSpec.forTimestamp(T0_MS + 5500));
            specs.put("T0+9001", OffsetSpec.forTimestamp(T0_MS + 9001));
            Map<String, Long> expected = Map.of("earliest", 0L, "latest", 10L, "T0+5000", 5L, "T0+5500", 6L,
                    "T0+9001", -1L);
            for (Map.Entry<String, OffsetSpec> spec : specs.entrySet()) {
                ListOffsetsResultInfo info = admin.listOffsets(Map.of(partition, spec.getValue())).partitionResult(partition).get();
                check(info.offset() == expected.get(spec.getKey()), "admin list offsets %s: %d, expected %d",
                        spec.getKey(), info.offset(), expected.get(spec.getKey()));
            }
        }
        try (KafkaConsumer<byte[], byte[]> consumer = consumer(Map.of())) {
            check(consumer.beginningOffsets(List.of(partition)).get(partition) == 0, "consumer beginning offset");
            check(consumer.endOffsets(List.of(partition)).get(partition) == 10, "consumer end offset");
            OffsetAndTimestamp found = consumer.offsetsForTimes(Map.of(partition, T0_MS + 5500)).get(partition);
            check(found != null && found.offset() == 6 && found.timestamp() == T0_MS + 6000,
                    "consumer offsetsForTimes(T0+5500): %s, expected offset 6 at T0+6000", found);
            OffsetAndTimestamp beyond = consumer.offsetsForTimes(Map.of(partition, T0_MS + 9001)).get(partition);
            check(beyond == null, "consumer offsetsForTimes(T0+9001): %s, expected none", beyond);
        }
    }

    void deleteRecords() throws Exception {
        createTopic(topic, 1);
        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            records.add(standardRecord(topic, 0, i));
        }
        try (KafkaProducer<byte[], byte[]> producer = producer(Map.of())) {
            sendAll(producer, records);
        }
        TopicPartition partition = new TopicPartition(topic, 0);
        try (Admin admin = admin()) {
            long lowWatermark = admin.deleteRecords(Map.of(partition, RecordsToDelete.beforeOffset(4)))
                    .lowWatermarks().get(partition).get().lowWatermark();
            check(lowWatermark == 4, "low watermark %d after deleting before 4", lowWatermark);
            long earliest = admin.listOffsets(Map.of(partition, OffsetSpec.earliest())).partitionResult(partition).get().offset();
            check(earliest == 4, "earliest offset %d after deleting before 4", earliest);
        }
        List<ConsumerRecord<byte[], byte[]>> read = readToEnd(List.of(partition), Map.of()).get(partition);
        check(read.size() == 6, "read %d records after deleting 4 of 10", read.size());
        for (int n = 0; n < 6; n++) {
            check(read.get(n).offset() == 4 + n, "record %d at offset %d, expected %d", n, read.get(n).offset(), 4 + n);
            checkStandard(read.get(n), 4 + n, CLIENT);
        }
    }

    void largeMessages() throws Exception {
        createTopic(topic, 1);
        byte[] large = new byte[900_000];
        for (int i = 0; i < large.length; i++) {
            large[i] = (byte) ('a' + i % 26);
        }
        byte[] tooLarge = new byte[2_000_000];
        Arrays.fill(tooLarge, (byte) 'z');
        // max.request.size above both: the broker, not the client, must refuse the 2 MB one.
        try (KafkaProducer<byte[], byte[]> producer = producer(Map.of(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, 3_000_000))) {
            RecordMetadata metadata = producer.send(new ProducerRecord<>(topic, 0, T0_MS, bytes("large"), large)).get();
            check(metadata.offset() == 0, "900,000-byte value at offset %d", metadata.offset());
            try {
                producer.send(new ProducerRecord<>(topic, 0, T0_MS + 1, bytes("too-large"), tooLarge)).get();
                throw new Failure("the 2,000,000-byte value was accepted");
            } catch (ExecutionException expected) {
                check(expected.getCause() instanceof RecordTooLargeException
                                && !expected.getCause().getMessage().contains("when serialized"),
                        "2,000,000-byte value: %s, expected the broker's MESSAGE_TOO_LARGE", expected.getCause());
            }
        }
        TopicPartition partition = new TopicPartition(topic, 0);
        List<ConsumerRecord<byte[], byte[]>> read = readToEnd(List.of(partition), Map.of(
                ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, 1_048_576)).get(partition);
        check(read.size() == 1, "read %d records, expected the one 900,000-byte value", read.size());
        checkRecord(read.get(0), bytes("large"), large, List.of(), T0_MS);
    }

    void unknownTopic() throws Exception {
        try (Admin admin = admin()) {
            try {
                admin.describeTopics(List.of(topic)).allTopicNames().get();
                throw new Failure("describing missing topic " + topic + " succeeded");
            } catch (ExecutionException expected) {
                check(expected.getCause() instanceof UnknownTopicOrPartitionException,
                        "describing a missing topic: %s, expected UnknownTopicOrPartitionException", expected.getCause());
            }
            // Metadata without auto-creation: the consumer asks with allow_auto_topic_creation=false.
            try (KafkaConsumer<byte[], byte[]> consumer = consumer(Map.of(ConsumerConfig.ALLOW_AUTO_CREATE_TOPICS_CONFIG, false))) {
                List<PartitionInfo> partitions = consumer.partitionsFor(topic);
                check(partitions.isEmpty(), "consumer metadata of a missing topic: %s", partitions);
            }
            check(!admin.listTopics().names().get().contains(topic), "%s was created by a metadata request", topic);
        }
        try (KafkaProducer<byte[], byte[]> producer = producer(Map.of(ProducerConfig.MAX_BLOCK_MS_CONFIG, 10_000))) {
            Throwable error;
            try {
                producer.send(standardRecord("bad topic!", null, 0)).get();
                throw new Failure("producing to \"bad topic!\" succeeded");
            } catch (ExecutionException failed) {
                error = failed.getCause();
            } catch (InvalidTopicException thrown) {
                error = thrown;
            }
            check(error instanceof InvalidTopicException, "producing to \"bad topic!\": %s, expected InvalidTopicException", error);
        }
    }

    // -- groups -----------------------------------------------------------------------------

    /** One group member polling on its own thread; commits synchronously after each poll. */
    final class Member implements Runnable {
        final String name;
        final KafkaConsumer<byte[], byte[]> consumer;
        final String subscribedTopic;
        final Thread thread;
        final ConcurrentLinkedQueue<ConsumerRecord<byte[], byte[]>> received = new ConcurrentLinkedQueue<>();
        volatile Set<TopicPartition> assignment = Set.of();
        volatile boolean stopping;
        volatile Throwable error;

        Member(String name, String group, String subscribedTopic, Map<String, Object> overrides) {
            this.name = name;
            this.subscribedTopic = subscribedTopic;
            Map<String, Object> props = new HashMap<>(overrides);
            props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
            props.put(ConsumerConfig.CLIENT_ID_CONFIG, name);
            this.consumer = consumer(props);
            this.thread = new Thread(this, name);
            thread.start();
        }

        @Override
        public void run() {
            try {
                consumer.subscribe(List.of(subscribedTopic), new ConsumerRebalanceListener() {
                    @Override
                    public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
                        assignment = Set.copyOf(consumer.assignment());
                    }

                    @Override
                    public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
                        assignment = Set.copyOf(consumer.assignment());
                    }
                });
                while (!stopping) {
                    ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(100));
                    records.forEach(received::add);
                    if (!records.isEmpty()) {
                        consumer.commitSync();
                    }
                }
            } catch (Throwable failure) {
                error = failure;
            } finally {
                consumer.close(Duration.ofSeconds(10));  // commits nothing more; leaves the group
            }
        }

        void stop() throws InterruptedException {
            stopping = true;
            thread.join(30_000);
            if (error != null) {
                throw new Failure(name + ": " + error);
            }
        }
    }

    static void checkMembersAlive(List<Member> members) {
        for (Member member : members) {
            if (member.error != null) {
                throw new Failure(member.name + ": " + member.error);
            }
        }
    }

    /** Waits until the members' assignments are disjoint, non-empty and cover `partitions`. */
    static void waitForAssignment(List<Member> members, int partitions) throws InterruptedException {
        waitUntil("a stable assignment of " + partitions + " partitions over " + members.size() + " members", () -> {
            checkMembersAlive(members);
            Set<TopicPartition> union = new HashSet<>();
            int sum = 0;
            for (Member member : members) {
                if (member.assignment.isEmpty()) {
                    return false;
                }
                union.addAll(member.assignment);
                sum += member.assignment.size();
            }
            return union.size() == partitions && sum == partitions;
        });
    }

    /** Waits until the members together hold `count` records, then checks each record was read
     *  exactly once, by the member owning its partition, and is the standard message `index`. */
    static void checkSharedExactlyOnce(List<Member> members, Map<String, Integer> indexByPosition, int count)
            throws InterruptedException {
        waitUntil(count + " records across the group", () -> {
            checkMembersAlive(members);
            return members.stream().mapToInt(member -> member.received.size()).sum() >= count;
        });
        Thread.sleep(1000);  // a duplicate delivered late would show up now
        Set<String> seen = new HashSet<>();
        for (Member member : members) {
            for (ConsumerRecord<byte[], byte[]> record : member.received) {
                String position = record.partition() + "@" + record.offset();
                check(seen.add(position), "%s read %s twice", member.name, position);
                Integer index = indexByPosition.get(position);
                check(index != null, "%s read unexpected record %s", member.name, position);
                check(member.assignment.contains(new TopicPartition(record.topic(), record.partition())),
                        "%s read %s outside its assignment %s", member.name, position, member.assignment);
                checkStandard(record, index, CLIENT);
            }
        }
        check(seen.size() == count, "the group read %d records, expected %d", seen.size(), count);
    }

    Map<String, Integer> produceStandard(String target, int count, boolean roundRobin) throws Exception {
        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        int partitionCount;
        try (Admin admin = admin()) {
            partitionCount = admin.describeTopics(List.of(target)).allTopicNames().get().get(target).partitions().size();
        }
        for (int i = 0; i < count; i++) {
            records.add(standardRecord(target, roundRobin ? i % partitionCount : null, i));
        }
        Map<String, Integer> indexByPosition = new HashMap<>();
        try (KafkaProducer<byte[], byte[]> producer = producer(Map.of(ProducerConfig.LINGER_MS_CONFIG, 5))) {
            List<RecordMetadata> acknowledged = sendAll(producer, records);
            for (int i = 0; i < count; i++) {
                indexByPosition.put(acknowledged.get(i).partition() + "@" + acknowledged.get(i).offset(), i);
            }
        }
        return indexByPosition;
    }

    /** consumer_group, or consumer_group_848 with group.protocol=consumer in `protocolConfig`. */
    void consumerGroup(Map<String, Object> protocolConfig) throws Exception {
        createTopic(topic, 6);
        String group = topic + "-group";
        List<Member> members = new ArrayList<>();
        try {
            for (int n = 1; n <= 3; n++) {
                members.add(new Member("member-" + n, group, topic, protocolConfig));
            }
            waitForAssignment(members, 6);
            if (!protocolConfig.isEmpty()) {
                // KIP-848 reconciles incrementally: a member can hold part of its share while
                // another still revokes the rest, so the full cover comes before the 2-2-2 split.
                waitUntil("2 partitions for each member", () -> {
                    checkMembersAlive(members);
                    return members.stream().allMatch(member -> member.assignment.size() == 2);
                });
                waitForAssignment(members, 6);
                try (Admin admin = admin()) {
                    GroupType type = admin.describeConsumerGroups(List.of(group)).describedGroups()
                            .get(group).get().type();
                    check(type == GroupType.CONSUMER, "group type %s, expected CONSUMER", type);
                }
            }
            for (Member member : members) {
                check(member.assignment.size() == 2, "%s was assigned %s, expected 2 of 6 partitions",
                        member.name, member.assignment);
            }
            Map<String, Integer> indexByPosition = produceStandard(topic, 3000, false);
            checkSharedExactlyOnce(members, indexByPosition, 3000);
        } finally {
            for (Member member : members) {
                member.stop();
            }
        }
        try (Admin admin = admin()) {
            Map<TopicPartition, OffsetAndMetadata> committed = admin.listConsumerGroupOffsets(group)
                    .partitionsToOffsetAndMetadata().get();
            Map<TopicPartition, ListOffsetsResultInfo> ends = admin.listOffsets(
                    Map.of(new TopicPartition(topic, 0), OffsetSpec.latest(), new TopicPartition(topic, 1), OffsetSpec.latest(),
                            new TopicPartition(topic, 2), OffsetSpec.latest(), new TopicPartition(topic, 3), OffsetSpec.latest(),
                            new TopicPartition(topic, 4), OffsetSpec.latest(), new TopicPartition(topic, 5), OffsetSpec.latest()))
                    .all().get();
            for (TopicPartition partition : partitions(topic, 6)) {
                OffsetAndMetadata offset = committed.get(partition);
                check(offset != null && offset.offset() == ends.get(partition).offset(),
                        "committed offset of %s is %s, log end offset %d", partition, offset, ends.get(partition).offset());
            }
        }
    }

    void commitsRebalance() throws Exception {
        // Commit, close, resume: a new member starts exactly at the committed offsets.
        createTopic(topic, 3);
        Map<String, Integer> indexByPosition = produceStandard(topic, 300, true);
        String group = topic + "-resume";
        Map<TopicPartition, Long> committed = new HashMap<>();
        try (KafkaConsumer<byte[], byte[]> first = consumer(Map.of(ConsumerConfig.GROUP_ID_CONFIG, group,
                ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 40))) {
            first.subscribe(List.of(topic));
            int read = 0;
            long deadline = System.nanoTime() + WAIT.toNanos();
            while (read < 120) {
                check(System.nanoTime() < deadline, "first member read %d of 300 records", read);
                read += first.poll(Duration.ofMillis(200)).count();
            }
            first.commitSync();
            for (TopicPartition partition : first.assignment()) {
                committed.put(partition, first.position(partition));
            }
        }
        long committedTotal = committed.values().stream().mapToLong(Long::longValue).sum();
        check(committed.size() == 3 && committedTotal >= 120 && committedTotal < 300,
                "first member's positions %s", committed);
        try (Admin admin = admin()) {
            Map<TopicPartition, OffsetAndMetadata> stored = admin.listConsumerGroupOffsets(group)
                    .partitionsToOffsetAndMetadata().get();
            for (Map.Entry<TopicPartition, Long> entry : committed.entrySet()) {
                OffsetAndMetadata offset = stored.get(entry.getKey());
                check(offset != null && offset.offset() == entry.getValue(), "committed offset of %s: %s, expected %d",
                        entry.getKey(), offset, entry.getValue());
            }
        }
        try (KafkaConsumer<byte[], byte[]> second = consumer(Map.of(ConsumerConfig.GROUP_ID_CONFIG, group))) {
            second.subscribe(List.of(topic));
            Map<TopicPartition, Long> next = new HashMap<>(committed);
            long remaining = 300 - committedTotal;
            long deadline = System.nanoTime() + WAIT.toNanos();
            while (remaining > 0) {
                check(System.nanoTime() < deadline, "new member: %d records still unread", remaining);
                for (ConsumerRecord<byte[], byte[]> record : second.poll(Duration.ofMillis(200))) {
                    TopicPartition partition = new TopicPartition(record.topic(), record.partition());
                    check(record.offset() == next.get(partition), "new member read %s@%d, expected offset %d",
                            partition, record.offset(), next.get(partition));
                    checkStandard(record, indexByPosition.get(record.partition() + "@" + record.offset()), CLIENT);
                    next.put(partition, record.offset() + 1);
                    remaining--;
                }
            }
            check(second.poll(Duration.ofMillis(500)).isEmpty(), "new member read past the end");
        }

        // A member leaves: the other two take over its partitions and read what follows.
        String moved = topic + "-rebalance";
        createTopic(moved, 6);
        String movedGroup = topic + "-leave";
        List<Member> members = new ArrayList<>();
        try {
            for (int n = 1; n <= 3; n++) {
                members.add(new Member("member-" + n, movedGroup, moved, Map.of()));
            }
            waitForAssignment(members, 6);
            Member leaving = members.remove(2);
            Set<TopicPartition> orphaned = leaving.assignment;
            leaving.stop();
            waitForAssignment(members, 6);
            for (TopicPartition partition : orphaned) {
                check(members.stream().anyMatch(member -> member.assignment.contains(partition)),
                        "%s of the member that left was not taken over", partition);
            }
            checkSharedExactlyOnce(members, produceStandard(moved, 600, true), 600);
        } finally {
            for (Member member : members) {
                member.stop();
            }
        }
    }

    // -- transactions -------------------------------------------------------------------------

    void transactions() throws Exception {
        createTopic(topic, 1);
        try (KafkaProducer<byte[], byte[]> producer = producer(Map.of(
                ProducerConfig.TRANSACTIONAL_ID_CONFIG, topic + "-transactional"))) {
            producer.initTransactions();
            producer.beginTransaction();
            for (int i = 0; i < 10; i++) {
                producer.send(standardRecord(topic, 0, i));
            }
            producer.commitTransaction();
            producer.beginTransaction();
            for (int i = 10; i < 20; i++) {
                producer.send(standardRecord(topic, 0, i));
            }
            producer.flush();
            producer.abortTransaction();
        }
        TopicPartition partition = new TopicPartition(topic, 0);
        List<ConsumerRecord<byte[], byte[]>> committed = readToEnd(List.of(partition),
                Map.of(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed")).get(partition);
        check(committed.size() == 10, "read_committed read %d records, expected the 10 committed", committed.size());
        for (int i = 0; i < 10; i++) {
            check(committed.get(i).offset() == i, "read_committed: record %d at offset %d", i, committed.get(i).offset());
            checkStandard(committed.get(i), i, CLIENT);
        }
        // read_uncommitted sees the aborted data too; each transaction ends in a control
        // record (offset 10: commit, 21: abort) that the consumer skips.
        List<ConsumerRecord<byte[], byte[]>> everything = readToEnd(List.of(partition),
                Map.of(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_uncommitted")).get(partition);
        check(everything.size() == 20, "read_uncommitted read %d records, expected 20", everything.size());
        for (int i = 0; i < 20; i++) {
            long expectedOffset = i < 10 ? i : i + 1;
            check(everything.get(i).offset() == expectedOffset, "read_uncommitted: record %d at offset %d, expected %d",
                    i, everything.get(i).offset(), expectedOffset);
            checkStandard(everything.get(i), i, CLIENT);
        }
    }

    // -- cross-client -----------------------------------------------------------------------

    void crossProduce() throws Exception {
        try (Admin admin = admin()) {
            try {
                createTopic(admin, topic, 1, Map.of());
            } catch (ExecutionException exists) {
                if (!(exists.getCause() instanceof TopicExistsException)) {
                    throw exists;
                }
            }
        }
        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        for (int i = 0; i < 100; i++) {
            records.add(standardRecord(topic, 0, i));
        }
        try (KafkaProducer<byte[], byte[]> producer = producer(Map.of())) {
            List<RecordMetadata> acknowledged = sendAll(producer, records);
            for (int i = 0; i < 100; i++) {
                check(acknowledged.get(i).offset() == i, "message %d acknowledged at offset %d", i,
                        acknowledged.get(i).offset());
            }
        }
    }

    void crossConsume() throws Exception {
        String producer = System.getenv("COMPAT_PRODUCER");
        check(producer != null && !producer.isEmpty(), "COMPAT_PRODUCER is not set");
        TopicPartition partition = new TopicPartition(topic, 0);
        checkStandardRun(readToEnd(List.of(partition), Map.of()).get(partition), 0, 100, producer);
    }
}
