"""The harness itself: each server starts, answers, enforces passwords and
stops cleanly, and both ClickHouse backends carry data the same way (except
where the engines really differ, such as Decimal text)."""

import os
import signal
from decimal import Decimal

import psycopg
import pytest
import yaml
from harness.servers import ChdbServer, ClickHouseError, ClickHouseServer, PostgresServer, free_port

# ---- Postgres -------------------------------------------------------------


def test_pg_db_is_fresh_and_queryable(pg_db):
    assert pg_db.query("SELECT current_database()") == [(pg_db.name,)]
    pg_db.execute("CREATE TABLE harness_probe (id bigint PRIMARY KEY, note text)")
    pg_db.execute("INSERT INTO harness_probe VALUES (%s, %s)", (1, "a'b"))
    assert pg_db.query("SELECT id, note FROM harness_probe") == [(1, "a'b")]


def test_pg_salesd_role_needs_its_password_and_only_reads(pg_db):
    pg_db.execute("CREATE TABLE harness_probe (id bigint)")
    pg_db.execute("INSERT INTO harness_probe VALUES (7)")
    assert "password=" in pg_db.conninfo and pg_db.password in pg_db.conninfo
    assert "password=" not in pg_db.conninfo_nopw
    with psycopg.connect(pg_db.conninfo) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("salesd",)
        # Tables created after the database (by the superuser) are readable too.
        assert conn.execute("SELECT id FROM harness_probe").fetchall() == [(7,)]
        member = conn.execute("SELECT pg_has_role('salesd', 'pg_read_all_stats', 'member')").fetchone()
        assert member == (True,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO harness_probe VALUES (8)")
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(pg_db.conninfo_nopw, connect_timeout=5, password="wrong")


def test_pg_databases_are_isolated(pg_server, pg_db):
    other = pg_db.name + "_x"
    pg_server.create_database(other)
    try:
        with pg_server.connect(other) as conn:
            names = {r[0] for r in conn.execute("SELECT datname FROM pg_database").fetchall()}
        assert {pg_db.name, other} <= names
    finally:
        pg_server.drop_database(other)
    with pg_server.connect("postgres") as conn:
        gone = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (other,)).fetchone()
    assert gone == (0,)


# ---- ClickHouse, both backends ------------------------------------------


def test_ch_version_matches_backend(ch_db):
    version = ch_db.query("SELECT version()").strip()
    prefix = {"clickhouse-18.16": "18.16.", "chdb-26": "26."}[ch_db.backend]
    assert version.startswith(prefix), version
    assert ch_db.rows("SELECT currentDatabase()") == [[ch_db.database]]


def test_ch_ping(ch_server):
    status, _, body = ch_server.http("GET", "/ping")
    assert (status, body) == (200, b"Ok.\n")


def test_ch_insert_tsv_round_trip_and_decimal_text(ch_db):
    ch_db.query(
        "CREATE TABLE probe (d Date, n UInt32, v Decimal(15, 2), s String) ENGINE = MergeTree ORDER BY d"
    )
    data = "2026-01-05\t3\t3.10\ttab\\there\n2026-01-06\t0\t-0.03\t\\\\\n"
    assert ch_db.query("INSERT INTO probe FORMAT TabSeparated", data=data) == ""
    rows = ch_db.rows("SELECT d, n, v, s FROM probe ORDER BY d")
    assert [r[0] for r in rows] == ["2026-01-05", "2026-01-06"]
    assert [r[1] for r in rows] == ["3", "0"]
    assert [Decimal(r[2]) for r in rows] == [Decimal("3.10"), Decimal("-0.03")]
    assert [r[3] for r in rows] == ["tab\there", "\\"]
    # What each engine prints for Decimal(15,2) (see shared notes).
    expected = {"clickhouse-18.16": "3.10", "chdb-26": "3.1"}[ch_db.backend]
    assert rows[0][2] == expected


def test_ch_salesd_user_password_is_checked(ch_db):
    server = ch_db.server
    ok = server.query("SELECT 1", user=ch_db.user, password=ch_db.password)
    assert ok == "1\n"
    status, _, body = server.http(
        "POST", "/", {"query": "SELECT 1", "user": ch_db.user, "password": ch_db.password}
    )
    assert (status, body) == (200, b"1\n")
    for how in ("header", "param"):
        if how == "header":
            status, _, body = server.http(
                "POST", "/", {"query": "SELECT 1"}, headers={"X-ClickHouse-User": ch_db.user, "X-ClickHouse-Key": "wrong"}
            )
        else:
            status, _, body = server.http("POST", "/", {"query": "SELECT 1", "user": ch_db.user, "password": "wrong"})
        assert status in (401, 403), (how, status, body)
        assert b"DB::Exception" in body
        assert ch_db.password.encode() not in body
    with pytest.raises(ClickHouseError) as err:
        server.query("SELECT 1", user=ch_db.user, password="wrong")
    assert err.value.code == {"clickhouse-18.16": 193, "chdb-26": 516}[ch_db.backend]


def test_ch_errors_raise_with_server_text(ch_db):
    with pytest.raises(ClickHouseError) as err:
        ch_db.query("SELECT * FROM no_such_table")
    assert err.value.code == 60
    assert err.value.status == 404
    assert "no_such_table" in err.value.text
    # A late error (after more than 1 MB of output) is still an error ...
    with pytest.raises(ClickHouseError) as err:
        ch_db.query("SELECT number, throwIf(number = 300000) FROM system.numbers LIMIT 400000")
    assert err.value.code == 395
    # ... while a result that merely contains exception text is data.
    assert ch_db.query("SELECT 'Code: 60. DB::Exception: stored text'") == "Code: 60. DB::Exception: stored text\n"


def test_ch_databases_are_isolated(ch_server, ch_db):
    ch_db.query("CREATE TABLE only_here (x UInt8) ENGINE = MergeTree ORDER BY x")
    assert ch_server.query("EXISTS TABLE only_here", database=ch_db.database).strip() == "1"
    assert ch_server.query(f"EXISTS TABLE `{ch_db.database}`.only_here").strip() == "1"
    assert ch_server.query("EXISTS TABLE only_here").strip() == "0"


# ---- the chdb adapter's HTTP layer ----------------------------------------


@pytest.fixture
def chdb_server(_server_pool):
    return _server_pool.get(ChdbServer.backend)


def test_chdb_error_has_code_header(chdb_server):
    status, headers, body = chdb_server.http("POST", "/", {"query": "SELECT * FROM nowhere.t"})
    assert status == 404
    assert headers["X-ClickHouse-Exception-Code"] == "81"
    assert body.startswith(b"Code: 81. DB::Exception:") and body.endswith(b"\n")
    status, headers, body = chdb_server.http("POST", "/", {"query": "SELEC 1"})
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (400, "62")


def test_chdb_wrong_password_is_516_forbidden(chdb_server):
    status, headers, body = chdb_server.http(
        "POST", "/", {"query": "SELECT 1"}, headers={"X-ClickHouse-User": "salesd", "X-ClickHouse-Key": "nope"}
    )
    assert status == 403
    assert headers["X-ClickHouse-Exception-Code"] == "516"
    assert b"AUTHENTICATION_FAILED" in body
    # Basic auth as libcurl sends it, right and wrong.
    import base64

    good = base64.b64encode(f"salesd:{chdb_server.password}".encode()).decode()
    bad = base64.b64encode(b"salesd:nope").decode()
    assert chdb_server.http("POST", "/", {"query": "SELECT 1"}, headers={"Authorization": "Basic " + good})[0] == 200
    assert chdb_server.http("POST", "/", {"query": "SELECT 1"}, headers={"Authorization": "Basic " + bad})[0] == 403


def test_chdb_request_state_does_not_leak(chdb_server):
    # database: per request, not sticky
    name = chdb_server.create_database("harness_state_probe")
    try:
        assert chdb_server.query("SELECT currentDatabase()", database=name) == name + "\n"
        assert chdb_server.query("SELECT currentDatabase()") == "default\n"
    finally:
        chdb_server.drop_database(name)
    # settings: applied for one request, then restored
    before = chdb_server.query("SELECT getSetting('max_block_size')")
    assert chdb_server.query("SELECT getSetting('max_block_size')", settings={"max_block_size": 1234}) == "1234\n"
    assert chdb_server.query("SELECT getSetting('max_block_size')") == before
    with pytest.raises(ClickHouseError) as err:
        chdb_server.query("SELECT 1", settings={"no_such_setting_xyz": 1})
    assert err.value.code == 115
    # query in the URL plus data in the body; default_format
    status, _, body = chdb_server.http("POST", "/", {"query": "SELECT 1 AS x", "default_format": "JSONEachRow"})
    assert (status, body) == (200, b'{"x":1}\n')
    # a GET with no query is the server's greeting
    assert chdb_server.http("GET", "/")[2] == b"Ok.\n"


# ---- start/stop hygiene ---------------------------------------------------


@pytest.mark.parametrize("cls", [PostgresServer, ClickHouseServer, ChdbServer], ids=lambda c: c.__name__)
def test_server_stop_kills_process_and_removes_tmpdir(cls):
    server = cls()
    server.start()
    pid, tmpdir = server.proc.pid, server.tmpdir
    assert server.start_seconds is not None
    assert tmpdir.is_dir()
    server.stop()
    assert not tmpdir.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_free_port_is_bindable():
    import socket

    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


# ---- the salesd fixture's config writer -----------------------------------


def test_write_config_keeps_passwords_out_of_yaml(salesd, pg_db, ch18_db):
    path = salesd.write_config(
        pg_db,
        ch18_db,
        {"postgres.tombstones_table": "public.salesd_tombstones"},
        http={"listen": "127.0.0.1:1"},
        **{"clickhouse.retries": 3, "log_level": None},
    )
    text = path.read_text()
    assert pg_db.password not in text and ch18_db.password not in text
    cfg = yaml.safe_load(text)
    assert cfg["timezone"] == "UTC"
    assert "log_level" not in cfg
    assert cfg["http"]["listen"] == "127.0.0.1:1"
    assert cfg["postgres"]["tombstones_table"] == "public.salesd_tombstones"
    assert cfg["postgres"]["conninfo"] == pg_db.conninfo_nopw
    assert cfg["clickhouse"] == {
        "url": ch18_db.url,
        "database": ch18_db.database,
        "user": ch18_db.user,
        "password_file": cfg["clickhouse"]["password_file"],
        "timeout": "5s",
        "retries": 3,
    }
    pg_pw = cfg["postgres"]["password_file"]
    assert open(pg_pw).read() == pg_db.password
    assert os.stat(pg_pw).st_mode & 0o777 == 0o600
    assert open(cfg["clickhouse"]["password_file"]).read() == ch18_db.password


def test_salesd_start_and_stop_a_process(salesd, tmp_path):
    # Any long-running program proves the plumbing; salesd's own behaviour
    # is for the other test files.
    salesd.bin = "/bin/sh"
    proc = salesd.start("-c", "echo started >&2; exec sleep 60", config=None)
    proc.wait_for("started")
    assert proc.alive()
    assert proc.stop() == -signal.SIGTERM
    done = salesd.run("-c", "echo out; echo err >&2; exit 3", config=None)
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")


# ---- outages: halt, restart, freeze on private servers --------------------


@pytest.mark.parametrize("backend", ["clickhouse-18.16", "chdb-26"])
def test_private_clickhouse_restart_keeps_port_and_data(private_servers, backend):
    db = private_servers.clickhouse(backend)
    db.query("CREATE TABLE kept (x UInt8) ENGINE = MergeTree ORDER BY x")
    db.query("INSERT INTO kept FORMAT TabSeparated", data="7\n")
    url = db.server.url
    db.server.halt()
    with pytest.raises(OSError):
        db.server.http("GET", "/ping", timeout=2)
    db.server.restart()
    assert db.server.url == url
    assert db.rows("SELECT x FROM kept") == [["7"]]
    db.server.freeze()
    try:
        with pytest.raises(OSError):  # a timeout: the socket accepts, nothing answers
            db.server.http("GET", "/ping", timeout=1)
    finally:
        db.server.thaw()
    assert db.server.http("GET", "/ping")[2] == b"Ok.\n"


def test_private_postgres_restart_keeps_port_and_data(private_servers):
    db = private_servers.postgres()
    db.execute("CREATE TABLE kept (x int)")
    db.execute("INSERT INTO kept VALUES (7)")
    db.close()
    port = db.server.port
    db.server.halt()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(db.conninfo, connect_timeout=2)
    db.server.restart()
    assert db.server.port == port
    with psycopg.connect(db.conninfo) as conn:
        assert conn.execute("SELECT x FROM kept").fetchall() == [(7,)]
