"""End to end with real components: Debian's Prometheus (2.42) scrapes the
daemon every second with the shipped alert rules
(contrib/prometheus/salesd-alerts.yml) and sends to Debian's Alertmanager
(0.25), which posts to a webhook receiver owned by the test.  Stopping
ClickHouse makes SalesdRunsFailing arrive at the webhook; restarting it
resolves the alert.  On the same Prometheus, every PromQL expression of the
Grafana dashboard returns a series (test_dashboards.check_promql).

The rules are used as shipped except for SalesdRunsFailing's `for:`, set to
0s so the test takes seconds (its expression is what is under test here; `for`
is covered by `promtool test rules`).  The other rules keep their `for`, so
the absent() of SalesdNoActiveInstance before the first scrape stays pending.  Prometheus and Alertmanager run on free loopback
ports with temporary storage; the test stops exactly the processes it
started."""

import json
import signal
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import yaml

from harness.servers import REPO, _preexec, clean_env, free_port, stop_process, wait_until
from test_daemon import daemon_config, seed
from test_dashboards import check_promql

RULES = REPO / "contrib" / "prometheus" / "salesd-alerts.yml"


class Webhook:
    """An Alertmanager webhook receiver: keeps every alert it is sent."""

    def __init__(self):
        self.alerts = []
        received = self.alerts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                received.extend(body["alerts"])
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def seen(self, name, status):
        return [a for a in self.alerts if a["labels"].get("alertname") == name and a["status"] == status]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _spawn(cmd, log):
    with open(log, "wb") as out:
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=clean_env(),
            start_new_session=True,
            preexec_fn=_preexec(),
        )


class Alerting:
    """Alertmanager (started at once) posting to a Webhook, and Prometheus
    (started by scrape()) with the shipped rules."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.hook = Webhook()
        self.procs = []
        self.am_port, self.prom_port = free_port(), free_port()
        self.prom = f"http://127.0.0.1:{self.prom_port}"
        receiver = {"url": f"http://127.0.0.1:{self.hook.port}/", "send_resolved": True}
        route = {"receiver": "test", "group_by": ["alertname", "instance"], "group_wait": "0s", "group_interval": "1s",
                 "repeat_interval": "1h"}
        am_cfg = tmp_path / "alertmanager.yml"
        am_cfg.write_text(yaml.safe_dump({"route": route, "receivers": [{"name": "test", "webhook_configs": [receiver]}]}))
        self._spawn("alertmanager", [
            "prometheus-alertmanager",
            f"--config.file={am_cfg}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{self.am_port}",
            "--cluster.listen-address=",
        ])

    def _spawn(self, name, cmd):
        with open(self.tmp_path / f"{name}.log", "wb") as out:
            self.procs.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                               env=clean_env(), start_new_session=True, preexec_fn=_preexec()))

    def log(self, name):
        return (self.tmp_path / f"{name}.log").read_text(errors="replace")[-3000:]

    def scrape(self, salesd_port):
        rules = yaml.safe_load(RULES.read_text())
        for group in rules["groups"]:
            for rule in group["rules"]:
                if rule["alert"] == "SalesdRunsFailing":
                    rule["for"] = "0s"
        rules_file = self.tmp_path / "salesd-alerts.yml"
        rules_file.write_text(yaml.safe_dump(rules))
        cfg = self.tmp_path / "prometheus.yml"
        cfg.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules_file)],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{self.am_port}"]}]}]},
            "scrape_configs": [{"job_name": "salesd", "static_configs": [{"targets": [f"127.0.0.1:{salesd_port}"]}]}],
        }))
        self._spawn("prometheus", [
            "prometheus",
            f"--config.file={cfg}",
            f"--storage.tsdb.path={self.tmp_path / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{self.prom_port}",
            "--rules.alert.resend-delay=1s",
        ])

    def query(self, expr):
        try:
            r = requests.get(f"{self.prom}/api/v1/query", params={"query": expr}, timeout=2)
        except requests.ConnectionError:
            return []
        return r.json()["data"]["result"] if r.status_code == 200 else []

    def close(self):
        for p in reversed(self.procs):
            stop_process(p, signal.SIGTERM, timeout=10)
        self.hook.close()


@pytest.fixture
def alerting(tmp_path):
    a = Alerting(tmp_path)
    yield a
    a.close()


def test_runs_failing_alert_fires_and_resolves_end_to_end(salesd, pg_db, private_servers, alerting):
    ch = private_servers.clickhouse()
    seed(pg_db)
    port = free_port()
    proc = salesd.start("run", config=daemon_config(salesd, pg_db, ch, port=port, run_on_start=True))
    alerting.scrape(port)
    proc.wait_for(r"run .* \(trigger start\): success")

    # the pipeline is live: Prometheus scrapes the daemon and has all rules
    wait_until(lambda: alerting.query('up{job="salesd"} == 1'), timeout=20,
               what=f"a successful scrape\n{alerting.log('prometheus')}")
    rules = requests.get(f"{alerting.prom}/api/v1/rules", timeout=5).json()["data"]["groups"][0]["rules"]
    assert {r["name"] for r in rules} >= {"SalesdRunsFailing", "SalesdDataBehind", "SalesdAuditMismatch",
                                          "SalesdRunRowsDropped", "SalesdNoActiveInstance", "SalesdTargetDown"}
    assert all(r["health"] == "ok" for r in rules), rules
    # a healthy daemon: nothing fires (the rules have been evaluated on its samples)
    wait_until(lambda: alerting.query('salesd_health_state{state="ok"} == 1'), timeout=10, what="state ok in Prometheus")
    assert alerting.query('ALERTS{alertstate="firing"}') == []

    ch.server.halt()
    for i in range(3):
        proc.send_signal(signal.SIGUSR1)
        wait_until(lambda: proc.stderr.count("(trigger signal): failed") >= i + 1, what=f"failed run {i + 1}")
    firing = wait_until(lambda: alerting.hook.seen("SalesdRunsFailing", "firing"), timeout=20,
                        what=f"SalesdRunsFailing at the webhook\n{alerting.log('alertmanager')}")
    assert firing[0]["labels"]["instance"] == f"127.0.0.1:{port}"
    assert firing[0]["labels"]["severity"] == "critical"
    assert {a["labels"]["alertname"] for a in alerting.hook.alerts} == {"SalesdRunsFailing"}

    ch.server.restart()
    proc.send_signal(signal.SIGUSR1)
    wait_until(lambda: proc.stderr.count("(trigger signal): success") >= 1, timeout=60, what="a run after recovery")
    wait_until(lambda: alerting.hook.seen("SalesdRunsFailing", "resolved"), timeout=20,
               what=f"SalesdRunsFailing resolved at the webhook\n{alerting.log('alertmanager')}")

    # the same Prometheus serves the Grafana dashboard's queries
    # (contrib/grafana/salesd.json): each returns a series
    check_promql(alerting.prom, "salesd", f"127.0.0.1:{port}")
    assert proc.stop() == 0, proc.stderr[-3000:]
