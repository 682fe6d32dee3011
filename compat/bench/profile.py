"""py-spy profiles of Gregor, one per workload, and their summary for docs/performance.md.

With `--profile`, one more Gregor session runs after the measured rounds (it is not counted
in the tables). `StepProfiler.record` wraps each of its workload steps: py-spy attaches to
the broker's PID just before the step and is stopped by SIGINT right after it, leaving a
collapsed-stack file (`--format raw`), one line per distinct stack:

    _run_module_as_main (<frozen runpy>:173);...;Broker.handle (broker/broker.py:151) 3

frames outermost first, each py-spy's `function (file:first line)` (with `--function`),
then the number of samples. `summarize` turns that text into a `ProfileSummary`;
`render_section` into the markdown section."""
from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from compat.bench.report import markdown_table
from compat.bench.workloads import Processes, WorkloadFailed

RATE_PER_S = 200
TOP_FUNCTIONS = 10
GREGOR_PACKAGES = ("broker/", "storage/", "coordinator/", "wire/")
READY_TIMEOUT_S = 15.0  # py-spy attaching and printing that it samples
STOP_TIMEOUT_S = 30.0  # py-spy writing its file after SIGINT
# py-spy prints this to stderr once it has attached and its sampling loop runs.
SAMPLING_LINE = "Sampling process"
# The self-time name of a sample whose stack is empty: py-spy writes " 1" for a thread
# that runs no Python code yet (seen for a trio worker thread sampled while starting).
NO_PYTHON_FRAME = "(no Python frame)"


class ProfileFailed(WorkloadFailed):
    """py-spy could not record a workload; str() is the reason (one line)."""


@dataclass(frozen=True)
class FunctionShare:
    function: str  # py-spy's frame text: "function (file:first line)"
    samples: int
    percent: float  # of all samples of the profile


@dataclass(frozen=True)
class ProfileSummary:
    samples: int
    seconds: float  # wall clock from py-spy sampling to SIGINT
    self_time: list[FunctionShare]  # by innermost frame, most samples first
    gregor_inclusive: list[FunctionShare]  # Gregor's functions on the stack, most first


# -- the summary ------------------------------------------------------------------------

def parse_collapsed(text: str) -> list[tuple[list[str], int]]:
    """(frames outermost first, samples) per line of py-spy's raw output; an empty stack
    gives no frames. Raises ValueError on a line that does not end in " <samples>"."""
    stacks = []
    for line in text.splitlines():
        if not line.strip():
            continue
        stack, separator, count = line.rpartition(" ")
        if not separator or not count.isdigit():
            raise ValueError(f"not a collapsed-stack line: {line[:200]!r}")
        stacks.append((stack.split(";") if stack else [], int(count)))
    return stacks


def frame_file(frame: str) -> str | None:
    """The file of a frame "function (file:line)", or None if it names none."""
    if not frame.endswith(")") or " (" not in frame:
        return None
    location = frame[frame.rindex(" (") + 2 : -1]
    return location.rpartition(":")[0] or location


def is_gregor(frame: str) -> bool:
    """True for a frame in Gregor's own packages (py-spy shortens paths to the package)."""
    file = frame_file(frame)
    return file is not None and file.startswith(GREGOR_PACKAGES)


def summarize(text: str, seconds: float, top: int = TOP_FUNCTIONS) -> ProfileSummary:
    """Totals, the `top` functions by self time (the innermost frame of each sample) and
    the `top` functions of Gregor's code by inclusive time (samples whose stack holds
    them, counted once per sample even when recursive). Ties are ordered by name."""
    self_samples: Counter[str] = Counter()
    gregor_samples: Counter[str] = Counter()
    total = 0
    for frames, count in parse_collapsed(text):
        total += count
        self_samples[frames[-1] if frames else NO_PYTHON_FRAME] += count
        for frame in set(frames):
            if is_gregor(frame):
                gregor_samples[frame] += count
    return ProfileSummary(samples=total, seconds=seconds,
                          self_time=_top(self_samples, total, top),
                          gregor_inclusive=_top(gregor_samples, total, top))


def _top(samples: Counter[str], total: int, top: int) -> list[FunctionShare]:
    ranked = sorted(samples.items(), key=lambda item: (-item[1], item[0]))[:top]
    return [FunctionShare(function, count, 100.0 * count / total)
            for function, count in ranked]


# -- recording --------------------------------------------------------------------------

def py_spy_path() -> Path:
    """The py-spy next to this Python (a venv's bin/), else the one on PATH. Raises
    ProfileFailed if there is none."""
    beside = Path(sys.executable).with_name("py-spy")
    if beside.exists():
        return beside
    found = shutil.which("py-spy")
    if found is None:
        raise ProfileFailed("py-spy not found (pip install py-spy)")
    return Path(found)


class StepProfiler:
    """Records every step of one session with py-spy into `directory`; `summaries` maps
    each recorded workload to its `ProfileSummary`."""

    def __init__(self, directory: Path, processes: Processes) -> None:
        self.directory = directory
        self.processes = processes
        self.py_spy = py_spy_path()
        self.summaries: dict[str, ProfileSummary] = {}

    @contextlib.contextmanager
    def record(self, workload: str, pid: int):
        """py-spy samples `pid` while the body runs. Raises ProfileFailed if py-spy does
        not start sampling or writes no profile."""
        self.directory.mkdir(parents=True, exist_ok=True)
        output = self.directory / f"{workload}.txt"
        log_path = self.directory / f"{workload}.log"
        # Default blocking mode: py-spy pauses the broker for each sample, so a stack is
        # never read half-changed (--nonblocking could); this session is not timed.
        # No --idle: samples of threads py-spy sees waiting are dropped. No --subprocesses:
        # the broker is one process.
        command = [str(self.py_spy), "record", "--pid", str(pid), "--rate", str(RATE_PER_S),
                   "--format", "raw", "--function", "--output", str(output)]
        with open(log_path, "wb") as log:
            process = self.processes.start(command, stdin=subprocess.DEVNULL, stdout=log,
                                           stderr=log)
        try:
            started_s = _wait_for_sampling(process, log_path)
            yield
            seconds = time.monotonic() - started_s
            process.send_signal(signal.SIGINT)  # py-spy writes the file on Ctrl-C
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired as exc:
                raise ProfileFailed(f"py-spy still running {STOP_TIMEOUT_S:.0f} s after "
                                    "SIGINT") from exc
        finally:
            self.processes.stop(process)
        if not output.exists():
            raise ProfileFailed(f"py-spy wrote no profile: {_last_line(log_path)}")
        self.summaries[workload] = summarize(output.read_text(errors="replace"), seconds)


def _wait_for_sampling(process: subprocess.Popen, log_path: Path) -> float:
    """The monotonic time at which py-spy said it samples (polled every 20 ms)."""
    deadline_s = time.monotonic() + READY_TIMEOUT_S
    while SAMPLING_LINE not in log_path.read_text(errors="replace"):
        if process.poll() is not None:
            raise ProfileFailed(f"py-spy exited with {process.returncode}: "
                                f"{_last_line(log_path)}")
        if time.monotonic() > deadline_s:
            raise ProfileFailed(f"py-spy not sampling after {READY_TIMEOUT_S:.0f} s")
        time.sleep(0.02)
    return time.monotonic()


def _last_line(log_path: Path) -> str:
    lines = log_path.read_text(errors="replace").strip().splitlines()
    return lines[-1] if lines else "no output"


# -- docs/performance.md ----------------------------------------------------------------

PROFILE_HEADER = ["#", "self time (innermost frame)", "% of samples",
                  "Gregor's code, inclusive", "% of samples"]


def profile_rows(summary: ProfileSummary) -> list[list[str]]:
    """Rank, self-time function and share, Gregor function and inclusive share, side by
    side; a column pair is blank below its last function."""
    rows = []
    for rank in range(max(len(summary.self_time), len(summary.gregor_inclusive))):
        row = [str(rank + 1)]
        for shares in (summary.self_time, summary.gregor_inclusive):
            if rank < len(shares):
                row += [f"`{shares[rank].function}`", f"{shares[rank].percent:.1f}%"]
            else:
                row += ["", ""]
        rows.append(row)
    return rows


def render_section(summaries: dict[str, ProfileSummary], failures: list[str]) -> str:
    """The "## Profiles (py-spy, Gregor only)" section: how it was recorded, then one
    table per workload in the order recorded, then the profile session's failures."""
    parts = [f"""## Profiles (py-spy, Gregor only)

After the measured rounds, one more Gregor session ran that is not counted in the tables
above. For each workload, `py-spy record --pid <broker pid> --rate {RATE_PER_S} --format raw
--function` attached to the broker just before the workload and was stopped (SIGINT) right
after it; py-spy pauses the broker for each sample (its default blocking mode). Samples of
idle threads are left out, py-spy's default; its idle detection is a heuristic, so some
waiting still shows, e.g. trio waiting for sockets in `EpollIOManager.get_events` and an
idle worker thread in `WorkerThread._work`. Self time counts each sample for its innermost
frame; inclusive counts a sample for every function of Gregor's code (broker/, storage/,
coordinator/, wire/) on its stack, once per sample. Percentages are of the workload's
samples; functions are py-spy's `function (file:first line)`. The load generators are not
profiled.
"""]
    for workload, summary in summaries.items():
        table = (markdown_table(PROFILE_HEADER, profile_rows(summary)) if summary.samples
                 else "")
        parts.append(f"### {workload}\n\n{summary.samples:,} samples in "
                     f"{summary.seconds:.1f} s.\n\n{table}")
    if failures:
        parts.append("Failures in the profile session:\n\n"
                     + "\n".join(f"- {failure}" for failure in failures) + "\n")
    return "\n".join(parts)
