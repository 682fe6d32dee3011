"""A real standalone ZooKeeper server process, from Debian's `zookeeper` package.

For `gregor cluster up` and the tests: `ZooKeeperServer.start(directory)` writes a
`zoo.cfg` (data in `directory`, client port on 127.0.0.1, admin server off, the `ruok`
and `srvr` four-letter words allowed), runs `java ... QuorumPeerMain zoo.cfg` as one
process in the foreground, records its PID in `directory/zookeeper.pid` and returns once
it answers `ruok` with `imok` and serves requests. It is stopped by that PID only
(SIGTERM, then SIGKILL), from this process (`stop`) or another one (`stop_recorded`).
"""
from __future__ import annotations

import ctypes
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

DEBIAN_PACKAGE = "zookeeper"
MAIN_CLASS = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
PID_FILE = "zookeeper.pid"
CONFIG_FILE = "zoo.cfg"
LOG_FILE = "zookeeper.log"
DEBIAN_ENVIRONMENT = Path("/etc/zookeeper/conf/environment")
DEBIAN_JAR = Path("/usr/share/java/zookeeper.jar")
SLF4J_SIMPLE_JAR = Path("/usr/share/java/slf4j-simple.jar")  # libslf4j-java, a dependency
DEFAULT_START_TIMEOUT_S = 30.0
DEFAULT_STOP_TIMEOUT_S = 10.0
# A small JVM: ZooKeeper's working set for a development cluster is a few MB, and the
# serial collector keeps it to one core on small machines.
JVM_OPTIONS = ("-Xms16m", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
               "-Djava.awt.headless=true")

INSTALL_HINT = f"apt-get install -y {DEBIAN_PACKAGE}"


class ZooKeeperError(RuntimeError):
    """ZooKeeper is not installed, or did not start, or could not be stopped."""


@dataclass(frozen=True)
class ZooKeeperInstall:
    """Where the installed ZooKeeper is: the JVM and the classpath to run its server."""

    java: Path
    classpath: tuple[Path, ...]

    def command(self, config_path: Path) -> list[str]:
        """The server's command line: QuorumPeerMain, in the foreground, logging at
        INFO to stderr (through slf4j-simple, when Debian's libslf4j-java has it)."""
        options = list(JVM_OPTIONS)
        options += ["-Dorg.slf4j.simpleLogger.showDateTime=true",
                    "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd HH:mm:ss,SSS",
                    "-Dzookeeper.admin.enableServer=false",
                    "-Dzookeeper.4lw.commands.whitelist=ruok,srvr"]
        return [str(self.java), *options, "-cp", os.pathsep.join(map(str, self.classpath)),
                MAIN_CLASS, str(config_path)]


def find_zookeeper() -> ZooKeeperInstall:
    """The installed ZooKeeper (Debian package `zookeeper`) and a `java` to run it.
    Raises ZooKeeperError naming the package to install when either is missing."""
    java = _find_java()
    classpath = _debian_classpath()
    if not any(p.name.startswith("zookeeper") and p.suffix == ".jar" for p in classpath):
        jar = DEBIAN_JAR
        if not jar.is_file():
            raise ZooKeeperError(
                f"ZooKeeper is not installed: no {jar} and no CLASSPATH in "
                f"{DEBIAN_ENVIRONMENT}. Install Debian's package: {INSTALL_HINT}")
        classpath = (jar, *_manifest_classpath(jar))
    # Debian's ZooKeeper has slf4j but no binding on its classpath: it would log nothing,
    # and a failed start would leave no reason behind.
    if SLF4J_SIMPLE_JAR.is_file() and not any("slf4j-" in p.name and "api" not in p.name
                                              for p in classpath):
        classpath = (*classpath, SLF4J_SIMPLE_JAR)
    return ZooKeeperInstall(java, classpath)


def _find_java() -> Path:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return Path(java_home) / "bin" / "java"
    found = shutil.which("java")
    if found is None:
        raise ZooKeeperError(
            f"no java found (JAVA_HOME unset, none on PATH); Debian's {DEBIAN_PACKAGE} "
            f"package brings one: {INSTALL_HINT}")
    return Path(found)


def _debian_classpath() -> tuple[Path, ...]:
    """The CLASSPATH Debian's /etc/zookeeper/conf/environment sets (a shell file of
    plain assignments), existing entries only."""
    if not DEBIAN_ENVIRONMENT.is_file():
        return ()
    variables: dict[str, str] = {}
    for line in DEBIAN_ENVIRONMENT.read_text(errors="replace").splitlines():
        match = re.match(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
        if not match:
            continue
        try:
            words = shlex.split(match.group(2), comments=True)
        except ValueError:
            continue
        value = words[0] if words else ""
        variables[match.group(1)] = re.sub(
            r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: variables.get(m.group(1), ""), value)
    entries = [Path(p) for p in variables.get("CLASSPATH", "").split(":") if p]
    return tuple(p for p in entries if p.exists())


def _manifest_classpath(jar: Path) -> tuple[Path, ...]:
    """The Class-Path of a jar's manifest (Debian's jars name their dependencies there)."""
    import zipfile

    try:
        with zipfile.ZipFile(jar) as archive:
            manifest = archive.read("META-INF/MANIFEST.MF").decode("utf-8", "replace")
    except (OSError, KeyError, zipfile.BadZipFile):
        return ()
    manifest = manifest.replace("\r\n", "\n").replace("\n ", "")  # continuation lines
    for line in manifest.splitlines():
        if line.startswith("Class-Path:"):
            entries = (jar.parent / entry for entry in line.split(":", 1)[1].split())
            return tuple(p.resolve() for p in entries if p.exists())
    return ()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def four_letter_word(host: str, port: int, word: str, timeout_s: float = 2.0) -> bytes:
    """Send a ZooKeeper four-letter word (`ruok`, `srvr`) and read the whole answer."""
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.sendall(word.encode("ascii"))
        chunks = []
        while chunk := sock.recv(4096):
            chunks.append(chunk)
        return b"".join(chunks)


def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG (1): the kernel sends SIGKILL when the process that started us ends.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)


class ZooKeeperServer:
    """A standalone ZooKeeper server process on 127.0.0.1, owned by PID."""

    def __init__(self, directory: Path, port: int, pid: int,
                 process: subprocess.Popen | None = None) -> None:
        self.directory = directory
        self.host = "127.0.0.1"
        self.port = port
        self.pid = pid
        self._process = process

    @property
    def connect_string(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.directory / LOG_FILE

    @classmethod
    def start(cls, directory: Path, port: int = 0, *,
              timeout_s: float = DEFAULT_START_TIMEOUT_S, tick_time_ms: int = 2000,
              die_with_parent: bool = False,
              install: ZooKeeperInstall | None = None) -> ZooKeeperServer:
        """Start ZooKeeper with its data in `directory/data`, listening on
        127.0.0.1:`port` (a free port when 0), and wait until it answers `ruok`.
        Sessions may last 2..20 ticks (`tick_time_ms`). With `die_with_parent` the kernel
        kills it when this process ends (tests); without, it outlives us (`gregor
        cluster up`). Raises ZooKeeperError with the end of its log if it does not come
        up within `timeout_s`."""
        install = install or find_zookeeper()
        directory = Path(directory).resolve()
        directory.mkdir(parents=True, exist_ok=True)
        running = recorded_pid(directory)
        if running is not None:
            raise ZooKeeperError(
                f"a ZooKeeper (PID {running}) already runs in {directory}; stop it first")
        attempts = 3 if port == 0 else 1  # a free port may be taken before Java binds it
        for attempt in range(attempts):
            server = cls._spawn(directory, port or free_port(), tick_time_ms,
                                die_with_parent, install)
            try:
                server._wait_until_ready(timeout_s)
                return server
            except ZooKeeperError:
                exited = server._process is not None and server._process.poll() is not None
                server.stop()
                if not (exited and attempt + 1 < attempts and _port_was_taken(server.log_path)):
                    raise
        raise AssertionError("unreachable")

    @classmethod
    def _spawn(cls, directory: Path, port: int, tick_time_ms: int, die_with_parent: bool,
               install: ZooKeeperInstall) -> ZooKeeperServer:
        data_dir = directory / "data"
        data_dir.mkdir(exist_ok=True)
        config_path = directory / CONFIG_FILE
        config_path.write_text(
            "# Written by Gregor (broker/zookeeper/server.py): a standalone server.\n"
            f"tickTime={tick_time_ms}\n"
            f"dataDir={data_dir}\n"
            f"clientPort={port}\n"
            "clientPortAddress=127.0.0.1\n"
            "maxClientCnxns=0\n"
            "admin.enableServer=false\n"
            "4lw.commands.whitelist=ruok,srvr\n"
            # Standalone: nothing to gain from the transaction log's forced fsync in
            # development clusters and tests, and a lot of waiting on slow disks.
            "forceSync=no\n")
        command = install.command(config_path)
        with open(directory / LOG_FILE, "ab") as log_file:
            log_file.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} "
                           f"{shlex.join(command)}\n".encode())
            log_file.flush()
            process = subprocess.Popen(
                command, cwd=directory, stdin=subprocess.DEVNULL, stdout=log_file,
                stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=_die_with_parent if die_with_parent and sys.platform == "linux"
                else None)
        _write_atomically(directory / PID_FILE, f"{process.pid}\n")
        return cls(directory, port, process.pid, process)

    def _wait_until_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            if self._process is not None and self._process.poll() is not None:
                raise ZooKeeperError(
                    f"ZooKeeper exited with status {self._process.returncode} while starting "
                    f"on {self.connect_string}; end of {self.log_path}:\n{self.log_tail()}")
            try:
                # `ruok` says the process runs; `srvr` shows a Mode only once it serves
                # requests ("This ZooKeeper instance is not currently serving requests").
                if (four_letter_word(self.host, self.port, "ruok", timeout_s=1.0) == b"imok"
                        and b"Mode: " in four_letter_word(self.host, self.port, "srvr", 1.0)):
                    return
            except OSError:
                pass
            if time.monotonic() >= deadline:
                raise ZooKeeperError(
                    f"ZooKeeper did not answer ruok on {self.connect_string} within "
                    f"{timeout_s:g} s; end of {self.log_path}:\n{self.log_tail()}")
            time.sleep(0.1)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return "\n".join(text.splitlines()[-lines:])

    def is_running(self) -> bool:
        if self._process is not None:
            return self._process.poll() is None
        return _is_our_zookeeper(self.pid, self.directory)

    def stop(self, timeout_s: float = DEFAULT_STOP_TIMEOUT_S) -> None:
        """SIGTERM by PID; SIGKILL if it has not exited within `timeout_s`."""
        if self._process is not None:
            if self._process.poll() is None:
                self._process.send_signal(signal.SIGTERM)
                try:
                    self._process.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait(timeout_s)
        else:
            _terminate(self.pid, self.directory, timeout_s)
        _remove_pid_file(self.directory, self.pid)

    def __enter__(self) -> ZooKeeperServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"ZooKeeperServer({self.connect_string}, pid={self.pid}, {str(self.directory)!r})"


# -- a server recorded in a directory, seen from another process -------------------------


def recorded_pid(directory: Path) -> int | None:
    """The PID in `directory/zookeeper.pid` if that process is still the ZooKeeper
    started for this directory (not a reused PID), else None."""
    try:
        pid = int((Path(directory) / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _is_our_zookeeper(pid, Path(directory).resolve()) else None


def recorded_connect_string(directory: Path) -> str | None:
    """The connect string ("127.0.0.1:PORT") in `directory/zoo.cfg`, or None."""
    try:
        text = (Path(directory) / CONFIG_FILE).read_text()
    except OSError:
        return None
    match = re.search(r"^clientPort=(\d+)$", text, re.MULTILINE)
    return f"127.0.0.1:{match.group(1)}" if match else None


def stop_recorded(directory: Path, timeout_s: float = DEFAULT_STOP_TIMEOUT_S) -> bool:
    """Stop the ZooKeeper recorded in `directory` (by its PID: SIGTERM, then SIGKILL).
    Returns False when none was running."""
    directory = Path(directory).resolve()
    pid = recorded_pid(directory)
    if pid is None:
        (directory / PID_FILE).unlink(missing_ok=True)
        return False
    _terminate(pid, directory, timeout_s)
    _remove_pid_file(directory, pid)
    return True


def _is_our_zookeeper(pid: int, directory: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    if state == "Z":  # exited, not yet reaped
        return False
    config = str(directory / CONFIG_FILE).encode()
    return MAIN_CLASS.encode() in cmdline and config in cmdline


def _terminate(pid: int, directory: Path, timeout_s: float) -> None:
    if not _signal(pid, signal.SIGTERM):
        return
    if _wait_gone(pid, directory, timeout_s):
        return
    _signal(pid, signal.SIGKILL)
    if not _wait_gone(pid, directory, timeout_s):
        raise ZooKeeperError(f"ZooKeeper PID {pid} survived SIGKILL for {timeout_s:g} s")


def _signal(pid: int, signum: int) -> bool:
    try:
        os.kill(pid, signum)
        return True
    except ProcessLookupError:
        return False


def _wait_gone(pid: int, directory: Path, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while _is_our_zookeeper(pid, directory):
        try:  # our own child: reap it
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _remove_pid_file(directory: Path, pid: int) -> None:
    path = directory / PID_FILE
    try:
        if int(path.read_text().strip()) == pid:
            path.unlink()
    except (OSError, ValueError):
        pass


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def _port_was_taken(log_path: Path) -> bool:
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return False
    tail = text[-20_000:]
    return "Address already in use" in tail or "BindException" in tail
