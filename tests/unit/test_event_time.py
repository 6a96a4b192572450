"""The ``time`` of a log line: ISO 8601 in UTC with milliseconds, right across seconds (the
second's text is kept from one line to the next)."""

from __future__ import annotations

from datetime import UTC, datetime

from broker.events import iso_time


def _expected(ts: float) -> str:
    millis = round(ts * 1000)
    at = datetime.fromtimestamp(millis // 1000, tz=UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis % 1000:03d}Z"


def test_lines_within_a_second_and_across_seconds_and_days() -> None:
    moments = [
        1796304000.0,
        1796304000.123,
        1796304000.9994,  # still .999
        1796304000.9996,  # rounds up into the next second
        1796304001.5,
        1796303999.25,  # an earlier second again (another thread's clock)
        1796390399.999,  # the last millisecond of a day
        1796390400.0,
        0.0,
    ]
    for ts in moments + list(reversed(moments)):
        assert iso_time(ts) == _expected(ts), ts
    assert iso_time(1796304000.9996) == "2026-12-03T13:20:01.000Z"
