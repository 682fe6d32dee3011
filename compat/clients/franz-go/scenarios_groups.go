package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// member is one consumer in a group, polling in its own goroutine; it
// commits what it received before recording it when commitEach is set.
type member struct {
	name   string
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	assigned map[int32]bool
	records  []*kgo.Record
	err      error
}

func startMember(ctx context.Context, bootstrap, group, topic, name string, commitEach bool, extra ...kgo.Opt) (*member, error) {
	m := &member{name: name, assigned: map[int32]bool{}, done: make(chan struct{})}
	track := func(add bool) func(context.Context, *kgo.Client, map[string][]int32) {
		return func(_ context.Context, _ *kgo.Client, partitions map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range partitions[topic] {
				if add {
					m.assigned[p] = true
				} else {
					delete(m.assigned, p)
				}
			}
		}
	}
	opts := []kgo.Opt{
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(track(true)),
		kgo.OnPartitionsRevoked(track(false)),
		kgo.OnPartitionsLost(track(false)),
	}
	if commitEach {
		opts = append(opts, kgo.DisableAutoCommit())
	}
	opts = append(opts, extra...)
	cl, err := newClient(bootstrap, opts...)
	if err != nil {
		return nil, err
	}
	m.cl = cl
	pollCtx, cancel := context.WithCancel(ctx)
	m.cancel = cancel
	go m.poll(pollCtx, commitEach)
	return m, nil
}

func (m *member) poll(ctx context.Context, commitEach bool) {
	defer close(m.done)
	for {
		fetches := m.cl.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return
		}
		var fetchErr error
		fetches.EachError(func(t string, p int32, err error) {
			if fetchErr == nil {
				fetchErr = fmt.Errorf("%s: fetch %s[%d]: %w", m.name, t, p, err)
			}
		})
		records := fetches.Records()
		if fetchErr == nil && commitEach && len(records) > 0 {
			if err := m.cl.CommitRecords(ctx, records...); err != nil {
				fetchErr = fmt.Errorf("%s: commit: %w", m.name, err)
			}
		}
		m.mu.Lock()
		m.records = append(m.records, records...)
		if fetchErr != nil && m.err == nil {
			m.err = fetchErr
		}
		m.mu.Unlock()
		if fetchErr != nil {
			return
		}
	}
}

// stop leaves the group (Close sends LeaveGroup) and waits for the poll loop.
func (m *member) stop() {
	m.cancel()
	<-m.done
	m.cl.Close()
}

// snapshot returns the partitions assigned now, the records so far and the first error.
func (m *member) snapshot() ([]int32, []*kgo.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	partitions := make([]int32, 0, len(m.assigned))
	for p := range m.assigned {
		partitions = append(partitions, p)
	}
	sort.Slice(partitions, func(a, b int) bool { return partitions[a] < partitions[b] })
	return partitions, append([]*kgo.Record(nil), m.records...), m.err
}

// waitForAssignment waits until the members' own views split all partitions
// among them (each owning at least one) and the coordinator reports the group
// Stable with exactly these members.
func waitForAssignment(ctx context.Context, admin *kadm.Client, group string, partitions int32, members ...*member) error {
	return waitForSplit(ctx, group, partitions, func() (bool, error) {
		described, err := admin.DescribeGroups(ctx, group)
		if err != nil {
			return false, fmt.Errorf("DescribeGroups %s: %w", group, err)
		}
		g, ok := described[group]
		return ok && g.Err == nil && g.State == "Stable" && len(g.Members) == len(members), nil
	}, members...)
}

// waitForConsumerGroupAssignment is waitForAssignment for a KIP-848 group: the
// coordinator must describe it through ConsumerGroupDescribe (which knows only
// consumer-protocol groups, so a client that fell back to the classic protocol
// never gets here) as Stable, every member at the group's assignment epoch.
func waitForConsumerGroupAssignment(ctx context.Context, admin *kadm.Client, group string, partitions int32, members ...*member) error {
	return waitForSplit(ctx, group, partitions, func() (bool, error) {
		described, err := admin.DescribeConsumerGroups(ctx, group)
		if err != nil {
			return false, fmt.Errorf("DescribeConsumerGroups %s: %w", group, err)
		}
		g, ok := described[group]
		return ok && g.Err == nil && g.State == "Stable" && len(g.Members) == len(members), nil
	}, members...)
}

// waitForSplit waits until the members' own views split all partitions among
// them (each owning at least one) and stable says the coordinator agrees.
func waitForSplit(ctx context.Context, group string, partitions int32, stable func() (bool, error), members ...*member) error {
	for {
		owners := map[int32]string{}
		settled := true
		for _, m := range members {
			owned, _, err := m.snapshot()
			if err != nil {
				return err
			}
			if len(owned) == 0 {
				settled = false
			}
			for _, p := range owned {
				if _, taken := owners[p]; taken {
					settled = false
				}
				owners[p] = m.name
			}
		}
		if settled && len(owners) == int(partitions) {
			ok, err := stable()
			if err != nil {
				return err
			}
			if ok {
				return nil
			}
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("group %s never settled with %d members over %d partitions (owners %v): %w",
				group, len(members), partitions, owners, err)
		}
	}
}

// waitForRecords waits until the members together received count records
// after the given per-member marks, and returns those records per member.
func waitForRecords(ctx context.Context, count int, marks map[*member]int, members ...*member) (map[*member][]*kgo.Record, error) {
	for {
		received := map[*member][]*kgo.Record{}
		total := 0
		for _, m := range members {
			_, records, err := m.snapshot()
			if err != nil {
				return nil, err
			}
			received[m] = records[marks[m]:]
			total += len(received[m])
		}
		if total >= count {
			return received, nil
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return nil, fmt.Errorf("group received %d of %d records: %w", total, count, err)
		}
	}
}

// checkOwnPartitions asserts each member received records only from partitions it owns.
func checkOwnPartitions(received map[*member][]*kgo.Record) error {
	for m, records := range received {
		owned, _, _ := m.snapshot()
		own := map[int32]bool{}
		for _, p := range owned {
			own[p] = true
		}
		for _, rec := range records {
			if !own[rec.Partition] {
				return fmt.Errorf("%s received [%d]@%d but owns partitions %v", m.name, rec.Partition, rec.Offset, owned)
			}
		}
		if len(records) == 0 {
			return fmt.Errorf("%s (partitions %v) received nothing", m.name, owned)
		}
	}
	return nil
}

func flatten(received map[*member][]*kgo.Record) []*kgo.Record {
	var all []*kgo.Record
	for _, records := range received {
		all = append(all, records...)
	}
	return all
}

func scenarioConsumerGroup(ctx context.Context, bootstrap, topic string) error {
	return consumerGroup(ctx, bootstrap, topic, false)
}

// scenarioConsumerGroup848 is consumer_group over KIP-848: ServerSideBalancer
// makes kgo heartbeat with ConsumerGroupHeartbeat (server assignor "uniform",
// from the default cooperative-sticky balancer).
func scenarioConsumerGroup848(ctx context.Context, bootstrap, topic string) error {
	return consumerGroup(ctx, bootstrap, topic, true)
}

func consumerGroup(ctx context.Context, bootstrap, topic string, nextGen bool) error {
	const partitions, count = 6, 3000
	group := topic + "-group"
	s, err := newSessionWithTopic(ctx, bootstrap, topic, partitions, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	var members []*member
	defer func() {
		for _, m := range members {
			m.stop()
		}
	}()
	for n := 0; n < 3; n++ {
		var extra []kgo.Opt
		if nextGen {
			extra = append(extra, kgo.ServerSideBalancer())
		}
		m, err := startMember(ctx, bootstrap, group, topic, fmt.Sprintf("consumer-%d", n), false, extra...)
		if err != nil {
			return err
		}
		members = append(members, m)
	}
	// Produce only once the group settled, so the split is the assignment's.
	wait := waitForAssignment
	if nextGen {
		wait = waitForConsumerGroupAssignment
	}
	if err := wait(ctx, s.admin, group, partitions, members...); err != nil {
		return err
	}
	if err := produceAll(ctx, s.cl, standardRecords(topic, 0, count, 1)); err != nil {
		return err
	}
	received, err := waitForRecords(ctx, count, nil, members...)
	if err != nil {
		return err
	}
	if err := checkOwnPartitions(received); err != nil {
		return err
	}
	_, err = checkFreshTopic(ctx, s, topic, flatten(received), count, 1, clientName)
	return err
}

func scenarioCommitsRebalance(ctx context.Context, bootstrap, topic string) error {
	const partitions, perStage = 3, 300
	group := topic + "-group"
	s, err := newSessionWithTopic(ctx, bootstrap, topic, partitions, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	var live []*member
	defer func() {
		for _, m := range live {
			m.stop()
		}
	}()
	join := func(name string) (*member, error) {
		m, err := startMember(ctx, bootstrap, group, topic, name, true)
		if err == nil {
			live = append(live, m)
		}
		return m, err
	}
	leave := func(m *member) {
		m.stop()
		for n := range live {
			if live[n] == m {
				live = append(live[:n], live[n+1:]...)
				break
			}
		}
	}
	marks := map[*member]int{}
	committed := map[int32]int64{}
	// stage produces messages first..first+perStage-1 once the live members
	// own all partitions, waits for them, and checks that each partition
	// resumed exactly at the previously committed offset and was committed to its end.
	stage := func(first int) error {
		if err := waitForAssignment(ctx, s.admin, group, partitions, live...); err != nil {
			return err
		}
		if err := produceAll(ctx, s.cl, standardRecords(topic, first, perStage, 1)); err != nil {
			return err
		}
		received, err := waitForRecords(ctx, perStage, marks, live...)
		if err != nil {
			return err
		}
		if err := checkOwnPartitions(received); err != nil {
			return fmt.Errorf("messages %d..: %w", first, err)
		}
		records := flatten(received)
		if err := checkContiguousFrom(records, committed); err != nil {
			return fmt.Errorf("messages %d.. did not resume at the committed offsets %v: %w", first, committed, err)
		}
		if _, err := checkMessages(records, first, perStage, 1, clientName); err != nil {
			return err
		}
		for m, got := range received {
			marks[m] += len(got)
		}
		ends, err := endOffsets(ctx, s.admin, topic)
		if err != nil {
			return err
		}
		if err := waitForCommitted(ctx, s.admin, group, topic, ends); err != nil {
			return err
		}
		committed = ends
		return nil
	}

	first, err := join("consumer-a")
	if err != nil {
		return err
	}
	if err := stage(0); err != nil {
		return fmt.Errorf("first member: %w", err)
	}
	leave(first) // commit, close: the next member must resume, not restart
	second, err := join("consumer-b")
	if err != nil {
		return err
	}
	if err := stage(perStage); err != nil {
		return fmt.Errorf("new member after close: %w", err)
	}
	third, err := join("consumer-c")
	if err != nil {
		return err
	}
	if err := stage(2 * perStage); err != nil {
		return fmt.Errorf("two members: %w", err)
	}
	leave(third) // the remaining member takes over its partitions
	if err := stage(3 * perStage); err != nil {
		return fmt.Errorf("after a member left: %w", err)
	}
	owned, _, _ := second.snapshot()
	if len(owned) != partitions {
		return fmt.Errorf("remaining member owns %v, want all %d partitions", owned, partitions)
	}
	return nil
}

// waitForCommitted waits for the group's committed offsets to reach want:
// members commit synchronously before recording records, so this is short.
func waitForCommitted(ctx context.Context, admin *kadm.Client, group, topic string, want map[int32]int64) error {
	for {
		fetched, err := admin.FetchOffsets(ctx, group)
		if err != nil {
			return fmt.Errorf("OffsetFetch %s: %w", group, err)
		}
		matched := 0
		for partition, offset := range want {
			if got, ok := fetched.Lookup(topic, partition); ok && got.Err == nil && got.At == offset {
				matched++
			}
		}
		if matched == len(want) {
			return nil
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("committed offsets of %s never reached %v (have %v): %w", group, want, fetched, err)
		}
	}
}

func scenarioTransactions(ctx context.Context, bootstrap, topic string) error {
	s, err := newSessionWithTopic(ctx, bootstrap, topic, 1, nil, kgo.TransactionalID(topic+"-txn"))
	if err != nil {
		return err
	}
	defer s.Close()
	// Committed 0..49, aborted 50..99, committed 100..109: the last commit
	// shows a read_committed reader skipping the aborted ones, not stopping.
	transactions := []struct {
		first, count int
		commit       kgo.TransactionEndTry
	}{{0, 50, kgo.TryCommit}, {50, 50, kgo.TryAbort}, {100, 10, kgo.TryCommit}}
	for _, txn := range transactions {
		if err := s.cl.BeginTransaction(); err != nil {
			return fmt.Errorf("BeginTransaction: %w", err)
		}
		if err := produceAll(ctx, s.cl, standardRecords(topic, txn.first, txn.count, 1)); err != nil {
			return err
		}
		if err := s.cl.EndTransaction(ctx, txn.commit); err != nil {
			return fmt.Errorf("EndTransaction (commit=%v) of %d..: %w", txn.commit, txn.first, err)
		}
	}
	// Each transaction ends with one control record (offsets 50, 101, 112).
	offsetOf := func(i int) int64 {
		switch {
		case i < 50:
			return int64(i)
		case i < 100:
			return int64(i + 1)
		default:
			return int64(i + 2)
		}
	}
	check := func(records []*kgo.Record, indices []int, isolation string) error {
		if len(records) != len(indices) {
			return fmt.Errorf("%s read %d records, want %d", isolation, len(records), len(indices))
		}
		for n, i := range indices {
			rec := records[n]
			if err := checkStandard(rec, i, 1, clientName); err != nil {
				return fmt.Errorf("%s: %w", isolation, err)
			}
			if rec.Offset != offsetOf(i) || !rec.Attrs.IsTransactional() {
				return fmt.Errorf("%s: message %d at offset %d (transactional %v), want offset %d, transactional",
					isolation, i, rec.Offset, rec.Attrs.IsTransactional(), offsetOf(i))
			}
		}
		return nil
	}
	var committedIndices, allIndices []int
	for i := 0; i < 110; i++ {
		if i < 50 || i >= 100 {
			committedIndices = append(committedIndices, i)
		}
		allIndices = append(allIndices, i)
	}
	readCommitted, err := consumeExactly(ctx, bootstrap, topic, fromStart(1), len(committedIndices),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return fmt.Errorf("read_committed: %w", err)
	}
	if err := check(readCommitted, committedIndices, "read_committed"); err != nil {
		return err
	}
	readUncommitted, err := consumeExactly(ctx, bootstrap, topic, fromStart(1), len(allIndices),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	if err != nil {
		return fmt.Errorf("read_uncommitted: %w", err)
	}
	if err := check(readUncommitted, allIndices, "read_uncommitted"); err != nil {
		return err
	}
	ends, err := endOffsets(ctx, s.admin, topic)
	if err != nil {
		return err
	}
	stable, err := s.admin.ListCommittedOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("ListOffsets read_committed: %w", err)
	}
	lastStable, ok := stable.Lookup(topic, 0)
	if !ok || lastStable.Err != nil {
		return errors.New("ListOffsets read_committed: no answer for partition 0")
	}
	if ends[0] != 113 || lastStable.Offset != 113 {
		return fmt.Errorf("high watermark %d, last stable offset %d, want 113 and 113", ends[0], lastStable.Offset)
	}
	return nil
}
