'use strict'
// Group and transaction scenarios (compat/SCENARIOS.md) with kafkajs's consumer and producer.

const {
  CLIENT_NAME,
  fail,
  standardMessages,
  checkStandard,
  checkContiguousFrom,
  checkMessages,
  checkFreshTopic,
  highWatermarks,
  newKafka,
  connectedAdmin,
  createTopic,
  withProducer,
  readPartitions,
  fromStart,
  waitFor,
  where,
} = require('./common')

const SETTLE_TIMEOUT_MS = 40000
const RECEIVE_TIMEOUT_MS = 30000

/**
 * One consumer in a group. It records its assignment from kafkajs's
 * GROUP_JOIN event; with commitEach it commits each batch before recording it.
 */
async function startMember(kafka, groupId, topic, name, { commitEach }) {
  const consumer = kafka.consumer({
    groupId,
    sessionTimeout: 30000,
    rebalanceTimeout: 30000,
    heartbeatInterval: 1000,
    maxWaitTimeInMs: 500,
    retry: { retries: 3, initialRetryTime: 100 },
  })
  const member = { name, consumer, assigned: [], records: [], error: null }
  consumer.on(consumer.events.GROUP_JOIN, event => {
    member.assigned = [...(event.payload.memberAssignment[topic] || [])].sort((a, b) => a - b)
  })
  consumer.on(consumer.events.CRASH, event => {
    member.error = member.error || event.payload.error
  })
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  await consumer.run({
    autoCommit: !commitEach,
    eachBatch: async ({ batch }) => {
      const records = batch.messages.map(message => ({ ...message, topic, partition: batch.partition }))
      if (commitEach && records.length > 0) {
        const next = BigInt(records[records.length - 1].offset) + 1n
        await consumer.commitOffsets([{ topic, partition: batch.partition, offset: String(next) }])
      }
      member.records.push(...records)
    },
  })
  return member
}

function checkMember(member) {
  if (member.error) fail(`${member.name} crashed: ${member.error.name}: ${member.error.message}`)
}

/**
 * Waits until the members' own assignments split all partitions among them
 * (each owning at least one) and the coordinator reports the group Stable
 * with exactly these members.
 */
async function waitForAssignment(admin, groupId, partitions, members) {
  await waitFor(`group ${groupId} to settle with ${members.length} members over ${partitions} partitions`,
    SETTLE_TIMEOUT_MS, async () => {
      members.forEach(checkMember)
      const owned = members.flatMap(m => m.assigned)
      if (members.some(m => m.assigned.length === 0) || new Set(owned).size !== owned.length ||
          owned.length !== partitions) {
        return false
      }
      const { groups } = await admin.describeGroups([groupId])
      return groups[0].state === 'Stable' && groups[0].members.length === members.length
    })
}

/** Waits for count records over the members past their marks; returns them per member. */
async function waitForRecords(count, marks, members) {
  return waitFor(`the group to receive ${count} records`, RECEIVE_TIMEOUT_MS, () => {
    members.forEach(checkMember)
    const received = new Map(members.map(m => [m, m.records.slice(marks.get(m) || 0)]))
    const total = [...received.values()].reduce((sum, records) => sum + records.length, 0)
    return total >= count ? received : null
  })
}

/** Asserts each member received something, and only from partitions it owns. */
function checkOwnPartitions(received) {
  for (const [member, records] of received) {
    for (const record of records) {
      if (!member.assigned.includes(record.partition)) {
        fail(`${member.name} received ${where(record)} but owns partitions ${member.assigned}`)
      }
    }
    if (records.length === 0) fail(`${member.name} (partitions ${member.assigned}) received nothing`)
  }
}

async function consumerGroup(bootstrap, topic) {
  const partitions = 6
  const count = 3000
  const groupId = `${topic}-group`
  const kafka = newKafka(bootstrap)
  const admin = await connectedAdmin(kafka)
  const members = []
  try {
    await createTopic(admin, topic, partitions)
    for (let n = 0; n < 3; n++) {
      members.push(await startMember(kafka, groupId, topic, `consumer-${n}`, { commitEach: false }))
    }
    // Produce only once the group settled, so the split is the assignment's.
    await waitForAssignment(admin, groupId, partitions, members)
    await withProducer(kafka, {}, producer => producer.send({ topic, messages: standardMessages(0, count) }))
    const received = await waitForRecords(count, new Map(), members)
    checkOwnPartitions(received)
    await checkFreshTopic(admin, topic, [...received.values()].flat(), count, 1, CLIENT_NAME)
  } finally {
    await Promise.all(members.map(m => m.consumer.disconnect()))
    await admin.disconnect()
  }
}

/** Waits for the group's committed offsets to reach want ({partition: offset}). */
async function waitForCommitted(admin, groupId, topic, want) {
  await waitFor(`committed offsets of ${groupId} to reach ${JSON.stringify(want)}`, RECEIVE_TIMEOUT_MS, async () => {
    const [fetched] = await admin.fetchOffsets({ groupId, topics: [topic] })
    return Object.entries(want).every(([partition, offset]) =>
      fetched.partitions.some(p => p.partition === Number(partition) && p.offset === String(offset)))
  })
}

async function commitsRebalance(bootstrap, topic) {
  const partitions = 3
  const perStage = 300
  const groupId = `${topic}-group`
  const kafka = newKafka(bootstrap)
  const admin = await connectedAdmin(kafka)
  const live = []
  const marks = new Map()
  let committed = {}

  const join = async name => {
    const member = await startMember(kafka, groupId, topic, name, { commitEach: true })
    live.push(member)
    return member
  }
  const leave = async member => {
    live.splice(live.indexOf(member), 1)
    await member.consumer.disconnect() // sends LeaveGroup
  }
  // Produces messages first..first+perStage-1 once the live members own all
  // partitions; checks each partition resumed exactly at the committed
  // offset and was committed to its end.
  const stage = async (first, label) => {
    try {
      await waitForAssignment(admin, groupId, partitions, live)
      await withProducer(kafka, {}, producer =>
        producer.send({ topic, messages: standardMessages(first, perStage) }))
      const received = await waitForRecords(perStage, marks, live)
      checkOwnPartitions(received)
      const records = [...received.values()].flat()
      try {
        checkContiguousFrom(records, committed)
      } catch (error) {
        fail(`did not resume at the committed offsets ${JSON.stringify(committed)}: ${error.message}`)
      }
      checkMessages(records, first, perStage, 1, CLIENT_NAME)
      for (const [member, got] of received) marks.set(member, (marks.get(member) || 0) + got.length)
      const ends = await highWatermarks(admin, topic)
      await waitForCommitted(admin, groupId, topic, ends)
      committed = ends
    } catch (error) {
      fail(`${label}: ${error.message}`)
    }
  }

  try {
    await createTopic(admin, topic, partitions)
    const first = await join('consumer-a')
    await stage(0, 'first member')
    await leave(first) // commit, close: the next member must resume, not restart
    const second = await join('consumer-b')
    await stage(perStage, 'new member after close')
    const third = await join('consumer-c')
    await stage(2 * perStage, 'two members')
    await leave(third) // the remaining member takes over its partitions
    await stage(3 * perStage, 'after a member left')
    if (second.assigned.length !== partitions) {
      fail(`remaining member owns ${second.assigned}, want all ${partitions} partitions`)
    }
  } finally {
    await Promise.all(live.map(m => m.consumer.disconnect()))
    await admin.disconnect()
  }
}

async function transactions(bootstrap, topic) {
  const kafka = newKafka(bootstrap)
  const admin = await connectedAdmin(kafka)
  try {
    await createTopic(admin, topic, 1)
    // Committed 0..49, aborted 50..99, committed 100..109: the last commit
    // shows a read_committed reader skipping the aborted ones, not stopping.
    const plan = [[0, 50, true], [50, 50, false], [100, 10, true]]
    await withProducer(kafka, { transactionalId: `${topic}-txn`, idempotent: true, maxInFlightRequests: 1 },
      async producer => {
        for (const [first, count, commit] of plan) {
          const transaction = await producer.transaction()
          await transaction.send({ topic, messages: standardMessages(first, count) })
          await (commit ? transaction.commit() : transaction.abort())
        }
      })
    // Each transaction ends with one control record (offsets 50, 101, 112).
    const offsetOf = i => String(i < 50 ? i : i < 100 ? i + 1 : i + 2)
    const check = (records, indices, isolation) => {
      if (records.length !== indices.length) fail(`${isolation} read ${records.length} records, want ${indices.length}`)
      indices.forEach((i, n) => {
        const record = records[n]
        checkStandard(record, i, 1, CLIENT_NAME)
        if (record.offset !== offsetOf(i) || !record.batchContext.inTransaction) {
          fail(`${isolation}: message ${i} at offset ${record.offset} (transactional ${record.batchContext.inTransaction}), want offset ${offsetOf(i)}, transactional`)
        }
      })
    }
    const all = [...Array(110).keys()]
    const committedOnly = all.filter(i => i < 50 || i >= 100)
    check(await readPartitions(kafka, topic, fromStart(1), committedOnly.length, { readCommitted: true }),
      committedOnly, 'read_committed')
    check(await readPartitions(kafka, topic, fromStart(1), all.length), all, 'read_uncommitted')
    const ends = await highWatermarks(admin, topic)
    if (ends[0] !== 113) fail(`high watermark ${ends[0]}, want 113`)
  } finally {
    await admin.disconnect()
  }
}

module.exports = { consumerGroup, commitsRebalance, transactions }
