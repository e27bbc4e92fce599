"""How salesd reads ClickHouse's errors (docs/compatibility.md).

ClickHouse can answer HTTP 200 and put the exception at the end of the
body when the error comes after streaming began (notes/clickhouse.md):
18.16 as a last line, 25.x after an `__exception__` marker (25.11+ in a
tagged block), and current servers also name the code in the
X-ClickHouse-Exception-Code header.  salesd asks for wait_end_of_query=1 and
still checks every answer: a relay in front of the real server rewrites or
makes up answers, and the run must fail without writing anything.  Busy
answers (429, 408) are retried; a client-side misconfiguration (https to a
plain HTTP port) fails at once and is not "server unavailable"."""

import time
from urllib.parse import parse_qs, urlsplit

import pytest

from harness.relay import FORWARD, Answer, Relay

EXCEPTION = (
    "Code: 395, e.displayText() = DB::Exception: Value passed to 'throwIf' function is non zero,"
    " e.what() = DB::Exception\n"
)


class CorruptingRelay(Relay):
    """Appends EXCEPTION to the 200 answers of SELECTs that contain needle."""

    def __init__(self, upstream_url, needle):
        self.corrupted = 0
        self.seen_params = []

        def corrupt(data):
            self.corrupted += 1
            return data + EXCEPTION.encode()

        def decide(path, body):
            if body.startswith(b"SELECT") and needle.encode() in body:
                self.seen_params.append(parse_qs(urlsplit(path).query))
                return corrupt
            return FORWARD

        super().__init__(upstream_url, decide)


def test_exception_after_a_200_fails_the_run(pg_db, ch_db, salesd):
    pg_db.execute(
        "INSERT INTO orders VALUES (1, 1, 'completed', '2026-01-10 12:00+00', DEFAULT);"
        "INSERT INTO order_items VALUES (1, 1, 1, 2, 10.00, 1.00, DEFAULT)"
    )
    cfg = salesd.write_config(pg_db, ch_db)
    assert salesd.run("init-schema", config=cfg).returncode == 0
    relay = CorruptingRelay(ch_db.url, "FROM daily_sales_stats FINAL")
    try:
        cfg = salesd.write_config(pg_db, ch_db, {"clickhouse.url": relay.url, "clickhouse.retries": 1})
        r = salesd.run("once", config=cfg)
    finally:
        relay.close()
    assert r.returncode == 1, r.stderr
    assert "HTTP 200: Code: 395" in r.stderr
    assert relay.corrupted == 2  # retried once, as a 5xx would be
    # reads ask the server to buffer, so real late errors become a 500
    assert all(p.get("wait_end_of_query") == ["1"] for p in relay.seen_params)
    assert ch_db.rows("SELECT count() FROM daily_sales_stats FORMAT TabSeparated") == [["0"]]
    assert ch_db.rows("SELECT count() FROM salesd_state FORMAT TabSeparated") == [["0"]]
    assert ch_db.rows("SELECT status FROM salesd_runs FORMAT TabSeparated") == [["failed"]]


READ_STORED = "FROM daily_sales_stats FINAL"
INSERT_DAYS = "INSERT INTO daily_sales_stats"
TAG = "qwertyuiopasdfgh"  # 25.11+ sends a random 16-letter tag per answer
EXC_25 = (
    "Code: 395. DB::Exception: Value passed to 'throwIf' function is non-zero: while executing FUNCTION"
    " throwIf. (FUNCTION_THROW_IF_VALUE_IS_NON_ZERO) (version 25.8.1.1)\n"
)


class FaultRelay(Relay):
    """Answers the first `times` requests whose statement contains needle
    with `fault` (an Answer, or a function rewriting the server's 200
    answer); forwards everything else."""

    def __init__(self, upstream_url, needle, fault, times=1):
        self.hits = 0

        def decide(path, body):
            # an INSERT's statement is in the URL, its rows in the body
            statement = parse_qs(urlsplit(path).query).get("query", [None])[0]
            statement = statement.encode() if statement is not None else body
            if needle.encode() in statement and self.hits < times:
                self.hits += 1
                return fault
            return FORWARD

        super().__init__(upstream_url, decide)


def _one_day_shop(pg_db, ch_db, salesd):
    pg_db.execute(
        "INSERT INTO orders VALUES (1, 1, 'completed', '2026-01-10 12:00+00', DEFAULT);"
        "INSERT INTO order_items VALUES (1, 1, 1, 2, 10.00, 1.00, DEFAULT)"
    )
    cfg = salesd.write_config(pg_db, ch_db)
    assert salesd.run("init-schema", config=cfg).returncode == 0


def _run_through(relay, pg_db, ch_db, salesd, retries):
    try:
        cfg = salesd.write_config(pg_db, ch_db, {"clickhouse.url": relay.url, "clickhouse.retries": retries})
        return salesd.run("once", "--date", "2026-01-10", config=cfg)
    finally:
        relay.close()


def _stored(ch_db):
    return ch_db.rows(
        "SELECT date, total_orders, total_revenue FROM daily_sales_stats ORDER BY version FORMAT TabSeparated"
    )


def test_429_is_retried_and_the_run_succeeds(pg_db, ch18_db, salesd):
    _one_day_shop(pg_db, ch18_db, salesd)
    busy = Answer(
        429,
        b"Code: 202. DB::Exception: Too many simultaneous queries. Maximum: 1. (TOO_MANY_SIMULTANEOUS_QUERIES)\n",
        [("X-ClickHouse-Exception-Code", "202"), ("Retry-After", "1")],
    )
    relay = FaultRelay(ch18_db.url, READ_STORED, busy, times=2)
    started = time.monotonic()
    r = _run_through(relay, pg_db, ch18_db, salesd, retries=3)
    assert r.returncode == 0, r.stderr
    assert relay.hits == 2
    assert time.monotonic() - started >= 2.0  # Retry-After: 1 was honoured, twice
    assert _stored(ch18_db) == [["2026-01-10", "1", "20.00"]]


def test_408_on_the_insert_is_retried_once_and_writes_one_row(pg_db, ch18_db, salesd):
    _one_day_shop(pg_db, ch18_db, salesd)
    timeout = Answer(408, b"Code: 159. DB::Exception: Timeout exceeded: elapsed 5.1 seconds. (TIMEOUT_EXCEEDED)\n")
    relay = FaultRelay(ch18_db.url, INSERT_DAYS, timeout)
    r = _run_through(relay, pg_db, ch18_db, salesd, retries=2)
    assert r.returncode == 0, r.stderr
    assert relay.hits == 1
    assert _stored(ch18_db) == [["2026-01-10", "1", "20.00"]]


def _tagged_block(text):
    # 25.11+: CRLF, marker, tag, the message, its length and the tag, marker
    return f"\r\n__exception__\r\n{TAG}\r\n{text}{len(text)} {TAG}\r\n__exception__\r\n".encode()


STREAMED_FAULTS = {
    # before 25.11: the marker, then the message; the chunked answer is cut
    "25.x": lambda data: Answer(200, data + b"__exception__\r\n" + EXC_25.encode(), cut=True),
    "25.11+": lambda data: Answer(200, data + _tagged_block(EXC_25), [("X-ClickHouse-Exception-Tag", TAG)], cut=True),
    # the same block, but an intermediary delivered the answer whole
    "25.11+ whole": lambda data: Answer(200, data + _tagged_block(EXC_25), [("X-ClickHouse-Exception-Tag", TAG)]),
}


@pytest.mark.parametrize("form", list(STREAMED_FAULTS))
def test_streamed_exception_block_fails_the_run(pg_db, ch18_db, salesd, form):
    _one_day_shop(pg_db, ch18_db, salesd)
    relay = FaultRelay(ch18_db.url, READ_STORED, STREAMED_FAULTS[form], times=10)
    r = _run_through(relay, pg_db, ch18_db, salesd, retries=1)
    assert r.returncode == 1, r.stderr  # a server error, not "server unavailable" (69)
    assert "Code: 395. DB::Exception: Value passed to 'throwIf'" in r.stderr
    assert TAG not in r.stderr and "__exception__" not in r.stderr
    assert relay.hits == 2  # retried once, as a 5xx would be
    assert _stored(ch18_db) == []
    assert ch18_db.rows("SELECT count() FROM salesd_state FORMAT TabSeparated") == [["0"]]


def test_exception_code_header_on_a_200_fails_the_run(pg_db, ch18_db, salesd):
    """A server sending progress headers has started its answer before the
    query fails: the status is 200, the X-ClickHouse-Exception-Code header
    still names the failure."""
    _one_day_shop(pg_db, ch18_db, salesd)
    fault = lambda data: Answer(200, data, [("X-ClickHouse-Exception-Code", "241")])  # noqa: E731
    relay = FaultRelay(ch18_db.url, READ_STORED, fault, times=10)
    r = _run_through(relay, pg_db, ch18_db, salesd, retries=1)
    assert r.returncode == 1, r.stderr
    assert "exception code 241" in r.stderr
    assert relay.hits == 2
    assert _stored(ch18_db) == []


def test_https_to_a_plain_http_port_is_a_configuration_error(pg_db, ch18_db, salesd):
    relay = FaultRelay(ch18_db.url, "never", FORWARD)
    try:
        url = relay.url.replace("http://", "https://")
        cfg = salesd.write_config(pg_db, ch18_db, {"clickhouse.url": url, "clickhouse.retries": 5})
        started = time.monotonic()
        r = salesd.run("init-schema", config=cfg)
        took = time.monotonic() - started
    finally:
        relay.close()
    assert r.returncode == 1, r.stderr  # not 69: waiting will not fix it
    assert "TLS" in r.stderr and "clickhouse.url" in r.stderr
    assert "unavailable" not in r.stderr
    assert took < 3.0  # not retried: five backoffs would take longer
