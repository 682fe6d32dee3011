package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func fromStart(partitions int32) map[int32]kgo.Offset {
	starts := map[int32]kgo.Offset{}
	for p := int32(0); p < partitions; p++ {
		starts[p] = kgo.NewOffset().AtStart()
	}
	return starts
}

func standardRecords(topic string, first, count int, stepMs int64) []*kgo.Record {
	records := make([]*kgo.Record, 0, count)
	for i := first; i < first+count; i++ {
		records = append(records, standardRecord(topic, i, stepMs))
	}
	return records
}

func scenarioProduceConsume(ctx context.Context, bootstrap, topic string) error {
	const count = 1000
	s, err := newSessionWithTopic(ctx, bootstrap, topic, 3, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	produced := standardRecords(topic, 0, count, 1)
	nullValue := &kgo.Record{Topic: topic, Key: []byte("null-value"), Value: nil}
	nullKey := &kgo.Record{Topic: topic, Key: nil, Value: []byte("null-key")}
	produced = append(produced, nullValue, nullKey)
	if err := produceAll(ctx, s.cl, produced); err != nil {
		return err
	}
	consumed, err := consumeExactly(ctx, bootstrap, topic, fromStart(3), count+2)
	if err != nil {
		return err
	}
	if err := checkContiguousFrom(consumed, nil); err != nil {
		return err
	}
	if err := checkProducedWhereConsumed(produced, consumed); err != nil {
		return err
	}
	var standard []*kgo.Record
	var sawNullValue, sawNullKey bool
	for _, rec := range consumed {
		switch {
		case rec.Key == nil:
			if !bytes.Equal(rec.Value, []byte("null-key")) {
				return fmt.Errorf("[%d]@%d: null-key record has value %q, want \"null-key\"", rec.Partition, rec.Offset, rec.Value)
			}
			sawNullKey = true
		case bytes.Equal(rec.Key, []byte("null-value")):
			if rec.Value != nil {
				return fmt.Errorf("[%d]@%d: null value read back as %q (non-null)", rec.Partition, rec.Offset, rec.Value)
			}
			sawNullValue = true
		default:
			standard = append(standard, rec)
		}
	}
	if !sawNullKey || !sawNullValue {
		return fmt.Errorf("null-key record read back: %v, null-value record read back: %v", sawNullKey, sawNullValue)
	}
	if _, err := checkMessages(standard, 0, count, 1, clientName); err != nil {
		return err
	}
	counts := map[int32]int{}
	for partition, inPartition := range byPartition(consumed) {
		counts[partition] = len(inPartition)
	}
	return checkHighWatermarks(ctx, s.admin, topic, counts)
}

var codecs = []struct {
	name  string
	codec kgo.CompressionCodec
	// attribute is the compression type in the record batch attributes.
	attribute uint8
}{
	{"gzip", kgo.GzipCompression(), 1},
	{"snappy", kgo.SnappyCompression(), 2},
	{"lz4", kgo.Lz4Compression(), 3},
	{"zstd", kgo.ZstdCompression(), 4},
}

func scenarioCompression(ctx context.Context, bootstrap, topic string) error {
	const count = 200
	for _, codec := range codecs {
		codecTopic := topic + "-" + codec.name
		err := func() error {
			s, err := newSessionWithTopic(ctx, bootstrap, codecTopic, 1, nil,
				kgo.ProducerBatchCompression(codec.codec))
			if err != nil {
				return err
			}
			defer s.Close()
			if err := produceAll(ctx, s.cl, standardRecords(codecTopic, 0, count, 1)); err != nil {
				return fmt.Errorf("%s: %w", codec.name, err)
			}
			consumed, err := consumeExactly(ctx, bootstrap, codecTopic, fromStart(1), count)
			if err != nil {
				return fmt.Errorf("%s: %w", codec.name, err)
			}
			for _, rec := range consumed {
				if got := rec.Attrs.CompressionType(); got != codec.attribute {
					return fmt.Errorf("%s: [%d]@%d came back with compression type %d, want %d",
						codec.name, rec.Partition, rec.Offset, got, codec.attribute)
				}
			}
			if _, err := checkFreshTopic(ctx, s, codecTopic, consumed, count, 1, clientName); err != nil {
				return fmt.Errorf("%s: %w", codec.name, err)
			}
			return nil
		}()
		if err != nil {
			return err
		}
	}
	return nil
}

func scenarioAcks(ctx context.Context, bootstrap, topic string) error {
	const perAcks = 100
	admin, err := newSessionWithTopic(ctx, bootstrap, topic, 3, nil)
	if err != nil {
		return err
	}
	defer admin.Close()
	levels := []struct {
		name string
		acks kgo.Acks
	}{{"acks=0", kgo.NoAck()}, {"acks=1", kgo.LeaderAck()}, {"acks=all", kgo.AllISRAcks()}}
	for partition, level := range levels {
		opts := []kgo.Opt{kgo.RequiredAcks(level.acks), kgo.RecordPartitioner(kgo.ManualPartitioner())}
		if level.name != "acks=all" {
			opts = append(opts, kgo.DisableIdempotentWrite()) // idempotence requires acks=all
		}
		producer, err := newClient(bootstrap, opts...)
		if err != nil {
			return err
		}
		records := standardRecords(topic, partition*perAcks, perAcks, 1)
		for _, rec := range records {
			rec.Partition = int32(partition)
		}
		err = produceAll(ctx, producer, records)
		producer.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", level.name, err)
		}
	}
	consumed, err := consumeExactly(ctx, bootstrap, topic, fromStart(3), 3*perAcks)
	if err != nil {
		return err
	}
	counts, err := checkFreshTopic(ctx, admin, topic, consumed, 3*perAcks, 1, clientName)
	if err != nil {
		return err
	}
	for _, rec := range consumed {
		i, _ := indexOf(rec)
		if want := int32(i / perAcks); rec.Partition != want {
			return fmt.Errorf("message %d (%s) read from partition %d, want %d", i, levels[want].name, rec.Partition, want)
		}
	}
	if len(counts) != 3 {
		return fmt.Errorf("records in partitions %v, want 0, 1, 2", sortedPartitions(counts))
	}
	return nil
}

func scenarioIdempotent(ctx context.Context, bootstrap, topic string) error {
	const count = 1000
	// Idempotence is franz-go's default (enable.idempotence with acks=all);
	// the consumed batches' producer ids prove it was used.
	s, err := newSessionWithTopic(ctx, bootstrap, topic, 1, nil, kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		return err
	}
	defer s.Close()
	if err := produceAll(ctx, s.cl, standardRecords(topic, 0, count, 1)); err != nil {
		return err
	}
	consumed, err := consumeExactly(ctx, bootstrap, topic, fromStart(1), count)
	if err != nil {
		return err
	}
	if err := checkContiguousFrom(consumed, nil); err != nil {
		return err
	}
	for n, rec := range consumed {
		if err := checkStandard(rec, n, 1, clientName); err != nil {
			return fmt.Errorf("out of order or wrong: %w", err)
		}
		if rec.ProducerID < 0 || rec.ProducerID != consumed[0].ProducerID || rec.ProducerEpoch < 0 {
			return fmt.Errorf("[%d]@%d: producer id %d epoch %d, want one non-negative id for all",
				rec.Partition, rec.Offset, rec.ProducerID, rec.ProducerEpoch)
		}
	}
	return checkHighWatermarks(ctx, s.admin, topic, map[int32]int{0: count})
}

func scenarioListOffsets(ctx context.Context, bootstrap, topic string) error {
	const count, stepMs = 10, 1000
	s, err := newSessionWithTopic(ctx, bootstrap, topic, 1, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := produceAll(ctx, s.cl, standardRecords(topic, 0, count, stepMs)); err != nil {
		return err
	}
	starts, err := startOffsets(ctx, s.admin, topic)
	if err != nil {
		return err
	}
	if starts[0] != 0 {
		return fmt.Errorf("earliest offset %d, want 0", starts[0])
	}
	ends, err := endOffsets(ctx, s.admin, topic)
	if err != nil {
		return err
	}
	if ends[0] != count {
		return fmt.Errorf("latest offset %d, want %d", ends[0], count)
	}
	byTime := []struct {
		timestampMs, offset, foundTimestampMs int64
	}{
		{baseTimestampMs + 5000, 5, baseTimestampMs + 5000},
		{baseTimestampMs + 5500, 6, baseTimestampMs + 6000},
		{baseTimestampMs, 0, baseTimestampMs},
	}
	for _, lookup := range byTime {
		listed, err := s.admin.ListOffsetsAfterMilli(ctx, lookup.timestampMs, topic)
		if err != nil {
			return fmt.Errorf("ListOffsets at %d: %w", lookup.timestampMs, err)
		}
		found, ok := listed.Lookup(topic, 0)
		if !ok || found.Err != nil || found.Offset != lookup.offset || found.Timestamp != lookup.foundTimestampMs {
			return fmt.Errorf("offset for timestamp %d: %+v, want offset %d timestamp %d",
				lookup.timestampMs, found, lookup.offset, lookup.foundTimestampMs)
		}
	}
	// Past the last timestamp the broker answers -1; kadm documents that it
	// then lists the end offset instead, so check both layers.
	beyondMs := int64(baseTimestampMs + count*stepMs)
	listed, err := s.admin.ListOffsetsAfterMilli(ctx, beyondMs, topic)
	if err != nil {
		return fmt.Errorf("ListOffsets at %d: %w", beyondMs, err)
	}
	if found, ok := listed.Lookup(topic, 0); !ok || found.Err != nil || found.Offset != count {
		return fmt.Errorf("kadm offset beyond the last timestamp: %+v, want the end offset %d", found, count)
	}
	offset, timestampMs, err := rawListOffset(ctx, s, topic, beyondMs)
	if err != nil {
		return err
	}
	if offset != -1 || timestampMs != -1 {
		return fmt.Errorf("ListOffsets beyond the last timestamp: offset %d timestamp %d, want -1 -1", offset, timestampMs)
	}
	return nil
}

// rawListOffset sends one ListOffsets for partition 0 and returns the broker's answer unchanged.
func rawListOffset(ctx context.Context, s *session, topic string, timestampMs int64) (int64, int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	requestTopic := kmsg.NewListOffsetsRequestTopic()
	requestTopic.Topic = topic
	requestPartition := kmsg.NewListOffsetsRequestTopicPartition()
	requestPartition.Partition = 0
	requestPartition.Timestamp = timestampMs
	requestTopic.Partitions = append(requestTopic.Partitions, requestPartition)
	req.Topics = append(req.Topics, requestTopic)
	resp, err := req.RequestWith(ctx, s.cl)
	if err != nil {
		return 0, 0, fmt.Errorf("ListOffsets at %d: %w", timestampMs, err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return 0, 0, fmt.Errorf("ListOffsets at %d: answer has %d topics", timestampMs, len(resp.Topics))
	}
	partition := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(partition.ErrorCode); err != nil {
		return 0, 0, fmt.Errorf("ListOffsets at %d: %w", timestampMs, err)
	}
	return partition.Offset, partition.Timestamp, nil
}

func scenarioDeleteRecords(ctx context.Context, bootstrap, topic string) error {
	const count, deleteBefore = 10, 4
	s, err := newSessionWithTopic(ctx, bootstrap, topic, 1, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := produceAll(ctx, s.cl, standardRecords(topic, 0, count, 1)); err != nil {
		return err
	}
	before := make(kadm.Offsets)
	before.Add(kadm.Offset{Topic: topic, Partition: 0, At: deleteBefore})
	deleted, err := s.admin.DeleteRecords(ctx, before)
	if err != nil {
		return fmt.Errorf("DeleteRecords: %w", err)
	}
	result, ok := deleted.Lookup(topic, 0)
	if !ok || result.Err != nil || result.LowWatermark != deleteBefore {
		return fmt.Errorf("DeleteRecords before %d: %+v, want low watermark %d", deleteBefore, result, deleteBefore)
	}
	starts, err := startOffsets(ctx, s.admin, topic)
	if err != nil {
		return err
	}
	if starts[0] != deleteBefore {
		return fmt.Errorf("earliest offset %d after DeleteRecords, want %d", starts[0], deleteBefore)
	}
	consumed, err := consumeExactly(ctx, bootstrap, topic, fromStart(1), count-deleteBefore)
	if err != nil {
		return err
	}
	if err := checkContiguousFrom(consumed, map[int32]int64{0: deleteBefore}); err != nil {
		return err
	}
	for n, rec := range consumed {
		if err := checkStandard(rec, deleteBefore+n, 1, clientName); err != nil {
			return err
		}
	}
	ends, err := endOffsets(ctx, s.admin, topic)
	if err != nil {
		return err
	}
	if ends[0] != count {
		return fmt.Errorf("latest offset %d after DeleteRecords, want %d", ends[0], count)
	}
	return nil
}

func scenarioLargeMessages(ctx context.Context, bootstrap, topic string) error {
	const fitsBytes, tooLargeBytes = 900_000, 2_000_000
	// The client's own batch limit is raised past both values so the
	// broker (max.message.bytes 1048588 by default) is the one that refuses;
	// uncompressed, as franz-go's default snappy would shrink the batch below it.
	s, err := newSessionWithTopic(ctx, bootstrap, topic, 1, nil, kgo.ProducerBatchMaxBytes(4_000_000),
		kgo.RecordRetries(0), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		return err
	}
	defer s.Close()
	large := &kgo.Record{Topic: topic, Key: []byte("large"), Value: patternBytes(fitsBytes)}
	if err := produceAll(ctx, s.cl, []*kgo.Record{large}); err != nil {
		return fmt.Errorf("%d-byte value: %w", fitsBytes, err)
	}
	consumed, err := consumeExactly(ctx, bootstrap, topic, fromStart(1), 1)
	if err != nil {
		return err
	}
	if got := consumed[0]; got.Offset != 0 || !bytes.Equal(got.Key, large.Key) || !bytes.Equal(got.Value, large.Value) {
		return fmt.Errorf("%d-byte value read back as %d bytes at offset %d", fitsBytes, len(got.Value), got.Offset)
	}
	tooLarge := &kgo.Record{Topic: topic, Key: []byte("too-large"), Value: patternBytes(tooLargeBytes)}
	err = s.cl.ProduceSync(ctx, tooLarge).FirstErr()
	if !errors.Is(err, kerr.MessageTooLarge) {
		return fmt.Errorf("%d-byte value: %v, want MESSAGE_TOO_LARGE", tooLargeBytes, err)
	}
	return checkHighWatermarks(ctx, s.admin, topic, map[int32]int{0: 1})
}

// patternBytes is size bytes that no codec or truncation leaves unchanged by accident.
func patternBytes(size int) []byte {
	value := make([]byte, size)
	for i := range value {
		value[i] = byte(i % 251)
	}
	return value
}

func scenarioCrossProduce(ctx context.Context, bootstrap, topic string) error {
	const count = 100
	s, err := newSession(bootstrap)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := createTopic(ctx, s, topic, 1, nil); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return err
	}
	records := standardRecords(topic, 0, count, 1)
	if err := produceAll(ctx, s.cl, records); err != nil {
		return err
	}
	for n, rec := range records {
		if rec.Partition != 0 || rec.Offset != int64(n) {
			return fmt.Errorf("message %d acknowledged at [%d]@%d, want [0]@%d", n, rec.Partition, rec.Offset, n)
		}
	}
	return nil
}

func scenarioCrossConsume(ctx context.Context, bootstrap, topic string) error {
	const count = 100
	producer := os.Getenv("COMPAT_PRODUCER")
	if producer == "" {
		return errors.New("COMPAT_PRODUCER is not set (the producing client's name)")
	}
	s, err := newSession(bootstrap)
	if err != nil {
		return err
	}
	defer s.Close()
	consumed, err := consumeExactly(ctx, bootstrap, topic, fromStart(1), count)
	if err != nil {
		return err
	}
	_, err = checkFreshTopic(ctx, s, topic, consumed, count, 1, producer)
	return err
}
