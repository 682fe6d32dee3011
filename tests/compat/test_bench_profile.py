"""The py-spy profile summary of compat.bench --profile: no broker, no py-spy."""
import pytest

from compat.bench import profile, report
from compat.bench.profile import FunctionShare, ProfileSummary

LOOP = "<module> (broker/__main__.py:1);main (broker/cli.py:99);run (trio/_core/_run.py:2424)"
HANDLE = LOOP + ";serve_connection (broker/server.py:19);Broker.handle (broker/broker.py:151)"
# py-spy record --format raw --function: one line per distinct stack, outermost frame
# first, then its samples; 100 samples in all.
COLLAPSED = f"""\
{LOOP};EpollIOManager.get_events (trio/_core/_io_epoll.py:238) 40
{HANDLE};PartitionLog.append (storage/log.py:200);verify_crc (storage/segment.py:30) 20
{HANDLE};encode_response_parts (wire/protocol.py:191);Construct.build (construct/core.py:300) 10
{HANDLE};replay (coordinator/groups.py:10);replay (coordinator/groups.py:10) 5
Thread._bootstrap (threading.py:988);WorkerThread._work (trio/_core/_thread_cache.py:209);\
PartitionLog.flush (storage/log.py:90) 15

{LOOP};EpollIOManager.get_events (trio/_core/_io_epoll.py:238) 10
"""


def test_summary_counts_self_time_and_gregor_inclusive_time():
    summary = profile.summarize(COLLAPSED, seconds=2.5)
    assert summary == ProfileSummary(
        samples=100, seconds=2.5,
        self_time=[
            FunctionShare("EpollIOManager.get_events (trio/_core/_io_epoll.py:238)", 50, 50.0),
            FunctionShare("verify_crc (storage/segment.py:30)", 20, 20.0),
            FunctionShare("PartitionLog.flush (storage/log.py:90)", 15, 15.0),
            FunctionShare("Construct.build (construct/core.py:300)", 10, 10.0),
            FunctionShare("replay (coordinator/groups.py:10)", 5, 5.0),
        ],
        gregor_inclusive=[  # ties by name; recursive replay counted once per sample
            FunctionShare("<module> (broker/__main__.py:1)", 85, 85.0),
            FunctionShare("main (broker/cli.py:99)", 85, 85.0),
            FunctionShare("Broker.handle (broker/broker.py:151)", 35, 35.0),
            FunctionShare("serve_connection (broker/server.py:19)", 35, 35.0),
            FunctionShare("PartitionLog.append (storage/log.py:200)", 20, 20.0),
            FunctionShare("verify_crc (storage/segment.py:30)", 20, 20.0),
            FunctionShare("PartitionLog.flush (storage/log.py:90)", 15, 15.0),
            FunctionShare("encode_response_parts (wire/protocol.py:191)", 10, 10.0),
            FunctionShare("replay (coordinator/groups.py:10)", 5, 5.0),
        ])


def test_summary_keeps_the_top_functions_only():
    summary = profile.summarize(COLLAPSED, seconds=2.5, top=2)
    assert [share.function for share in summary.self_time] \
        == ["EpollIOManager.get_events (trio/_core/_io_epoll.py:238)",
            "verify_crc (storage/segment.py:30)"]
    assert [share.samples for share in summary.gregor_inclusive] == [85, 85]


def test_empty_profile_has_no_functions():
    assert profile.summarize("", seconds=1.0) == ProfileSummary(0, 1.0, [], [])


def test_a_sample_without_python_frames_counts_as_self_time_only():
    # What py-spy wrote for a trio worker thread sampled while it started.
    summary = profile.summarize(" 1\nmain (broker/cli.py:99) 3\n", seconds=0.5)
    assert summary == ProfileSummary(
        samples=4, seconds=0.5,
        self_time=[FunctionShare("main (broker/cli.py:99)", 3, 75.0),
                   FunctionShare("(no Python frame)", 1, 25.0)],
        gregor_inclusive=[FunctionShare("main (broker/cli.py:99)", 3, 75.0)])


def test_a_line_without_a_sample_count_is_an_error():
    for line in ("main (broker/cli.py:99)", "17", "main (broker/cli.py:99) x"):
        with pytest.raises(ValueError, match="not a collapsed-stack line"):
            profile.parse_collapsed(line + "\n")


def test_gregor_code_is_broker_storage_coordinator_and_wire():
    assert [profile.is_gregor(frame) for frame in (
        "Broker.handle (broker/broker.py:151)", "PartitionLog.read (storage/log.py:1)",
        "heartbeat (coordinator/groups.py:3)", "decode_request (wire/protocol.py:9)",
        "run (trio/_core/_run.py:2424)", "_run_code (<frozen runpy>:65)", "no location",
    )] == [True, True, True, True, False, False, False]
    assert profile.frame_file("_run_code (<frozen runpy>:65)") == "<frozen runpy>"


def test_section_has_one_table_per_workload():
    section = profile.render_section(
        {"produce_small_librdkafka": profile.summarize(COLLAPSED, seconds=2.5)},
        failures=["connections: py-spy exited with 1: Permission denied"])
    assert section.startswith("## Profiles (py-spy, Gregor only)\n\n")
    assert "--rate 200 --format raw\n--function" in section
    assert "### produce_small_librdkafka\n\n100 samples in 2.5 s.\n\n" \
           "| # | self time (innermost frame) | % of samples | Gregor's code, inclusive " \
           "| % of samples |\n|---|---|---|---|---|\n" \
           "| 1 | `EpollIOManager.get_events (trio/_core/_io_epoll.py:238)` | 50.0% " \
           "| `<module> (broker/__main__.py:1)` | 85.0% |\n" in section
    assert "| 6 |  |  | `verify_crc (storage/segment.py:30)` | 20.0% |\n" in section
    assert "| 9 |  |  | `replay (coordinator/groups.py:10)` | 5.0% |\n\n" \
           "Failures in the profile session:\n\n" \
           "- connections: py-spy exited with 1: Permission denied\n" in section


def _document(**extra) -> str:
    return report.render_document(
        summary="| t |\n", rounds="| r |\n", machine=[], commands=[], notes=[], failures=[],
        command_line="python -m compat.bench", date="2026-01-01 00:00 UTC", rounds_count=1,
        **extra)


def test_document_puts_the_profiles_after_the_summary_table():
    document = _document(profiles="## Profiles (py-spy, Gregor only)\n\nsection\n")
    assert "\n| t |\n\n## Profiles (py-spy, Gregor only)\n\nsection\n\n## Every round\n" \
        in document


def test_document_without_profiles_has_no_profile_section():
    document = _document()
    assert "\n| t |\n\n## Every round\n" in document
    assert "Profiles" not in document and "py-spy" not in document


def test_a_workload_without_samples_has_no_table():
    section = profile.render_section({"connections": profile.summarize("", seconds=0.4)}, [])
    assert section.endswith("### connections\n\n0 samples in 0.4 s.\n\n")
