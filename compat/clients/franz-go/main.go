// Command franz-go-runner runs one scenario of Gregor's stock-client matrix
// (compat/SCENARIOS.md) with franz-go (kgo + kadm) and exits 0 on PASS, 1 on
// FAIL (the reason on the last line of stderr) and 2 when the scenario is not
// applicable to this client.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

const clientName = "franz-go"

// scenarioTimeout stays under the matrix's 120 s kill so a stuck scenario
// still reports a reason instead of being killed silently.
const scenarioTimeout = 100 * time.Second

type scenarioFunc func(ctx context.Context, bootstrap, topic string) error

// scenarios lists every scenario of the contract in the contract's order.
var scenarios = []struct {
	name string
	run  scenarioFunc
}{
	{"metadata", scenarioMetadata},
	{"topic_admin", scenarioTopicAdmin},
	{"produce_consume", scenarioProduceConsume},
	{"compression", scenarioCompression},
	{"acks", scenarioAcks},
	{"idempotent", scenarioIdempotent},
	{"list_offsets", scenarioListOffsets},
	{"delete_records", scenarioDeleteRecords},
	{"large_messages", scenarioLargeMessages},
	{"unknown_topic", scenarioUnknownTopic},
	{"consumer_group", scenarioConsumerGroup},
	{"consumer_group_848", scenarioConsumerGroup848},
	{"commits_rebalance", scenarioCommitsRebalance},
	{"transactions", scenarioTransactions},
	{"cross_produce", scenarioCrossProduce},
	{"cross_consume", scenarioCrossConsume},
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	flags := flag.NewFlagSet("franz-go-runner", flag.ContinueOnError)
	list := flags.Bool("list", false, "print the scenario names, one per line")
	bootstrap := flags.String("bootstrap", "", "HOST:PORT of the broker")
	scenario := flags.String("scenario", "", "scenario name")
	topic := flags.String("topic", "", "fresh topic name for this scenario")
	if err := flags.Parse(args); err != nil {
		return 1
	}
	if *list {
		for _, s := range scenarios {
			fmt.Println(s.name)
		}
		return 0
	}
	if *bootstrap == "" || *scenario == "" || *topic == "" {
		fmt.Fprintln(os.Stderr, "usage: run --list | run --bootstrap HOST:PORT --scenario NAME --topic TOPIC")
		return 1
	}
	for _, s := range scenarios {
		if s.name != *scenario {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), scenarioTimeout)
		defer cancel()
		if err := s.run(ctx, *bootstrap, *topic); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("timed out after %s: %w", scenarioTimeout, err)
			}
			fmt.Fprintln(os.Stderr, oneLine(err.Error()))
			return 1
		}
		return 0
	}
	fmt.Fprintf(os.Stderr, "scenario %q is not implemented by %s\n", *scenario, clientName)
	return 2
}

// oneLine keeps the FAIL reason on the single last line of stderr.
func oneLine(text string) string {
	return strings.Join(strings.Fields(text), " ")
}
