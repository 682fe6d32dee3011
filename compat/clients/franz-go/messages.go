package main

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// baseTimestampMs is T0 of the contract: message i has timestamp T0 + i ms.
const baseTimestampMs = 1_700_000_000_000

const standardValueBytes = 100

func standardKey(i int) []byte { return []byte(fmt.Sprintf("key-%d", i)) }

func standardValue(i int) []byte {
	value := []byte(fmt.Sprintf("value-%d-", i))
	return append(value, bytes.Repeat([]byte("x"), standardValueBytes-len(value))...)
}

func standardHeaders(i int, producer string) []kgo.RecordHeader {
	return []kgo.RecordHeader{
		{Key: "index", Value: []byte(strconv.Itoa(i))},
		{Key: "client", Value: []byte(producer)},
	}
}

// standardRecord is message i of the contract with timestamp T0 + i*stepMs.
func standardRecord(topic string, i int, stepMs int64) *kgo.Record {
	return &kgo.Record{
		Topic:     topic,
		Key:       standardKey(i),
		Value:     standardValue(i),
		Headers:   standardHeaders(i, clientName),
		Timestamp: time.UnixMilli(baseTimestampMs + int64(i)*stepMs),
	}
}

// checkStandard asserts that rec is exactly message i as produced by producer.
func checkStandard(rec *kgo.Record, i int, stepMs int64, producer string) error {
	where := fmt.Sprintf("%s[%d]@%d", rec.Topic, rec.Partition, rec.Offset)
	if !bytes.Equal(rec.Key, standardKey(i)) {
		return fmt.Errorf("%s: key %q, want %q", where, rec.Key, standardKey(i))
	}
	if !bytes.Equal(rec.Value, standardValue(i)) {
		return fmt.Errorf("%s: value %q, want %q", where, rec.Value, standardValue(i))
	}
	want := standardHeaders(i, producer)
	if len(rec.Headers) != len(want) {
		return fmt.Errorf("%s: %d headers %v, want %d", where, len(rec.Headers), rec.Headers, len(want))
	}
	for h := range want {
		if rec.Headers[h].Key != want[h].Key || !bytes.Equal(rec.Headers[h].Value, want[h].Value) {
			return fmt.Errorf("%s: header %d is %s=%q, want %s=%q", where, h,
				rec.Headers[h].Key, rec.Headers[h].Value, want[h].Key, want[h].Value)
		}
	}
	if got, wantMs := rec.Timestamp.UnixMilli(), baseTimestampMs+int64(i)*stepMs; got != wantMs {
		return fmt.Errorf("%s: timestamp %d, want %d", where, got, wantMs)
	}
	return nil
}

// indexOf reads i back from a standard key "key-{i}".
func indexOf(rec *kgo.Record) (int, error) {
	digits, ok := strings.CutPrefix(string(rec.Key), "key-")
	if !ok {
		return 0, fmt.Errorf("%s[%d]@%d: key %q is not a standard key", rec.Topic, rec.Partition, rec.Offset, rec.Key)
	}
	i, err := strconv.Atoi(digits)
	if err != nil {
		return 0, fmt.Errorf("%s[%d]@%d: key %q is not a standard key", rec.Topic, rec.Partition, rec.Offset, rec.Key)
	}
	return i, nil
}

func newClient(bootstrap string, opts ...kgo.Opt) (*kgo.Client, error) {
	all := append([]kgo.Opt{
		kgo.SeedBrokers(bootstrap),
		kgo.ClientID("gregor-compat-franz-go"),
		kgo.FetchMaxWait(500 * time.Millisecond),
	}, opts...)
	return kgo.NewClient(all...)
}

// createTopic creates topic through kadm and waits until every partition has a leader.
func createTopic(ctx context.Context, s *session, topic string, partitions int32, configs map[string]*string) error {
	created, err := s.admin.CreateTopic(ctx, partitions, 1, configs, topic)
	if err != nil {
		return fmt.Errorf("CreateTopic %s: %w", topic, err)
	}
	if created.Err != nil {
		return fmt.Errorf("CreateTopic %s: %w", topic, created.Err)
	}
	return waitForLeaders(ctx, s, topic, partitions)
}

// waitForLeaders polls uncached metadata: Kafka elects leaders asynchronously
// after CreateTopics answers.
func waitForLeaders(ctx context.Context, s *session, topic string, partitions int32) error {
	for {
		resp, err := freshMetadata(ctx, s, topic)
		if err != nil {
			return err
		}
		ready := 0
		for _, t := range resp.Topics {
			if t.ErrorCode != 0 || len(t.Partitions) != int(partitions) {
				continue
			}
			for _, p := range t.Partitions {
				if p.ErrorCode == 0 && p.Leader >= 0 {
					ready++
				}
			}
		}
		if ready == int(partitions) {
			return nil
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("topic %s never had %d partitions with leaders: %w", topic, partitions, err)
		}
	}
}

// freshMetadata asks the broker directly (kadm.Metadata may answer from the
// client's cache) and never auto-creates the topics.
func freshMetadata(ctx context.Context, s *session, topics ...string) (*kmsg.MetadataResponse, error) {
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = false
	for _, topic := range topics {
		requested := kmsg.NewMetadataRequestTopic()
		requested.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, requested)
	}
	resp, err := req.RequestWith(ctx, s.cl)
	if err != nil {
		return nil, fmt.Errorf("Metadata %v: %w", topics, err)
	}
	return resp, nil
}

// session is one kgo client and the kadm admin client over it.
type session struct {
	cl    *kgo.Client
	admin *kadm.Client
}

func newSession(bootstrap string, opts ...kgo.Opt) (*session, error) {
	cl, err := newClient(bootstrap, opts...)
	if err != nil {
		return nil, err
	}
	return &session{cl: cl, admin: kadm.NewClient(cl)}, nil
}

func (s *session) Close() { s.cl.Close() }

// newSessionWithTopic opens a session and creates topic in it (see createTopic);
// the caller closes the session.
func newSessionWithTopic(ctx context.Context, bootstrap, topic string, partitions int32,
	configs map[string]*string, opts ...kgo.Opt) (*session, error) {
	s, err := newSession(bootstrap, opts...)
	if err != nil {
		return nil, err
	}
	if err := createTopic(ctx, s, topic, partitions, configs); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// produceAll produces records synchronously and fails on the first error.
func produceAll(ctx context.Context, cl *kgo.Client, records []*kgo.Record) error {
	results := cl.ProduceSync(ctx, records...)
	if err := results.FirstErr(); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	return nil
}

// consumeExactly reads from the given start offsets without a group until
// count records arrived, then checks nothing more is there: the sum of the
// partitions' high watermarks minus the start offsets equals count.
func consumeExactly(ctx context.Context, bootstrap, topic string, starts map[int32]kgo.Offset,
	count int, opts ...kgo.Opt) ([]*kgo.Record, error) {
	all := append([]kgo.Opt{
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: starts}),
		kgo.FetchMaxBytes(64 << 20),
		kgo.FetchMaxPartitionBytes(8 << 20),
	}, opts...)
	consumer, err := newClient(bootstrap, all...)
	if err != nil {
		return nil, err
	}
	defer consumer.Close()
	var records []*kgo.Record
	for len(records) < count {
		fetches := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("consumed %d of %d records from %s: %w", len(records), count, topic, err)
		}
		var fetchErr error
		fetches.EachError(func(t string, p int32, err error) {
			if fetchErr == nil {
				fetchErr = fmt.Errorf("fetch %s[%d]: %w", t, p, err)
			}
		})
		if fetchErr != nil {
			return nil, fetchErr
		}
		records = append(records, fetches.Records()...)
	}
	if len(records) > count {
		return nil, fmt.Errorf("consumed %d records from %s, want %d", len(records), topic, count)
	}
	return records, nil
}

// byPartition groups records by partition, each in consumed order.
func byPartition(records []*kgo.Record) map[int32][]*kgo.Record {
	grouped := map[int32][]*kgo.Record{}
	for _, rec := range records {
		grouped[rec.Partition] = append(grouped[rec.Partition], rec)
	}
	return grouped
}

// checkContiguous asserts offsets first, first+1, ... in consumed order.
func checkContiguous(records []*kgo.Record, first int64) error {
	for n, rec := range records {
		if rec.Offset != first+int64(n) {
			return fmt.Errorf("%s[%d]: record %d has offset %d, want %d", rec.Topic, rec.Partition, n, rec.Offset, first+int64(n))
		}
	}
	return nil
}

// checkContiguousFrom asserts that every partition's records carry offsets
// starts[p], starts[p]+1, ... in consumed order (0 where starts has none).
func checkContiguousFrom(records []*kgo.Record, starts map[int32]int64) error {
	for partition, inPartition := range byPartition(records) {
		if err := checkContiguous(inPartition, starts[partition]); err != nil {
			return err
		}
	}
	return nil
}

// checkMessages asserts that records are exactly the standard messages
// first..first+count-1 from producer, each once, with indices increasing
// within a partition (the produce order), and returns the per-partition counts.
func checkMessages(records []*kgo.Record, first, count int, stepMs int64, producer string) (map[int32]int, error) {
	if len(records) != count {
		return nil, fmt.Errorf("%d records, want %d", len(records), count)
	}
	seen := map[int]bool{}
	counts := map[int32]int{}
	for partition, inPartition := range byPartition(records) {
		previous := -1
		for _, rec := range inPartition {
			i, err := indexOf(rec)
			if err != nil {
				return nil, err
			}
			if i < first || i >= first+count || seen[i] {
				return nil, fmt.Errorf("%s[%d]@%d: unexpected or repeated message %d", rec.Topic, rec.Partition, rec.Offset, i)
			}
			if i <= previous {
				return nil, fmt.Errorf("%s[%d]@%d: message %d after %d breaks the produce order", rec.Topic, rec.Partition, rec.Offset, i, previous)
			}
			if err := checkStandard(rec, i, stepMs, producer); err != nil {
				return nil, err
			}
			seen[i] = true
			previous = i
		}
		counts[partition] = len(inPartition)
	}
	return counts, nil
}

// checkFreshTopic asserts records are exactly messages 0..count-1 on a topic
// that held nothing else: offsets contiguous from 0 in every partition and
// every partition's high watermark equal to what was read from it.
func checkFreshTopic(ctx context.Context, s *session, topic string, records []*kgo.Record, count int, stepMs int64, producer string) (map[int32]int, error) {
	if err := checkContiguousFrom(records, nil); err != nil {
		return nil, err
	}
	counts, err := checkMessages(records, 0, count, stepMs, producer)
	if err != nil {
		return nil, err
	}
	return counts, checkHighWatermarks(ctx, s.admin, topic, counts)
}

// checkProducedWhereConsumed asserts every produced record was read back at
// the partition and offset its produce acknowledgement reported.
func checkProducedWhereConsumed(produced, consumed []*kgo.Record) error {
	at := map[string]*kgo.Record{}
	for _, rec := range consumed {
		at[string(rec.Key)] = rec
	}
	for _, rec := range produced {
		got, ok := at[string(rec.Key)]
		if !ok {
			return fmt.Errorf("produced %q was not consumed", rec.Key)
		}
		if got.Partition != rec.Partition || got.Offset != rec.Offset {
			return fmt.Errorf("produced %q acknowledged at [%d]@%d but consumed at [%d]@%d",
				rec.Key, rec.Partition, rec.Offset, got.Partition, got.Offset)
		}
	}
	return nil
}

func sortedPartitions(counts map[int32]int) []int32 {
	partitions := make([]int32, 0, len(counts))
	for p := range counts {
		partitions = append(partitions, p)
	}
	sort.Slice(partitions, func(a, b int) bool { return partitions[a] < partitions[b] })
	return partitions
}

// endOffsets lists the high watermark of every partition of topic.
func endOffsets(ctx context.Context, admin *kadm.Client, topic string) (map[int32]int64, error) {
	listed, err := admin.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("ListEndOffsets %s: %w", topic, err)
	}
	return offsetsOf(listed, topic)
}

func startOffsets(ctx context.Context, admin *kadm.Client, topic string) (map[int32]int64, error) {
	listed, err := admin.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("ListStartOffsets %s: %w", topic, err)
	}
	return offsetsOf(listed, topic)
}

func offsetsOf(listed kadm.ListedOffsets, topic string) (map[int32]int64, error) {
	offsets := map[int32]int64{}
	var listErr error
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err != nil && listErr == nil {
			listErr = fmt.Errorf("list offsets %s[%d]: %w", o.Topic, o.Partition, o.Err)
		}
		if o.Topic == topic {
			offsets[o.Partition] = o.Offset
		}
	})
	return offsets, listErr
}

// checkHighWatermarks asserts the partitions hold exactly counts records
// each, so nothing was consumed short or written twice.
func checkHighWatermarks(ctx context.Context, admin *kadm.Client, topic string, counts map[int32]int) error {
	ends, err := endOffsets(ctx, admin, topic)
	if err != nil {
		return err
	}
	for partition, end := range ends {
		if end != int64(counts[partition]) {
			return fmt.Errorf("%s[%d]: high watermark %d, but %d records consumed", topic, partition, end, counts[partition])
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func stringPtr(s string) *string { return &s }
