"""ClickHouse can answer HTTP 200 and put the exception at the end of the
body when the error comes after streaming began (notes/clickhouse.md).
salesd asks for wait_end_of_query=1 and still checks every body: a relay in
front of the real server appends such an exception to the answers of the
read of daily_sales_stats, and the run must fail without writing anything."""

from urllib.parse import parse_qs, urlsplit

from harness.relay import FORWARD, Relay

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
