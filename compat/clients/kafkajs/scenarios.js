'use strict'
// The contract's scenarios (compat/SCENARIOS.md) written with kafkajs.

const { ConfigResourceTypes, ConfigSource, CompressionTypes, codecCalls } = require('./kafka')
const {
  CLIENT_NAME,
  BASE_TIMESTAMP_MS,
  fail,
  standardMessage,
  standardMessages,
  checkStandard,
  byPartition,
  checkContiguousFrom,
  checkMessages,
  checkHighWatermarks,
  checkFreshTopic,
  newKafka,
  connectedAdmin,
  createTopic,
  withProducer,
  readPartitions,
  rawOffsetForTimestamp,
  fromStart,
  waitFor,
  where,
} = require('./common')
const { consumerGroup, commitsRebalance, transactions } = require('./scenarios-groups')

/** Runs use(admin, kafka) with a connected admin client, disconnecting after. */
async function withAdmin(bootstrap, use, adminOptions) {
  const kafka = newKafka(bootstrap)
  const admin = await connectedAdmin(kafka, adminOptions)
  try {
    return await use(admin, kafka)
  } finally {
    await admin.disconnect()
  }
}

async function metadata(bootstrap, topic) {
  const port = Number(bootstrap.slice(bootstrap.lastIndexOf(':') + 1))
  await withAdmin(bootstrap, async admin => {
    const cluster = await admin.describeCluster()
    if (cluster.brokers.length !== 1) fail(`${cluster.brokers.length} brokers, want 1`)
    const [broker] = cluster.brokers
    if (broker.port !== port) fail(`broker ${broker.nodeId} advertises port ${broker.port}, bootstrap port is ${port}`)
    if (!cluster.clusterId) fail('cluster id is empty')
    await createTopic(admin, topic, 3)
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] })
    const partitions = topics[0].partitions
    if (topics.length !== 1 || partitions.length !== 3) fail(`${topic} has ${partitions.length} partitions, want 3`)
    for (const p of [...partitions].sort((a, b) => a.partitionId - b.partitionId)) {
      if (p.partitionErrorCode !== 0 || p.leader !== broker.nodeId) {
        fail(`${topic}[${p.partitionId}]: leader ${p.leader} (error ${p.partitionErrorCode}), want broker ${broker.nodeId}`)
      }
    }
    const ids = partitions.map(p => p.partitionId).sort()
    if (ids.join() !== '0,1,2') fail(`${topic} partitions ${ids}, want 0,1,2`)
  })
}

/** Asserts DescribeConfigs shows name=value set on the topic itself. */
async function checkTopicOverride(admin, topic, name, value) {
  const described = await admin.describeConfigs({
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: [name] }],
    includeSynonyms: false,
  })
  const entry = described.resources[0].configEntries.find(e => e.configName === name)
  if (!entry) fail(`${topic}: DescribeConfigs has no ${name}`)
  if (entry.configValue !== value) fail(`${topic}: ${name} = ${entry.configValue}, want ${value}`)
  if (entry.configSource !== ConfigSource.TOPIC_CONFIG || entry.isDefault) {
    fail(`${topic}: ${name} source ${entry.configSource} (default ${entry.isDefault}), want TOPIC_CONFIG override`)
  }
}

async function partitionIds(admin, topic) {
  const { topics } = await admin.fetchTopicMetadata({ topics: [topic] })
  return topics[0].partitions.filter(p => p.leader >= 0).map(p => p.partitionId).sort()
}

async function topicAdmin(bootstrap, topic) {
  await withAdmin(bootstrap, async admin => {
    await createTopic(admin, topic, 3, [{ name: 'retention.ms', value: '3600000' }])
    const ids = await partitionIds(admin, topic)
    if (ids.join() !== '0,1,2') fail(`${topic} partitions ${ids}, want 0,1,2`)
    await checkTopicOverride(admin, topic, 'retention.ms', '3600000')
    // kafkajs has AlterConfigs only (no IncrementalAlterConfigs).
    await admin.alterConfigs({
      validateOnly: false,
      resources: [{
        type: ConfigResourceTypes.TOPIC,
        name: topic,
        configEntries: [{ name: 'retention.ms', value: '7200000' }],
      }],
    })
    await checkTopicOverride(admin, topic, 'retention.ms', '7200000')
    await admin.createPartitions({ topicPartitions: [{ topic, count: 5 }] })
    await waitFor(`${topic} to have 5 partitions with leaders`, 20000,
      async () => (await partitionIds(admin, topic)).join() === '0,1,2,3,4')
    await admin.deleteTopics({ topics: [topic] })
    await waitFor(`${topic} to be gone after DeleteTopics`, 20000,
      async () => !(await admin.listTopics()).includes(topic))
    await expectProtocolError(`Metadata of deleted ${topic}`, 'UNKNOWN_TOPIC_OR_PARTITION',
      () => admin.fetchTopicMetadata({ topics: [topic] }))
  }, { retry: { retries: 1, initialRetryTime: 100 } })
}

/** Runs action and asserts it fails with kafkajs's error of that Kafka error type. */
async function expectProtocolError(what, type, action) {
  let outcome
  try {
    outcome = await action()
  } catch (error) {
    const got = error.type ?? (error.cause && error.cause.type)
    if (got === type) return error
    fail(`${what}: ${error.name}: ${got ?? error.message}, want ${type}`)
  }
  fail(`${what}: succeeded (${JSON.stringify(outcome)}), want ${type}`)
}

async function produceConsume(bootstrap, topic) {
  const count = 1000
  await withAdmin(bootstrap, async (admin, kafka) => {
    await createTopic(admin, topic, 3)
    const nullValue = { key: 'null-value', value: null }
    const nullKey = { key: null, value: 'null-key' }
    await withProducer(kafka, {}, producer =>
      producer.send({ topic, messages: [...standardMessages(0, count), nullValue, nullKey] }))
    const records = await readPartitions(kafka, topic, fromStart(3), count + 2)
    checkContiguousFrom(records)
    const standard = []
    let sawNullKey = false
    let sawNullValue = false
    for (const record of records) {
      if (record.key === null) {
        if (record.value === null || !record.value.equals(Buffer.from('null-key'))) {
          fail(`${where(record)}: null-key record has value ${record.value}, want "null-key"`)
        }
        sawNullKey = true
      } else if (record.key.equals(Buffer.from('null-value'))) {
        if (record.value !== null) fail(`${where(record)}: null value read back as ${JSON.stringify(String(record.value))}`)
        sawNullValue = true
      } else {
        standard.push(record)
      }
    }
    if (!sawNullKey || !sawNullValue) fail(`null-key read back: ${sawNullKey}, null-value read back: ${sawNullValue}`)
    checkMessages(standard, 0, count, 1, CLIENT_NAME)
    const counts = {}
    for (const [partition, inPartition] of byPartition(records)) counts[partition] = inPartition.length
    await checkHighWatermarks(admin, topic, counts)
  })
}

const CODECS = [
  ['gzip', CompressionTypes.GZIP],
  ['snappy', CompressionTypes.Snappy],
  ['lz4', CompressionTypes.LZ4],
  ['zstd', CompressionTypes.ZSTD],
]

async function compression(bootstrap, topic) {
  const count = 200
  await withAdmin(bootstrap, async (admin, kafka) => {
    for (const [name, type] of CODECS) {
      const codecTopic = `${topic}-${name}`
      await createTopic(admin, codecTopic, 1)
      const before = { ...codecCalls[type] }
      await withProducer(kafka, {}, producer =>
        producer.send({ topic: codecTopic, compression: type, messages: standardMessages(0, count) }))
      const records = await readPartitions(kafka, codecTopic, fromStart(1), count)
      // kafkajs picks the decompressor from the fetched batch's attributes:
      // a decompress call proves the broker kept the batch in this codec.
      const calls = codecCalls[type]
      if (calls.compress === before.compress || calls.decompress === before.decompress) {
        fail(`${name}: codec used ${calls.compress - before.compress} times to produce and ${calls.decompress - before.decompress} to read back`)
      }
      try {
        await checkFreshTopic(admin, codecTopic, records, count, 1, CLIENT_NAME)
      } catch (error) {
        fail(`${name}: ${error.message}`)
      }
    }
  })
}

async function acks(bootstrap, topic) {
  const perAcks = 100
  const levels = [['acks=0', 0], ['acks=1', 1], ['acks=all', -1]]
  await withAdmin(bootstrap, async (admin, kafka) => {
    await createTopic(admin, topic, 3)
    await withProducer(kafka, {}, async producer => {
      for (const [partition, [, acksLevel]] of levels.entries()) {
        const messages = standardMessages(partition * perAcks, perAcks).map(m => ({ ...m, partition }))
        await producer.send({ topic, acks: acksLevel, messages })
      }
    })
    const records = await readPartitions(kafka, topic, fromStart(3), 3 * perAcks)
    await checkFreshTopic(admin, topic, records, 3 * perAcks, 1, CLIENT_NAME)
    for (const record of records) {
      const i = Number(record.key.toString().slice(4))
      const want = Math.floor(i / perAcks)
      if (record.partition !== want) fail(`message ${i} (${levels[want][0]}) read from partition ${record.partition}, want ${want}`)
    }
  })
}

async function idempotent(bootstrap, topic) {
  const count = 1000
  await withAdmin(bootstrap, async (admin, kafka) => {
    await createTopic(admin, topic, 1)
    await withProducer(kafka, { idempotent: true, maxInFlightRequests: 1 }, producer =>
      producer.send({ topic, acks: -1, messages: standardMessages(0, count) }))
    const records = await readPartitions(kafka, topic, fromStart(1), count)
    checkContiguousFrom(records)
    const producerId = records[0].batchContext.producerId
    records.forEach((record, n) => {
      checkStandard(record, n, 1, CLIENT_NAME)
      const { producerId: id, producerEpoch } = record.batchContext
      if (BigInt(id) < 0n || id !== producerId || producerEpoch < 0) {
        fail(`${where(record)}: producer id ${id} epoch ${producerEpoch}, want one non-negative id for all`)
      }
    })
    await checkHighWatermarks(admin, topic, { 0: count })
  })
}

async function listOffsets(bootstrap, topic) {
  const count = 10
  const stepMs = 1000
  await withAdmin(bootstrap, async (admin, kafka) => {
    await createTopic(admin, topic, 1)
    await withProducer(kafka, {}, producer => producer.send({ topic, messages: standardMessages(0, count, stepMs) }))
    const [offsets] = await admin.fetchTopicOffsets(topic)
    if (offsets.low !== '0') fail(`earliest offset ${offsets.low}, want 0`)
    if (offsets.high !== String(count)) fail(`latest offset ${offsets.high}, want ${count}`)
    const lookups = [
      [BASE_TIMESTAMP_MS + 5000, '5'],
      [BASE_TIMESTAMP_MS + 5500, '6'],
      [BASE_TIMESTAMP_MS, '0'],
      // Past the last timestamp the broker answers -1, which kafkajs's
      // fetchTopicOffsetsByTimestamp documents as "the latest offset".
      [BASE_TIMESTAMP_MS + count * stepMs, String(count)],
    ]
    for (const [timestampMs, want] of lookups) {
      const [found] = await admin.fetchTopicOffsetsByTimestamp(topic, timestampMs)
      if (found.offset !== want) fail(`offset for timestamp ${timestampMs}: ${found.offset}, want ${want}`)
    }
    const beyondMs = BASE_TIMESTAMP_MS + count * stepMs
    const raw = await rawOffsetForTimestamp(kafka, topic, beyondMs)
    if (raw !== '-1') fail(`ListOffsets beyond the last timestamp answered offset ${raw}, want -1`)
  })
}

async function deleteRecords(bootstrap, topic) {
  const count = 10
  const deleteBefore = 4
  await withAdmin(bootstrap, async (admin, kafka) => {
    await createTopic(admin, topic, 1)
    await withProducer(kafka, {}, producer => producer.send({ topic, messages: standardMessages(0, count) }))
    // deleteTopicRecords finds leaders in the admin's metadata cache, which
    // only fetchTopicOffsets (or another per-topic call) fills.
    const [before] = await admin.fetchTopicOffsets(topic)
    if (before.low !== '0' || before.high !== String(count)) {
      fail(`before DeleteRecords: low watermark ${before.low}, high ${before.high}, want 0 and ${count}`)
    }
    await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: String(deleteBefore) }] })
    const [offsets] = await admin.fetchTopicOffsets(topic)
    if (offsets.low !== String(deleteBefore) || offsets.high !== String(count)) {
      fail(`after DeleteRecords before ${deleteBefore}: low watermark ${offsets.low}, high ${offsets.high}, want ${deleteBefore} and ${count}`)
    }
    const records = await readPartitions(kafka, topic, fromStart(1), count - deleteBefore)
    checkContiguousFrom(records, { 0: deleteBefore })
    records.forEach((record, n) => checkStandard(record, deleteBefore + n, 1, CLIENT_NAME))
  })
}

/** size bytes that no truncation or codec leaves unchanged by accident. */
function patternBytes(size) {
  const value = Buffer.alloc(size)
  for (let i = 0; i < size; i++) value[i] = i % 251
  return value
}

async function largeMessages(bootstrap, topic) {
  const fitsBytes = 900000
  const tooLargeBytes = 2000000
  await withAdmin(bootstrap, async (admin, kafka) => {
    await createTopic(admin, topic, 1)
    const large = patternBytes(fitsBytes)
    // kafkajs sets no client-side size limit and compresses nothing by
    // default: the broker's max.message.bytes (1048588) decides.
    await withProducer(kafka, { retry: { retries: 0 } }, async producer => {
      await producer.send({ topic, messages: [{ key: 'large', value: large }] })
      await expectProtocolError(`${tooLargeBytes}-byte value`, 'MESSAGE_TOO_LARGE',
        () => producer.send({ topic, messages: [{ key: 'too-large', value: patternBytes(tooLargeBytes) }] }))
    })
    const [record] = await readPartitions(kafka, topic, fromStart(1), 1)
    if (record.offset !== '0' || !record.value.equals(large)) {
      fail(`${fitsBytes}-byte value read back as ${record.value && record.value.length} bytes at offset ${record.offset}`)
    }
    await checkHighWatermarks(admin, topic, { 0: 1 })
  })
}

async function unknownTopic(bootstrap, topic) {
  await withAdmin(bootstrap, async (admin, kafka) => {
    await expectProtocolError(`DescribeConfigs of missing ${topic}`, 'UNKNOWN_TOPIC_OR_PARTITION', () =>
      admin.describeConfigs({
        resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }],
        includeSynonyms: false,
      }))
    // kafkajs's admin asks for metadata with allow_auto_topic_creation=false.
    for (let ask = 0; ask < 2; ask++) {
      await expectProtocolError(`Metadata of missing ${topic}`, 'UNKNOWN_TOPIC_OR_PARTITION',
        () => admin.fetchTopicMetadata({ topics: [topic] }))
    }
    if ((await admin.listTopics()).includes(topic)) fail(`${topic} was created by asking for its metadata`)
    // kafkajs does not validate topic names: the broker's metadata answer refuses it.
    await withProducer(kafka, { retry: { retries: 1, initialRetryTime: 100 } }, producer =>
      expectProtocolError('produce to "bad topic!"', 'INVALID_TOPIC_EXCEPTION',
        () => producer.send({ topic: 'bad topic!', messages: [standardMessage(0)] })))
  }, { retry: { retries: 1, initialRetryTime: 100 } })
}

async function crossProduce(bootstrap, topic) {
  const count = 100
  await withAdmin(bootstrap, async (admin, kafka) => {
    await createTopic(admin, topic, 1)
    const answers = await withProducer(kafka, {}, producer =>
      producer.send({ topic, messages: standardMessages(0, count) }))
    const offsets = answers.map(a => `${a.partition}@${a.baseOffset}`).join()
    if (offsets !== '0@0') fail(`produced at ${offsets}, want one batch at partition 0 offset 0`)
    await checkHighWatermarks(admin, topic, { 0: count })
  })
}

async function crossConsume(bootstrap, topic) {
  const count = 100
  const producer = process.env.COMPAT_PRODUCER
  if (!producer) fail('COMPAT_PRODUCER is not set (the producing client\'s name)')
  await withAdmin(bootstrap, async (admin, kafka) => {
    const records = await readPartitions(kafka, topic, fromStart(1), count)
    await checkFreshTopic(admin, topic, records, count, 1, producer)
  })
}

/** Every scenario of the contract, in its order. */
module.exports = {
  metadata,
  topic_admin: topicAdmin,
  produce_consume: produceConsume,
  compression,
  acks,
  idempotent,
  list_offsets: listOffsets,
  delete_records: deleteRecords,
  large_messages: largeMessages,
  unknown_topic: unknownTopic,
  consumer_group: consumerGroup,
  commits_rebalance: commitsRebalance,
  transactions,
  cross_produce: crossProduce,
  cross_consume: crossConsume,
}
