'use strict'
// Shared pieces of the kafkajs runner: the contract's standard messages, a
// client factory, a group-less partition reader and exact-data checks.

const {
  Kafka,
  logLevel,
  Partitioners,
  CompressionTypes,
  CompressionCodecs,
} = require('./kafka')
const Batch = require('kafkajs/src/consumer/batch')
const ISOLATION_LEVEL = require('kafkajs/src/protocol/isolationLevel')

const CLIENT_NAME = 'kafkajs'
const BASE_TIMESTAMP_MS = 1700000000000 // T0: message i has timestamp T0 + i ms
const STANDARD_VALUE_BYTES = 100

/** A scenario's own assertion failed (as opposed to an error kafkajs threw). */
class Failure extends Error {}

function fail(reason) {
  throw new Failure(reason)
}

const standardKey = i => `key-${i}`

function standardValue(i) {
  const prefix = `value-${i}-`
  return prefix + 'x'.repeat(STANDARD_VALUE_BYTES - prefix.length)
}

/** Message i of the contract with timestamp T0 + i*stepMs, as kafkajs sends it. */
function standardMessage(i, stepMs = 1) {
  return {
    key: standardKey(i),
    value: standardValue(i),
    headers: { index: String(i), client: CLIENT_NAME },
    timestamp: String(BASE_TIMESTAMP_MS + i * stepMs),
  }
}

function standardMessages(first, count, stepMs = 1) {
  const messages = []
  for (let i = first; i < first + count; i++) messages.push(standardMessage(i, stepMs))
  return messages
}

const where = record => `${record.topic}[${record.partition}]@${record.offset}`

function bufferText(buffer) {
  return buffer === null ? 'null' : JSON.stringify(buffer.toString('latin1'))
}

/** Asserts that record is exactly message i as produced by producer. */
function checkStandard(record, i, stepMs, producer) {
  if (record.key === null || !record.key.equals(Buffer.from(standardKey(i)))) {
    fail(`${where(record)}: key ${bufferText(record.key)}, want "${standardKey(i)}"`)
  }
  if (record.value === null || !record.value.equals(Buffer.from(standardValue(i)))) {
    fail(`${where(record)}: value ${bufferText(record.value)}, want "${standardValue(i)}"`)
  }
  // kafkajs decodes headers into an object in wire order; a repeated key
  // would turn into an array and fail the comparison below.
  const headers = Object.entries(record.headers)
  const want = [['index', String(i)], ['client', producer]]
  if (headers.length !== want.length) {
    fail(`${where(record)}: ${headers.length} headers (${headers.map(h => h[0])}), want ${want.length}`)
  }
  want.forEach(([name, value], n) => {
    const [gotName, gotValue] = headers[n]
    if (gotName !== name || !Buffer.isBuffer(gotValue) || !gotValue.equals(Buffer.from(value))) {
      fail(`${where(record)}: header ${n} is ${gotName}=${bufferText(Buffer.isBuffer(gotValue) ? gotValue : null)}, want ${name}="${value}"`)
    }
  })
  const wantTimestamp = String(BASE_TIMESTAMP_MS + i * stepMs)
  if (record.timestamp !== wantTimestamp) {
    fail(`${where(record)}: timestamp ${record.timestamp}, want ${wantTimestamp}`)
  }
}

/** Reads i back from a standard key "key-{i}". */
function indexOf(record) {
  const match = record.key === null ? null : /^key-(\d+)$/.exec(record.key.toString('latin1'))
  if (!match) fail(`${where(record)}: key ${bufferText(record.key)} is not a standard key`)
  return Number(match[1])
}

function byPartition(records) {
  const grouped = new Map()
  for (const record of records) {
    if (!grouped.has(record.partition)) grouped.set(record.partition, [])
    grouped.get(record.partition).push(record)
  }
  return grouped
}

/** Asserts every partition's offsets run starts[p], starts[p]+1, ... (0 where starts has none). */
function checkContiguousFrom(records, starts = {}) {
  for (const [partition, inPartition] of byPartition(records)) {
    const first = BigInt(starts[partition] ?? 0)
    inPartition.forEach((record, n) => {
      if (BigInt(record.offset) !== first + BigInt(n)) {
        fail(`${record.topic}[${partition}]: record ${n} has offset ${record.offset}, want ${first + BigInt(n)}`)
      }
    })
  }
}

/**
 * Asserts records are exactly messages first..first+count-1 from producer, each
 * once, indices increasing within a partition (the produce order); returns
 * the per-partition counts.
 */
function checkMessages(records, first, count, stepMs, producer) {
  if (records.length !== count) fail(`${records.length} records, want ${count}`)
  const seen = new Set()
  const counts = {}
  for (const [partition, inPartition] of byPartition(records)) {
    let previous = -1
    for (const record of inPartition) {
      const i = indexOf(record)
      if (i < first || i >= first + count || seen.has(i)) {
        fail(`${where(record)}: unexpected or repeated message ${i}`)
      }
      if (i <= previous) fail(`${where(record)}: message ${i} after ${previous} breaks the produce order`)
      checkStandard(record, i, stepMs, producer)
      seen.add(i)
      previous = i
    }
    counts[partition] = inPartition.length
  }
  return counts
}

/** High watermark of every partition of topic, as numbers. */
async function highWatermarks(admin, topic) {
  const offsets = await admin.fetchTopicOffsets(topic)
  const result = {}
  for (const { partition, high } of offsets) result[partition] = Number(high)
  return result
}

/** Asserts each partition holds exactly counts[p] records: nothing short, nothing twice. */
async function checkHighWatermarks(admin, topic, counts) {
  const ends = await highWatermarks(admin, topic)
  for (const [partition, end] of Object.entries(ends)) {
    const consumed = counts[partition] ?? 0
    if (end !== consumed) fail(`${topic}[${partition}]: high watermark ${end}, but ${consumed} records consumed`)
  }
}

/**
 * Asserts records are exactly messages 0..count-1 on a topic that held
 * nothing else: offsets contiguous from 0 and high watermarks matching.
 */
async function checkFreshTopic(admin, topic, records, count, stepMs, producer) {
  checkContiguousFrom(records)
  const counts = checkMessages(records, 0, count, stepMs, producer)
  await checkHighWatermarks(admin, topic, counts)
  return counts
}

function newKafka(bootstrap) {
  const level = process.env.KAFKAJS_LOG_LEVEL
  return new Kafka({
    clientId: 'gregor-compat-kafkajs',
    brokers: [bootstrap],
    logLevel: level ? logLevel[level] : logLevel.NOTHING,
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 2000 },
  })
}

async function connectedAdmin(kafka, options) {
  const admin = kafka.admin(options)
  await admin.connect()
  return admin
}

/** Creates topic and waits for its leaders; returns false if it already existed. */
async function createTopic(admin, topic, numPartitions, configEntries = []) {
  return admin.createTopics({
    topics: [{ topic, numPartitions, replicationFactor: 1, configEntries }],
    waitForLeaders: true,
  })
}

async function withProducer(kafka, options, use) {
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, ...options })
  await producer.connect()
  try {
    return await use(producer)
  } finally {
    await producer.disconnect()
  }
}

const privateSymbol = (object, description) =>
  Object.getOwnPropertySymbols(object).find(symbol => symbol.description === description)

/**
 * Reads partitions of topic from the given start offsets ('earliest' or a
 * number) until count records arrived, without a consumer group.
 *
 * kafkajs has no public assign(): its consumer always joins a group. This
 * drives the same pieces its consumer uses (the Cluster, Broker.fetch and the
 * Batch that drops control records and aborted transactions) from a cluster
 * made by kafkajs's own factory.
 */
async function readPartitions(kafka, topic, starts, count, { readCommitted = false, timeoutMs = 60000 } = {}) {
  const isolationLevel = readCommitted ? ISOLATION_LEVEL.READ_COMMITTED : ISOLATION_LEVEL.READ_UNCOMMITTED
  return withCluster(kafka, topic, isolationLevel, async cluster => {
    const next = {}
    for (const [partition, start] of Object.entries(starts)) {
      if (start !== 'earliest') {
        next[partition] = String(start)
        continue
      }
      const [listed] = await cluster.fetchTopicsOffset([
        { topic, fromBeginning: true, partitions: [{ partition: Number(partition) }] },
      ])
      next[partition] = String(listed.partitions[0].offset)
    }
    const records = []
    const deadline = Date.now() + timeoutMs
    while (records.length < count) {
      if (Date.now() > deadline) fail(`read ${records.length} of ${count} records from ${topic} in ${timeoutMs} ms`)
      const leaders = cluster.findLeaderForPartitions(topic, Object.keys(next).map(Number))
      for (const [nodeId, partitions] of Object.entries(leaders)) {
        const broker = await cluster.findBroker({ nodeId })
        const { responses } = await broker.fetch({
          isolationLevel,
          maxWaitTime: 500,
          minBytes: 1,
          maxBytes: 64 << 20,
          topics: [{
            topic,
            partitions: partitions.map(partition => ({ partition, fetchOffset: next[partition], maxBytes: 8 << 20 })),
          }],
        })
        for (const { partitions: answered } of responses) {
          for (const partitionData of answered) {
            const batch = new Batch(topic, next[partitionData.partition], partitionData)
            for (const message of batch.messages) {
              records.push({ ...message, topic, partition: partitionData.partition })
            }
            if (!batch.isEmptyIncludingFiltered()) {
              const last = batch.messagesWithinOffset[batch.messagesWithinOffset.length - 1]
              next[partitionData.partition] = String(BigInt(last.offset) + 1n)
            }
          }
        }
      }
    }
    if (records.length > count) fail(`read ${records.length} records from ${topic}, want ${count}`)
    return records
  })
}

/**
 * Runs use(cluster) with a kafkajs Cluster made by kafkajs's own (private)
 * factory, as its consumer gets one, with topic's metadata loaded.
 */
async function withCluster(kafka, topic, isolationLevel, use) {
  const cluster = kafka[privateSymbol(kafka, 'private:Kafka:createCluster')]({
    allowAutoTopicCreation: false,
    isolationLevel,
    metadataMaxAge: 300000,
  })
  await cluster.connect()
  try {
    await cluster.addTargetTopic(topic)
    return await use(cluster)
  } finally {
    await cluster.disconnect()
  }
}

/** The broker's ListOffsets answer for partition 0 at timestampMs, unchanged. */
async function rawOffsetForTimestamp(kafka, topic, timestampMs) {
  return withCluster(kafka, topic, ISOLATION_LEVEL.READ_UNCOMMITTED, async cluster => {
    const [listed] = await cluster.fetchTopicsOffset([
      { topic, fromTimestamp: timestampMs, partitions: [{ partition: 0 }] },
    ])
    return listed.partitions[0].offset
  })
}

function fromStart(partitions) {
  const starts = {}
  for (let p = 0; p < partitions; p++) starts[p] = 'earliest'
  return starts
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

/** Polls check() until it returns a truthy value or timeoutMs passed. */
async function waitFor(description, timeoutMs, check) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const result = await check()
    if (result) return result
    if (Date.now() > deadline) fail(`${description} within ${timeoutMs} ms`)
    await sleep(100)
  }
}

module.exports = {
  CLIENT_NAME,
  BASE_TIMESTAMP_MS,
  CompressionTypes,
  CompressionCodecs,
  Failure,
  fail,
  standardMessage,
  standardMessages,
  checkStandard,
  indexOf,
  byPartition,
  checkContiguousFrom,
  checkMessages,
  checkHighWatermarks,
  checkFreshTopic,
  highWatermarks,
  newKafka,
  connectedAdmin,
  createTopic,
  withProducer,
  readPartitions,
  rawOffsetForTimestamp,
  fromStart,
  sleep,
  waitFor,
  where,
}
