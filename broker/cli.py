"""`gregor` command line: `gregor serve` runs a broker; `python -m broker` is the same."""
from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

import trio

from broker import __version__
from broker.config import DEV_DEFAULTS, ConfigError, load_broker_config, parse_properties

log = logging.getLogger("gregor")
CONTROLLED_SHUTDOWN_TIMEOUT_S = 10.0  # then stop anyway: the controller re-elects


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def _host_port(text: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gregor", description="A Kafka-compatible broker.")
    parser.add_argument("--version", action="version", version=f"gregor {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    dev_defaults = "\n".join(f"  {key}={value}" for key, value in sorted(DEV_DEFAULTS.items()))
    serve = commands.add_parser(
        "serve", help="run a broker",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run a broker. Without -c it is a dev broker: Kafka's defaults, except\n"
                    f"these that a single local broker needs:\n{dev_defaults}")
    serve.add_argument("-c", "--config", type=Path, metavar="server.properties",
                       help="Kafka server.properties file")
    serve.add_argument("--data-dir", type=Path, help="log dir (sets log.dirs)")
    serve.add_argument("--listen", type=_host_port, metavar="HOST:PORT",
                       help="listener address (sets listeners); port 0 picks a free port")
    serve.add_argument("--node-id", type=int, help="sets node.id")
    serve.add_argument("--set", dest="overrides", type=_key_value, action="append", default=[],
                       metavar="KEY=VALUE", help="any broker config, e.g. num.partitions=3")
    serve.add_argument("--log-level", default="INFO",
                       choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    _add_cluster_commands(commands)
    return parser


def _add_cluster_commands(commands) -> None:
    cluster = commands.add_parser(
        "cluster", help="a local cluster: ZooKeeper and N brokers on loopback",
        description="A local cluster for development and resilience tests. `up` starts a "
                    "real ZooKeeper (unless --zookeeper names one) and N brokers, prints "
                    "`bootstrap: ...` once all are registered, and returns, leaving them "
                    "running.")
    actions = cluster.add_subparsers(dest="action", required=True)
    up = actions.add_parser("up", help="start ZooKeeper and N brokers")
    up.add_argument("--brokers", type=int, required=True, metavar="N")
    up.add_argument("--dir", type=Path, required=True)
    up.add_argument("--zookeeper", type=_host_port, metavar="HOST:PORT",
                    help="use this ZooKeeper instead of starting one")
    up.add_argument("--set", dest="overrides", type=_key_value, action="append", default=[],
                    metavar="KEY=VALUE", help="a broker config for every broker")
    for name, text in (("status", "each broker's id, address, PID and leaderships"),
                       ("add", "start one more broker (the next id, the same settings)"),
                       ("down", "stop every broker and the ZooKeeper `up` started")):
        action = actions.add_parser(name, help=text)
        action.add_argument("--dir", type=Path, required=True)
    for name, text in (("kill", "kill -9 one broker"),
                       ("stop", "stop one broker (controlled shutdown)"),
                       ("start", "start a stopped broker again")):
        action = actions.add_parser(name, help=text)
        action.add_argument("id", type=int)
        action.add_argument("--dir", type=Path, required=True)


def run_cluster_command(args: argparse.Namespace) -> int:
    from broker import cluster_cli
    from broker.zookeeper.server import ZooKeeperError

    try:
        if args.action == "up":
            if args.brokers < 1:
                raise cluster_cli.ClusterError("--brokers must be at least 1")
            state = cluster_cli.up(args.dir, args.brokers, args.zookeeper, dict(args.overrides))
            print(f"bootstrap: {state.bootstrap}")
        elif args.action == "status":
            print("\n".join(cluster_cli.status(args.dir)))
        elif args.action == "add":
            process = cluster_cli.add(args.dir)
            print(f"broker {process.node_id}: 127.0.0.1:{process.port}")
        elif args.action == "down":
            cluster_cli.down(args.dir)
        else:
            getattr(cluster_cli, args.action)(args.dir, args.id)
    except (cluster_cli.ClusterError, ZooKeeperError, OSError) as exc:
        print(f"gregor cluster {args.action}: {exc}", file=sys.stderr)
        return 1
    return 0


def config_from_args(args: argparse.Namespace):
    static = None
    if args.config is not None:
        try:
            static = parse_properties(args.config.read_text("utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {args.config}: {exc.strerror}") from exc
    overrides = dict(args.overrides)
    if args.data_dir is not None:
        overrides["log.dirs"] = str(args.data_dir)
    if args.listen is not None:
        overrides["listeners"] = f"PLAINTEXT://{args.listen}"
    if args.node_id is not None:
        overrides["node.id"] = str(args.node_id)
    return load_broker_config(static, overrides)


async def run_broker(config) -> None:
    from broker.broker import Broker
    from broker.server import serve

    broker = Broker.open(config)
    try:
        if config.metrics_listen is not None:
            from prometheus_client import start_http_server
            metrics_host, metrics_port = config.metrics_listen
            start_http_server(metrics_port, addr=metrics_host, registry=broker.metrics.registry)
            log.info("metrics on http://%s:%d/metrics", metrics_host, metrics_port)
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                host, port = await nursery.start(serve, broker)
                if config.zookeeper_connect is not None:
                    from broker.cluster import join_cluster
                    await nursery.start(join_cluster, broker)
                shown = f"[{host}]" if ":" in host else host
                log.info("Gregor %s ready: listening on %s:%d (node %d, cluster %s, log dirs %s)",
                         __version__, shown, port, broker.node_id, broker.cluster_id,
                         ",".join(str(path) for path in config.log_dirs))
                async for signum in signals:
                    log.info("received %s, shutting down", signal.Signals(signum).name)
                    if broker.cluster is not None and config.value("controlled.shutdown.enable"):
                        with trio.move_on_after(CONTROLLED_SHUTDOWN_TIMEOUT_S):
                            await broker.cluster.controlled_shutdown()
                    nursery.cancel_scope.cancel()
                    break
    finally:
        broker.close()
        log.info("stopped")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "cluster":
        return run_cluster_command(args)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        print(f"gregor: configuration error: {exc}", file=sys.stderr)
        return 2
    from broker.broker import StartupError
    failures: list[BaseException] = []
    try:
        trio.run(run_broker, config)
    except* (StartupError, OSError) as group:  # data dir refused, port taken, ...
        failures.extend(group.exceptions)
    for failure in failures:
        print(f"gregor: cannot start: {failure}", file=sys.stderr)
    return 1 if failures else 0
