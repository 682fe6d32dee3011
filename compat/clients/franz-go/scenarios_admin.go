package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func scenarioMetadata(ctx context.Context, bootstrap, topic string) error {
	_, portText, err := net.SplitHostPort(bootstrap)
	if err != nil {
		return fmt.Errorf("bootstrap %q: %w", bootstrap, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return fmt.Errorf("bootstrap port %q: %w", portText, err)
	}
	s, err := newSession(bootstrap)
	if err != nil {
		return err
	}
	defer s.Close()
	cluster, err := s.admin.BrokerMetadata(ctx)
	if err != nil {
		return fmt.Errorf("BrokerMetadata: %w", err)
	}
	if len(cluster.Brokers) != 1 {
		return fmt.Errorf("%d brokers %v, want 1", len(cluster.Brokers), cluster.Brokers)
	}
	broker := cluster.Brokers[0]
	if broker.Port != int32(port) {
		return fmt.Errorf("broker %d advertises port %d, bootstrap port is %d", broker.NodeID, broker.Port, port)
	}
	if cluster.Cluster == "" {
		return errors.New("cluster id is empty")
	}
	if err := createTopic(ctx, s, topic, 3, nil); err != nil {
		return err
	}
	described, err := s.admin.Metadata(ctx, topic)
	if err != nil {
		return fmt.Errorf("Metadata %s: %w", topic, err)
	}
	detail := described.Topics[topic]
	if detail.Err != nil {
		return fmt.Errorf("Metadata %s: %w", topic, detail.Err)
	}
	if len(detail.Partitions) != 3 {
		return fmt.Errorf("%s has %d partitions, want 3", topic, len(detail.Partitions))
	}
	for partition := int32(0); partition < 3; partition++ {
		p, ok := detail.Partitions[partition]
		if !ok {
			return fmt.Errorf("%s: partition %d missing from %v", topic, partition, detail.Partitions.Numbers())
		}
		if p.Err != nil || p.Leader != broker.NodeID {
			return fmt.Errorf("%s[%d]: leader %d (error %v), want broker %d", topic, partition, p.Leader, p.Err, broker.NodeID)
		}
	}
	return nil
}

func scenarioTopicAdmin(ctx context.Context, bootstrap, topic string) error {
	s, err := newSessionWithTopic(ctx, bootstrap, topic, 3,
		map[string]*string{"retention.ms": stringPtr("3600000")})
	if err != nil {
		return err
	}
	defer s.Close()
	if err := checkPartitionCount(ctx, s, topic, 3); err != nil {
		return err
	}
	if err := checkTopicOverride(ctx, s, topic, "retention.ms", "3600000"); err != nil {
		return err
	}
	altered, err := s.admin.AlterTopicConfigs(ctx,
		[]kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: stringPtr("7200000")}}, topic)
	if err != nil {
		return fmt.Errorf("IncrementalAlterConfigs %s: %w", topic, err)
	}
	if len(altered) != 1 || altered[0].Err != nil {
		return fmt.Errorf("IncrementalAlterConfigs %s: %v", topic, altered)
	}
	if err := checkTopicOverride(ctx, s, topic, "retention.ms", "7200000"); err != nil {
		return err
	}
	grown, err := s.admin.UpdatePartitions(ctx, 5, topic)
	if err != nil {
		return fmt.Errorf("CreatePartitions %s to 5: %w", topic, err)
	}
	if result, ok := grown[topic]; !ok || result.Err != nil {
		return fmt.Errorf("CreatePartitions %s to 5: %v", topic, grown)
	}
	if err := waitForLeaders(ctx, s, topic, 5); err != nil {
		return err
	}
	deleted, err := s.admin.DeleteTopic(ctx, topic)
	if err != nil {
		return fmt.Errorf("DeleteTopics %s: %w", topic, err)
	}
	if deleted.Err != nil {
		return fmt.Errorf("DeleteTopics %s: %w", topic, deleted.Err)
	}
	return waitForTopicGone(ctx, s, topic)
}

// checkPartitionCount asserts a fresh metadata answer shows count partitions.
func checkPartitionCount(ctx context.Context, s *session, topic string, count int) error {
	resp, err := freshMetadata(ctx, s, topic)
	if err != nil {
		return err
	}
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
		return fmt.Errorf("Metadata %s: %d topics, error %v", topic, len(resp.Topics), topicError(resp))
	}
	if got := len(resp.Topics[0].Partitions); got != count {
		return fmt.Errorf("%s has %d partitions, want %d", topic, got, count)
	}
	return nil
}

// checkTopicOverride asserts DescribeConfigs shows name=value set on the topic itself.
func checkTopicOverride(ctx context.Context, s *session, topic, name, value string) error {
	described, err := s.admin.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return fmt.Errorf("DescribeConfigs %s: %w", topic, err)
	}
	resource, err := described.On(topic, nil)
	if err != nil {
		return fmt.Errorf("DescribeConfigs %s: %w", topic, err)
	}
	if resource.Err != nil {
		return fmt.Errorf("DescribeConfigs %s: %w", topic, resource.Err)
	}
	for _, config := range resource.Configs {
		if config.Key != name {
			continue
		}
		if config.Value == nil || *config.Value != value {
			return fmt.Errorf("%s: %s = %v, want %s", topic, name, config.MaybeValue(), value)
		}
		if config.Source != kmsg.ConfigSourceDynamicTopicConfig {
			return fmt.Errorf("%s: %s source %s, want DYNAMIC_TOPIC_CONFIG", topic, name, config.Source)
		}
		return nil
	}
	return fmt.Errorf("%s: DescribeConfigs has no %s", topic, name)
}

// waitForTopicGone polls because Kafka deletes a topic's metadata asynchronously.
func waitForTopicGone(ctx context.Context, s *session, topic string) error {
	for {
		resp, err := freshMetadata(ctx, s, topic)
		if err != nil {
			return err
		}
		if errors.Is(topicError(resp), kerr.UnknownTopicOrPartition) {
			break
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("%s still in metadata after DeleteTopics: %w", topic, err)
		}
	}
	listed, err := s.admin.ListTopics(ctx)
	if err != nil {
		return fmt.Errorf("ListTopics: %w", err)
	}
	if listed.Has(topic) {
		return fmt.Errorf("%s deleted but still listed", topic)
	}
	return nil
}

func topicError(resp *kmsg.MetadataResponse) error {
	if len(resp.Topics) == 0 {
		return errors.New("no topics in the answer")
	}
	return kerr.ErrorForCode(resp.Topics[0].ErrorCode)
}

func scenarioUnknownTopic(ctx context.Context, bootstrap, topic string) error {
	s, err := newSession(bootstrap)
	if err != nil {
		return err
	}
	defer s.Close()
	described, err := s.admin.DescribeTopicConfigs(ctx, topic)
	if err == nil {
		var resource kadm.ResourceConfig
		resource, err = described.On(topic, nil)
		if err == nil {
			err = resource.Err
		}
	}
	if !errors.Is(err, kerr.UnknownTopicOrPartition) {
		return fmt.Errorf("DescribeConfigs of missing %s: %v, want UNKNOWN_TOPIC_OR_PARTITION", topic, err)
	}
	metadata, err := s.admin.Metadata(ctx, topic)
	if err != nil {
		return fmt.Errorf("Metadata %s: %w", topic, err)
	}
	if err := metadata.Topics[topic].Err; !errors.Is(err, kerr.UnknownTopicOrPartition) {
		return fmt.Errorf("Metadata of missing %s: %v, want UNKNOWN_TOPIC_OR_PARTITION", topic, err)
	}
	// Asked twice without auto-creation: the first ask must not have created it.
	for ask := 0; ask < 2; ask++ {
		resp, err := freshMetadata(ctx, s, topic)
		if err != nil {
			return err
		}
		if err := topicError(resp); !errors.Is(err, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("Metadata (allow_auto_topic_creation=false) of missing %s: %v, want UNKNOWN_TOPIC_OR_PARTITION", topic, err)
		}
	}
	return checkIllegalTopicRefused(ctx, bootstrap)
}

// checkIllegalTopicRefused: franz-go does not validate topic names itself, so
// the broker's INVALID_TOPIC_EXCEPTION in the metadata answer fails the record.
func checkIllegalTopicRefused(ctx context.Context, bootstrap string) error {
	const illegalTopic = "bad topic!"
	producer, err := newClient(bootstrap, kgo.AllowAutoTopicCreation())
	if err != nil {
		return err
	}
	defer producer.Close()
	produceCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = producer.ProduceSync(produceCtx, standardRecord(illegalTopic, 0, 1)).FirstErr()
	if !errors.Is(err, kerr.InvalidTopicException) {
		return fmt.Errorf("produce to %q: %v, want INVALID_TOPIC_EXCEPTION", illegalTopic, err)
	}
	return nil
}
