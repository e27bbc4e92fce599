# salesd — one explicit Makefile.  Targets: all test demo bench bench-medium bench-large deps install
# uninstall deb clean format format-check (plus unit, integration, cppcheck, man-check, alerts-check,
# lintian, airflow-venv, deps-demo, fuzz, fuzz-replay, valgrind).
PREFIX ?= /usr/local
DESTDIR ?=
BUILD ?= build
CC ?= cc
PYTHON ?= python3

PKGS := libpq libcurl yaml-0.1 libsystemd libmicrohttpd jansson
WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wpointer-arith -Wcast-qual -Wformat=2 -Werror
CFLAGS ?= -O2 -g
BASE_CFLAGS = -std=gnu11 $(WARN) -D_GNU_SOURCE -DSALESD_VERSION='"$(VERSION)"' -Ilib -I$(BUILD)/gen $(shell pkg-config --cflags $(PKGS))
LIBS = $(shell pkg-config --libs $(PKGS)) -lpthread
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

# The configuration module, one job per file (lib/config_internal.h has the map).
CONFIG_SRCS := lib/config.c lib/config_keys.c lib/config_value.c lib/config_check.c lib/config_conninfo.c \
               lib/config_yaml.c lib/config_print.c lib/secret.c lib/listen.c
LIB_SRCS := lib/log.c lib/buf.c lib/text.c lib/detached.c lib/duration.c $(CONFIG_SRCS) lib/cron.c lib/day.c lib/money.c \
            lib/metrics.c lib/tsv.c lib/pg.c lib/ch.c lib/ch_error.c lib/schema.c lib/watermark.c lib/sink.c lib/apply.c \
            lib/backlog.c lib/run_control.c lib/run.c lib/verify.c lib/health.c lib/lsn.c
DAEMON_SRCS := daemon/main.c daemon/manager.c daemon/job.c daemon/http.c daemon/listener.c daemon/procstat.c
GEN_SRCS := $(BUILD)/gen/schema_sql.c
SQL_CH := sql/clickhouse/001_daily_sales_stats.sql sql/clickhouse/002_salesd_runs.sql \
          sql/clickhouse/003_salesd_heartbeat.sql sql/clickhouse/004_salesd_state.sql \
          sql/clickhouse/005_daily_sales_stats_latest.sql
SQL_PG := $(wildcard sql/postgres/*.sql)
HDRS := $(wildcard lib/*.h daemon/*.h)
MANPAGES := docs/salesd.8 docs/salesd.yaml.5
DEB_ARCH := $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
DEB := $(BUILD)/salesd_$(VERSION)_$(DEB_ARCH).deb

OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRCS) $(DAEMON_SRCS)) $(BUILD)/obj/gen/schema_sql.o
SAN_OBJS := $(patsubst %.c,$(BUILD)/san/%.o,$(LIB_SRCS) $(DAEMON_SRCS)) $(BUILD)/san/gen/schema_sql.o

# Unit tests: each links only the module under test and what it needs.
UNIT_TESTS := duration config cron day money metrics tsv watermark health http listen text ch sink apply backlog verify \
              schema lsn
unit_duration_DEPS := lib/duration.c
unit_config_DEPS := $(CONFIG_SRCS) lib/config_doc.c lib/duration.c lib/log.c lib/cron.c lib/day.c lib/text.c lib/buf.c
unit_cron_DEPS := lib/cron.c lib/day.c
unit_day_DEPS := lib/day.c
unit_money_DEPS := lib/money.c
unit_metrics_DEPS := lib/metrics.c lib/money.c lib/day.c
unit_tsv_DEPS := lib/tsv.c lib/buf.c
unit_watermark_DEPS := lib/watermark.c lib/day.c
unit_health_DEPS := lib/health.c lib/day.c lib/text.c
unit_http_DEPS := daemon/http.c lib/listen.c lib/log.c
unit_listen_DEPS := lib/listen.c
unit_text_DEPS := lib/text.c
unit_ch_DEPS := lib/ch.c lib/ch_error.c lib/buf.c lib/text.c lib/log.c
unit_schema_DEPS := lib/schema.c lib/ch.c lib/ch_error.c lib/buf.c lib/text.c lib/log.c lib/tsv.c $(BUILD)/gen/schema_sql.c
SINK_DEPS := lib/sink.c lib/ch.c lib/ch_error.c lib/metrics.c lib/money.c lib/day.c lib/tsv.c lib/buf.c lib/text.c lib/log.c \
             lib/watermark.c
unit_sink_DEPS := $(SINK_DEPS)
unit_apply_DEPS := lib/apply.c $(SINK_DEPS)
unit_backlog_DEPS := lib/backlog.c $(SINK_DEPS)
unit_verify_DEPS := lib/verify.c lib/run_control.c lib/pg.c lib/lsn.c lib/detached.c $(SINK_DEPS) $(CONFIG_SRCS) lib/duration.c \
                    lib/cron.c
unit_lsn_DEPS := lib/lsn.c
UNIT_BINS := $(patsubst %,$(BUILD)/test/%_test,$(UNIT_TESTS))

VENV := $(BUILD)/venv
AIRFLOW_VENV := $(BUILD)/airflow-venv
# `make demo` installs only DEMO_PACKAGES: the compiler, the libraries, the
# servers it starts and python3-venv.  TEST_PACKAGES is the test toolchain,
# installed by `make test` (deps) only: it adds a container, packaging and
# lint tools, Prometheus + Alertmanager (promtool, the alerting test) and
# ZooKeeper (the ClickHouse cluster tests) the demo has no use for.  Their Debian services are not started by the tests.
DEMO_PACKAGES := build-essential pkg-config libpq-dev libcurl4-openssl-dev libyaml-dev \
                 libsystemd-dev libmicrohttpd-dev libjansson-dev postgresql-15 \
                 clickhouse-server clickhouse-client python3-venv
TEST_PACKAGES := libcmocka-dev cppcheck clang-format debootstrap systemd-container systemd time iproute2 zookeeper \
                 prometheus prometheus-alertmanager \
                 debhelper dpkg-dev fakeroot lintian mandoc valgrind

.PHONY: all test unit integration demo bench bench-large bench-medium deps deps-demo deps-bench install uninstall clean format format-check \
        cppcheck airflow-venv airflow-venv-2.10 airflow-test venv san config-docs config-docs-check deb lintian \
        man-check alerts-check dashboards-check fuzz fuzz-replay valgrind deps-fuzz
.DELETE_ON_ERROR:

all: $(BUILD)/salesd

$(BUILD)/salesd: $(OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(OBJS) $(LIBS)

san: $(BUILD)/salesd-san
$(BUILD)/salesd-san: $(SAN_OBJS)
	$(CC) $(CFLAGS) $(SAN) -o $@ $(SAN_OBJS) $(LIBS)

$(BUILD)/obj/%.o: %.c $(HDRS) | $(BUILD)/gen/schema_sql.h
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<
$(BUILD)/san/%.o: %.c $(HDRS) | $(BUILD)/gen/schema_sql.h
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) $(SAN) -c -o $@ $<
$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<
$(BUILD)/san/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) $(SAN) -c -o $@ $<

# The ClickHouse DDL is compiled into the binary, so init-schema needs no
# files at run time and always matches the code that reads the tables.
$(BUILD)/gen/schema_sql.h: Makefile
	@mkdir -p $(dir $@)
	printf '#pragma once\n#include <stddef.h>\ntypedef struct SchemaFile { const char *name; const char *sql; } SchemaFile;\nextern const SchemaFile schema_files[];\nextern const size_t schema_files_count;\n' > $@
$(BUILD)/gen/schema_sql.c: $(SQL_CH) $(BUILD)/gen/schema_sql.h Makefile
	@mkdir -p $(dir $@)
	{ echo '#include "schema_sql.h"'; echo 'const SchemaFile schema_files[] = {'; \
	  for f in $(SQL_CH); do echo "{ \"$$f\","; \
	    sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $$f; echo '},'; done; \
	  echo '};'; echo 'const size_t schema_files_count = sizeof(schema_files) / sizeof(schema_files[0]);'; } > $@

# ---- unit tests (cmocka, AddressSanitizer + UndefinedBehaviorSanitizer) ----
.SECONDEXPANSION:
$(BUILD)/test/%_test: test/unit/%_test.c $$(unit_$$*_DEPS) $(HDRS) $(wildcard test/unit/*.h) | $(BUILD)/gen/schema_sql.h
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) $(SAN) -o $@ $< $(unit_$*_DEPS) $(LIBS) $(shell pkg-config --libs cmocka)

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; \
	  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  SALESD_TEST_FIXTURES=$(CURDIR)/test/fixtures SALESD_SOURCE_DIR=$(CURDIR) $$t; done

# ---- fuzzing (test/fuzz, docs/design.md "Fuzzing and valgrind") ----
# Each target links into libFuzzer (clang, `make fuzz`: FUZZ_SECONDS each,
# new inputs in build/fuzz/corpus/<target>, crashes in build/fuzz/crashes/)
# and into replay.c (gcc, ASan/UBSan, `make fuzz-replay`, part of `make test`:
# every file of the committed corpus test/fuzz/corpus/<target>, once).
FUZZ_TARGETS := config cron tsv conninfo money_day
fuzz_config_DEPS := $(unit_config_DEPS)
fuzz_cron_DEPS := lib/cron.c lib/day.c
fuzz_tsv_DEPS := $(SINK_DEPS)
fuzz_conninfo_DEPS := $(unit_config_DEPS)
fuzz_money_day_DEPS := lib/money.c lib/metrics.c lib/day.c lib/text.c lib/watermark.c
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
# libFuzzer: only `make fuzz` needs it (deps-fuzz); the replay builds with gcc.
FUZZ_PACKAGES := clang libclang-rt-14-dev
FUZZ_FLAGS := -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
REPLAY_BINS := $(patsubst %,$(BUILD)/fuzz-replay/fuzz_%,$(FUZZ_TARGETS))
FUZZ_BINS := $(patsubst %,$(BUILD)/fuzz/fuzz_%,$(FUZZ_TARGETS))
$(BUILD)/fuzz-replay/fuzz_%: test/fuzz/fuzz_%.c test/fuzz/replay.c test/fuzz/fuzz.h $$(fuzz_$$*_DEPS) $(HDRS) \
                             | $(BUILD)/gen/schema_sql.h
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) $(SAN) -Itest/fuzz -o $@ $< test/fuzz/replay.c $(fuzz_$*_DEPS) $(LIBS)
$(BUILD)/fuzz/fuzz_%: test/fuzz/fuzz_%.c test/fuzz/fuzz.h $$(fuzz_$$*_DEPS) $(HDRS) | $(BUILD)/gen/schema_sql.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(BASE_CFLAGS) $(FUZZ_FLAGS) -Itest/fuzz -o $@ $< $(fuzz_$*_DEPS) $(LIBS)
fuzz-replay: $(REPLAY_BINS)
	@set -e; for t in $(FUZZ_TARGETS); do ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  $(BUILD)/fuzz-replay/fuzz_$$t test/fuzz/corpus/$$t; done
deps-fuzz:
	$(call apt_install,$(FUZZ_PACKAGES))
fuzz: deps-fuzz
	$(MAKE) $(FUZZ_BINS)
	@set -e; for t in $(FUZZ_TARGETS); do mkdir -p $(BUILD)/fuzz/corpus/$$t $(BUILD)/fuzz/crashes/$$t; \
	  echo "== fuzz_$$t, $(FUZZ_SECONDS) s (log: $(BUILD)/fuzz/$$t.log)"; UBSAN_OPTIONS=print_stacktrace=1 \
	  $(BUILD)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 \
	  -artifact_prefix=$(BUILD)/fuzz/crashes/$$t/ $(BUILD)/fuzz/corpus/$$t test/fuzz/corpus/$$t \
	  </dev/null >$(BUILD)/fuzz/$$t.log 2>&1 || { tail -60 $(BUILD)/fuzz/$$t.log; exit 1; }; \
	  grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)|INFO: seed corpus' $(BUILD)/fuzz/$$t.log; done

# ---- generated configuration docs (from the key table in lib/config_keys.c) ----
CONFIG_DOC_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,daemon/salesd-config-doc.c lib/config_doc.c $(CONFIG_SRCS) \
                   lib/duration.c lib/log.c lib/cron.c lib/day.c lib/text.c lib/buf.c)
$(BUILD)/salesd-config-doc: $(CONFIG_DOC_OBJS)
	$(CC) $(CFLAGS) -o $@ $(CONFIG_DOC_OBJS) $(LIBS)
$(BUILD)/gen/configuration.md: $(BUILD)/salesd-config-doc docs/configuration.md
	@mkdir -p $(dir $@)
	$(BUILD)/salesd-config-doc reference docs/configuration.md > $@
$(BUILD)/gen/salesd.yaml: $(BUILD)/salesd-config-doc
	@mkdir -p $(dir $@)
	$(BUILD)/salesd-config-doc example > $@
# salesd.yaml(5) carries the date of salesd(8): the manual's date, not the build's.
MAN_DATE = $(shell sed -n 's/^\.TH SALESD 8 "\([^"]*\)".*/\1/p' docs/salesd.8)
$(BUILD)/gen/salesd.yaml.5: $(BUILD)/salesd-config-doc docs/salesd.8 VERSION
	@mkdir -p $(dir $@)
	$(BUILD)/salesd-config-doc man "$(MAN_DATE)" "$(VERSION)" > $@
config-docs: $(BUILD)/gen/configuration.md $(BUILD)/gen/salesd.yaml $(BUILD)/gen/salesd.yaml.5
	cp $(BUILD)/gen/configuration.md docs/configuration.md
	cp $(BUILD)/gen/salesd.yaml config/salesd.yaml
	cp $(BUILD)/gen/salesd.yaml.5 docs/salesd.yaml.5
config-docs-check: $(BUILD)/gen/configuration.md $(BUILD)/gen/salesd.yaml $(BUILD)/gen/salesd.yaml.5
	@diff -u docs/configuration.md $(BUILD)/gen/configuration.md && diff -u config/salesd.yaml $(BUILD)/gen/salesd.yaml \
	  && diff -u docs/salesd.yaml.5 $(BUILD)/gen/salesd.yaml.5 \
	  || { echo "docs/configuration.md, config/salesd.yaml or docs/salesd.yaml.5 is not what lib/config_keys.c generates: run make config-docs"; exit 1; }

# Both manual pages lint clean (mandoc -Tlint prints nothing, style notes included).
man-check: $(MANPAGES)
	@out=$$(mandoc -Tlint $(MANPAGES) 2>&1); if [ -n "$$out" ]; then echo "$$out"; exit 1; fi; echo "mandoc -Tlint: $(MANPAGES) clean"

# ---- static checks ----
C_FILES = $(wildcard lib/*.c lib/*.h daemon/*.c daemon/*.h test/unit/*.c test/unit/*.h test/fuzz/*.c test/fuzz/*.h)
format:
	clang-format -i $(C_FILES)
format-check:
	clang-format --dry-run -Werror $(C_FILES)
cppcheck: $(BUILD)/gen/schema_sql.h
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --inline-suppr --std=c11 -D__GNUC__ -Ilib -I$(BUILD)/gen \
	  --suppress=missingIncludeSystem lib daemon

# The shipped alert rules are valid and pass their unit tests (firing and not firing).
alerts-check:
	cd contrib/prometheus && promtool check rules salesd-alerts.yml && promtool test rules salesd-alerts.test.yml

# The shipped Grafana dashboard against Grafana's published dashboard schema
# (@grafana/schema's types, checked by the TypeScript compiler; both pinned by
# test/grafana/package-lock.json), with a self-test that broken copies fail.
GRAFANA_CHECK := $(BUILD)/grafana-check
GRAFANA_LOCK_HASH = $(shell cat test/grafana/package.json test/grafana/package-lock.json | sha256sum | cut -c1-16)
# Node.js and npm are the machine's (not in TEST_PACKAGES: Debian's nodejs
# would not bring npm, and Debian's npm conflicts with a NodeSource nodejs).
$(GRAFANA_CHECK)/.stamp-%:
	@command -v node >/dev/null && command -v npm >/dev/null || \
	  { echo "dashboards-check needs Node.js (>= 14.17) and npm on PATH"; exit 1; }
	rm -rf $(GRAFANA_CHECK) && mkdir -p $(GRAFANA_CHECK)
	cp test/grafana/package.json test/grafana/package-lock.json $(GRAFANA_CHECK)/
	cd $(GRAFANA_CHECK) && npm ci --no-audit --no-fund --loglevel=error
	touch $@
dashboards-check: $(GRAFANA_CHECK)/.stamp-$(GRAFANA_LOCK_HASH)
	cd $(GRAFANA_CHECK) && NODE_PATH=$(CURDIR)/$(GRAFANA_CHECK)/node_modules \
	  node $(CURDIR)/test/grafana/check-dashboard.cjs --self-test $(addprefix $(CURDIR)/,$(GRAFANA_DASHBOARDS))

# ---- Python venvs (pinned requirements files) ----
venv: $(VENV)/.stamp
$(VENV)/.stamp: test/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r test/requirements.txt
	touch $@
# The Airflow venvs are keyed by a hash of their pins, not by mtimes, so a CI
# cache of build/airflow-venv* (key: the same hash) is reused as restored.
AIRFLOW_HASH = $(shell cat airflow/requirements.txt airflow/requirements.lock | sha256sum | cut -c1-16)
AIRFLOW210_VENV := $(BUILD)/airflow-venv-2.10
AIRFLOW210_HASH = $(shell cat airflow/requirements-2.10.txt airflow/requirements-2.10.lock | sha256sum | cut -c1-16)
airflow-venv: $(AIRFLOW_VENV)/.stamp-$(AIRFLOW_HASH)
$(AIRFLOW_VENV)/.stamp-%:
	rm -rf $(AIRFLOW_VENV)
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/pip install --quiet --disable-pip-version-check -r airflow/requirements.txt -c airflow/requirements.lock
	touch $@
airflow-venv-2.10: $(AIRFLOW210_VENV)/.stamp-$(AIRFLOW210_HASH)
$(AIRFLOW210_VENV)/.stamp-%:
	rm -rf $(AIRFLOW210_VENV)
	$(PYTHON) -m venv $(AIRFLOW210_VENV)
	$(AIRFLOW210_VENV)/bin/pip install --quiet --disable-pip-version-check -r airflow/requirements-2.10.txt -c airflow/requirements-2.10.lock
	touch $@
# DAG load checks, then `airflow dags test` against the real daemon and
# ClickHouse 18.16: every test on both Airflow lines (3.3.2 and 2.10.5).
airflow-test: $(BUILD)/salesd venv airflow-venv airflow-venv-2.10
	SALESD_BIN=$(CURDIR)/$(BUILD)/salesd $(VENV)/bin/python -m pytest -q -p no:cacheprovider airflow/tests

# ---- the whole suite ----
integration: $(BUILD)/salesd $(BUILD)/salesd-san $(DEB) venv
	SALESD_DEB=$(CURDIR)/$(DEB) SALESD_BIN=$(CURDIR)/$(BUILD)/salesd-san $(VENV)/bin/python -m pytest -q -p no:cacheprovider test/integration

# memcheck over once, backfill, verify, a config error and a daemon run with
# SIGUSR1/SIGHUP/SIGTERM (test/integration/test_valgrind.py, the non-ASan build).
valgrind: $(BUILD)/salesd venv
	SALESD_VALGRIND=1 SALESD_BIN=$(CURDIR)/$(BUILD)/salesd $(VENV)/bin/python -m pytest -q -p no:cacheprovider \
	  test/integration/test_valgrind.py

test: deps
	$(MAKE) -j2 venv airflow-venv airflow-venv-2.10
	$(MAKE) all san $(UNIT_BINS)
	$(MAKE) format-check cppcheck config-docs-check man-check alerts-check dashboards-check
	$(MAKE) deb lintian
	$(MAKE) unit fuzz-replay
	$(MAKE) integration valgrind
	$(MAKE) airflow-test

demo: deps-demo all venv
	$(VENV)/bin/python test/harness/demo.py --salesd $(CURDIR)/$(BUILD)/salesd

# bench: small profile (30 days x 10k orders/day, a few minutes); bench-large:
# 60 days x 100k orders/day (~4 GB in the temp dir, longer); bench-medium: 10 days x 100k
# orders/day (~0.6 GB).  Each writes build/bench-<profile>.txt.
bench: deps-bench all venv
	$(VENV)/bin/python test/harness/bench.py --salesd $(CURDIR)/$(BUILD)/salesd --profile small

bench-large: deps-bench all venv
	$(VENV)/bin/python test/harness/bench.py --salesd $(CURDIR)/$(BUILD)/salesd --profile large

bench-medium: deps-bench all venv
	$(VENV)/bin/python test/harness/bench.py --salesd $(CURDIR)/$(BUILD)/salesd --profile medium

# Prints what it is about to install, then installs it (sudo when not root).
define apt_install
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  echo "installing (apt-get, --no-install-recommends):" $$missing; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "apt packages: all installed"; fi
endef
deps-demo:
	$(call apt_install,$(DEMO_PACKAGES))
deps-bench:
	$(call apt_install,$(DEMO_PACKAGES) time curl)
deps:
	$(call apt_install,$(DEMO_PACKAGES) $(TEST_PACKAGES))

# ---- install (also what debian/rules runs, with PREFIX=/usr) ----
# The unit goes where this system's systemd looks for packaged units when
# PREFIX is /usr, else under PREFIX (/usr/local/lib/systemd/system is on
# systemd's search path too).
PC_UNITDIR = $(shell pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null)
UNITDIR ?= $(if $(filter /usr,$(PREFIX)),$(or $(PC_UNITDIR),/lib/systemd/system),$(PREFIX)/lib/systemd/system)
DATADIR ?= $(PREFIX)/share/salesd
DOCDIR ?= $(PREFIX)/share/doc/salesd
MANDIR ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
AIRFLOW_DAGS := $(wildcard airflow/dags/*.py) airflow/dags/.airflowignore
# Prometheus alert rules and their promtool unit tests.
CONTRIB := $(wildcard contrib/prometheus/*.yml)
# The Grafana dashboard (docs/dashboards.md).
GRAFANA_DASHBOARDS := $(wildcard contrib/grafana/*.json)
DOCS := README.md $(wildcard docs/*.md)

install: $(BUILD)/salesd
	install -D -m 0755 $(BUILD)/salesd $(DESTDIR)$(PREFIX)/bin/salesd
	install -D -m 0644 config/salesd.yaml $(DESTDIR)$(DATADIR)/salesd.yaml.example
	install -d $(DESTDIR)$(DATADIR)/sql/postgres $(DESTDIR)$(DATADIR)/sql/clickhouse $(DESTDIR)$(DATADIR)/airflow
	install -m 0644 $(SQL_PG) $(DESTDIR)$(DATADIR)/sql/postgres/
	install -m 0644 $(SQL_CH) $(DESTDIR)$(DATADIR)/sql/clickhouse/
	install -m 0644 $(AIRFLOW_DAGS) $(DESTDIR)$(DATADIR)/airflow/
	$(if $(CONTRIB),install -d $(DESTDIR)$(DATADIR)/contrib/prometheus && install -m 0644 $(CONTRIB) $(DESTDIR)$(DATADIR)/contrib/prometheus/)
	$(if $(GRAFANA_DASHBOARDS),install -d $(DESTDIR)$(DATADIR)/contrib/grafana && install -m 0644 $(GRAFANA_DASHBOARDS) $(DESTDIR)$(DATADIR)/contrib/grafana/)
	install -d $(DESTDIR)$(UNITDIR)
	sed 's|/usr/local/bin/salesd|$(PREFIX)/bin/salesd|' systemd/salesd.service > $(DESTDIR)$(UNITDIR)/salesd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/salesd.service
	install -D -m 0644 docs/salesd.8 $(DESTDIR)$(MANDIR)/man8/salesd.8
	install -D -m 0644 docs/salesd.yaml.5 $(DESTDIR)$(MANDIR)/man5/salesd.yaml.5
	install -D -m 0644 completion/salesd.bash $(DESTDIR)$(BASHCOMPDIR)/salesd
	install -d $(DESTDIR)$(DOCDIR)
	install -m 0644 $(DOCS) $(DESTDIR)$(DOCDIR)/

# ---- the Debian package ----
# Built from a copy of the tree under $(BUILD)/deb, so dpkg-buildpackage's
# output (it writes next to the source directory) and debian/'s build
# leftovers stay out of the checkout.
DEB_INPUTS := $(LIB_SRCS) $(DAEMON_SRCS) $(HDRS) $(SQL_CH) $(SQL_PG) $(AIRFLOW_DAGS) $(CONTRIB) $(GRAFANA_DASHBOARDS) $(DOCS) $(MANPAGES) \
              systemd/salesd.service config/salesd.yaml completion/salesd.bash Makefile VERSION \
              $(wildcard debian/* debian/source/*)
deb: $(DEB)
$(DEB): $(DEB_INPUTS)
	@v=$$(dpkg-parsechangelog -S Version); [ "$$v" = "$(VERSION)" ] \
	  || { echo "debian/changelog is at $$v but VERSION says $(VERSION): add a changelog entry (dch -v $(VERSION))"; exit 1; }
	rm -rf $(BUILD)/deb
	mkdir -p $(BUILD)/deb/salesd-$(VERSION)
	tar -c --exclude=./.git --exclude=./$(BUILD) --exclude='./build*' --exclude=__pycache__ . \
	  | tar -x -C $(BUILD)/deb/salesd-$(VERSION)
	cd $(BUILD)/deb/salesd-$(VERSION) && dpkg-buildpackage -b -us -uc
	cp $(BUILD)/deb/$(notdir $@) $@
# No errors and no warnings (overrides, if ever needed, go in
# debian/salesd.lintian-overrides with a comment saying why).
lintian: $(DEB)
	lintian --fail-on error,warning --display-info $(BUILD)/deb/salesd_$(VERSION)_$(DEB_ARCH).changes

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/salesd $(DESTDIR)$(UNITDIR)/salesd.service \
	  $(DESTDIR)$(MANDIR)/man8/salesd.8 $(DESTDIR)$(MANDIR)/man5/salesd.yaml.5 $(DESTDIR)$(BASHCOMPDIR)/salesd
	rm -rf $(DESTDIR)$(DATADIR) $(DESTDIR)$(DOCDIR)

clean:
	rm -rf $(BUILD)/obj $(BUILD)/san $(BUILD)/gen $(BUILD)/test $(BUILD)/salesd $(BUILD)/salesd-san $(BUILD)/fuzz $(BUILD)/fuzz-replay
