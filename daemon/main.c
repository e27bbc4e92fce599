/* salesd's command line (SPEC §5): parse argv, load the configuration, and
 * either run the daemon (daemon/manager.c) or do one job and exit with a
 * sysexits code. */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "backlog.h"
#include "buf.h"
#include "config.h"
#include "day.h"
#include "detached.h"
#include "health.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "run.h"
#include "schema.h"
#include "verify.h"

#define DEFAULT_CONFIG      "/etc/salesd/salesd.yaml"
#define MAX_BACKFILL_DAYS   36600
#define VERIFY_DEFAULT_DAYS 31
#define EXIT_WAIT_USEC      (3 * USEC_PER_SEC)

static void print_help(FILE *f) {
        fputs("usage: salesd [-c FILE] [COMMAND] [OPTIONS]\n"
              "\n"
              "Keeps a ClickHouse table of daily sales metrics in step with a Postgres shop database.\n"
              "\n"
              "commands:\n"
              "  run                           run the daemon (default)\n"
              "  once [--date YYYY-MM-DD]...   one run now (or just those days), then exit\n"
              "  backfill --from DAY --to DAY  recompute a range of days (inclusive)\n"
              "  init-schema                   create/verify the ClickHouse objects\n"
              "  check-config                  validate and print the effective configuration\n"
              "  status [--json]               ask the running daemon (GET /healthz)\n"
              "  verify [--from DAY --to DAY] [--repair] [--json]\n"
              "                                compare stored days with the source (default: the last 31 days);\n"
              "                                --repair writes the differing days\n"
              "\n"
              "options:\n"
              "  -c, --config FILE   configuration file (default " DEFAULT_CONFIG ")\n"
              "  -h, --help          this help\n"
              "  -V, --version       print the version\n"
              "\n"
              "exit codes: 0 ok, 64 usage, 69 a server unavailable, 75 skipped (another instance holds the lock),\n"
              "78 configuration error, 1 other failure (verify: some days differ).\n"
              "See salesd(8) and docs/ for more.\n",
              f);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...) {
        va_list ap;
        fprintf(stderr, "salesd: ");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\nTry 'salesd --help'.\n");
        return EX_USAGE;
}

/* A day named on the command line: a real date that ClickHouse's Date
 * column can store (a day outside would be written clamped onto another
 * day).  0, or the usage exit code. */
static int parse_day_arg(const char *cmd, const char *opt, const char *s, Day *ret) {
        if (day_parse(s, ret) < 0)
                return usage_error("%s: invalid %s '%s' (expected YYYY-MM-DD, a real date)", cmd, opt, s);
        if (!day_storable(*ret))
                return usage_error(
                        "%s: %s '%s' is outside the days ClickHouse's Date column stores (" DAY_STORABLE_RANGE ")", cmd,
                        opt, s);
        return 0;
}

static int load_config(const char *path, Config **ret) {
        char err[8192] = "";
        int r = config_load(path, ret, err, sizeof(err));
        if (r < 0) {
                /* every problem on its own line, each already "file:line:col: ..." */
                char *save = NULL;
                for (char *line = strtok_r(err, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
                        log_error("%s", line);
                log_error("configuration '%s' is invalid; fix the errors above (check with 'salesd -c %s "
                          "check-config')",
                          path, path);
                return EX_CONFIG;
        }
        log_set_level((*ret)->log_level);
        /* The schedule and "today" are evaluated in the configured zone. */
        setenv("TZ", (*ret)->timezone, 1);
        tzset();
        return 0;
}

static int exit_code_for(int r, bool unavailable) {
        if (r >= 0)
                return EX_OK;
        if (run_error_config(r))
                return EX_CONFIG;
        return unavailable ? EX_UNAVAILABLE : 1;
}

/* SPEC §5: a once/backfill skipped because another instance holds the lock
 * is 75 (EX_TEMPFAIL): nothing was computed, a retry later may work. */
static int exit_code_for_run(int r, const RunRecord *rec, const RunOutcome *out) {
        if (r >= 0 && rec->status == RUN_STATUS_SKIPPED)
                return EX_TEMPFAIL;
        return exit_code_for(r, out->server_unavailable);
}

static void log_run(const RunRecord *rec, const RunOutcome *out, bool explicit_days) {
        char summary[2048];
        log_msg(run_summary(rec, out, explicit_days, summary, sizeof(summary)), "%s", summary);
        if (out->guard_blind)
                log_warning("the postgres role cannot see other sessions' transactions (grant it pg_read_all_stats); "
                            "relying on overlap alone for late commits");
        if (out->primary_ignored)
                log_warning("%s", RUN_PRIMARY_IGNORED_WARNING);
        if (!out->run_row_written)
                log_warning("run %s: its salesd_runs row could not be written to clickhouse", rec->run_id);
}

/* Schema must exist before a run writes; a missing table gets a clear hint. */
static int verify_schema(const Config *c, bool create, bool *ret_unavailable) {
        char err[2048] = "";
        int r = schema_check(&c->clickhouse, create, NULL, err, sizeof(err));
        *ret_unavailable = run_error_unavailable(r);
        if (r < 0)
                log_error("%s schema check failed: %s", create ? "init-schema:" : "clickhouse", err);
        return r;
}

static int do_run(const Config *c, const char *trigger, const Day *days, size_t n_days) {
        _cleanup_(run_backlog_freep) RunBacklog *backlog = NULL;
        RunControl ctl;
        RunRecord rec;
        RunOutcome out;
        bool unavailable = false;

        if (run_backlog_new(&backlog) < 0)
                return 1;
        int r = verify_schema(c, false, &unavailable);
        if (r < 0)
                return exit_code_for(r, unavailable);
        run_control_init(&ctl);
        RunOptions o = { .trigger = trigger, .days = days, .n_days = n_days, .instance = c->instance };
        r = run_execute(c, &o, &ctl, backlog, &rec, &out);
        log_run(&rec, &out, days != NULL);
        run_control_done(&ctl);
        return exit_code_for_run(r, &rec, &out);
}

static int cmd_once(const Config *c, int argc, char **argv) {
        static const struct option opts[] = { { "date", required_argument, NULL, 'd' }, { NULL, 0, NULL, 0 } };
        Day *days = calloc((size_t)argc + 1, sizeof(Day));
        size_t n = 0;
        int opt;

        if (!days)
                return 1;
        optind = 1;
        while ((opt = getopt_long(argc, argv, "d:", opts, NULL)) != -1) {
                if (opt != 'd') {
                        free(days);
                        return usage_error("once: unknown option");
                }
                int code = parse_day_arg("once", "--date", optarg, &days[n]);
                if (code != 0) {
                        free(days);
                        return code;
                }
                n++;
        }
        if (optind < argc) {
                free(days);
                return usage_error("once: unexpected argument '%s'", argv[optind]);
        }
        int r = do_run(c, "cli", n ? days : NULL, n);
        free(days);
        return r;
}

static int cmd_backfill(const Config *c, int argc, char **argv) {
        static const struct option opts[] = { { "from", required_argument, NULL, 'f' },
                                              { "to", required_argument, NULL, 't' },
                                              { NULL, 0, NULL, 0 } };
        const char *from_s = NULL, *to_s = NULL;
        Day from, to;
        int opt;

        optind = 1;
        while ((opt = getopt_long(argc, argv, "f:t:", opts, NULL)) != -1) {
                if (opt == 'f')
                        from_s = optarg;
                else if (opt == 't')
                        to_s = optarg;
                else
                        return usage_error("backfill: unknown option");
        }
        if (optind < argc)
                return usage_error("backfill: unexpected argument '%s'", argv[optind]);
        if (!from_s || !to_s)
                return usage_error("backfill: both --from and --to are required");
        int code = parse_day_arg("backfill", "--from", from_s, &from);
        if (code == 0)
                code = parse_day_arg("backfill", "--to", to_s, &to);
        if (code != 0)
                return code;
        if (from > to)
                return usage_error("backfill: --from '%s' is after --to", from_s);
        if (to - from >= MAX_BACKFILL_DAYS)
                return usage_error("backfill: range from '%s' is longer than 100 years", from_s);
        size_t n = (size_t)(to - from) + 1;
        Day *days = calloc(n, sizeof(Day));
        if (!days)
                return 1;
        for (size_t i = 0; i < n; i++)
                days[i] = from + (Day)i;
        int r = do_run(c, "cli", days, n);
        free(days);
        return r;
}

/* ---------- verify (SPEC §10) ---------- */

typedef struct VerifyArgs {
        Day from, to;
        bool repair, json;
} VerifyArgs;

/* 0, or the usage exit code. */
static int parse_verify_args(int argc, char **argv, VerifyArgs *ret) {
        static const struct option opts[] = { { "from", required_argument, NULL, 'f' },
                                              { "to", required_argument, NULL, 't' },
                                              { "repair", no_argument, NULL, 'r' },
                                              { "json", no_argument, NULL, 'j' },
                                              { NULL, 0, NULL, 0 } };
        const char *from_s = NULL, *to_s = NULL;
        VerifyArgs a = { 0 };
        int opt;

        optind = 1;
        while ((opt = getopt_long(argc, argv, "f:t:rj", opts, NULL)) != -1) {
                if (opt == 'f')
                        from_s = optarg;
                else if (opt == 't')
                        to_s = optarg;
                else if (opt == 'r')
                        a.repair = true;
                else if (opt == 'j')
                        a.json = true;
                else
                        return usage_error("verify: unknown option");
        }
        if (optind < argc)
                return usage_error("verify: unexpected argument '%s'", argv[optind]);
        if (!from_s != !to_s)
                return usage_error("verify: give both --from and --to, or neither (the last %d days)",
                                   VERIFY_DEFAULT_DAYS);
        a.to = day_today();
        a.from = a.to - (VERIFY_DEFAULT_DAYS - 1);
        int code = from_s ? parse_day_arg("verify", "--from", from_s, &a.from) : 0;
        if (code == 0 && to_s)
                code = parse_day_arg("verify", "--to", to_s, &a.to);
        if (code != 0)
                return code;
        if (a.from > a.to)
                return usage_error("verify: --from '%s' is after --to", from_s);
        if (a.to - a.from >= MAX_BACKFILL_DAYS)
                return usage_error("verify: range from '%s' is longer than 100 years", from_s);
        *ret = a;
        return 0;
}

static size_t count_missing(const VerifyResult *res) {
        size_t n = 0;
        for (size_t i = 0; i < res->n_diffs; i++)
                n += res->diffs[i].missing;
        return n;
}

static void print_verify_text(const VerifyResult *res) {
        char day[DAY_STRLEN], a[MONEY_STRLEN], b[MONEY_STRLEN];
        for (size_t i = 0; i < res->n_diffs; i++) {
                const VerifyDiff *d = &res->diffs[i];
                day_format(d->day, day);
                if (d->missing) {
                        printf("%s: missing in clickhouse (recomputed: total_orders %s, total_revenue %s)\n", day,
                               verify_column_value(&d->computed, 0, a, sizeof(a)),
                               verify_column_value(&d->computed, 2, b, sizeof(b)));
                        continue;
                }
                for (size_t c = 0; c < VERIFY_N_COLUMNS; c++)
                        if (d->columns & (1u << c))
                                printf("%s %s: stored %s, recomputed %s\n", day, verify_column_name(c),
                                       verify_column_value(&d->stored, c, a, sizeof(a)),
                                       verify_column_value(&d->computed, c, b, sizeof(b)));
        }
        if (res->days_newer)
                printf("verify: %zu days not compared: their stored rows were written after this check's snapshot "
                       "(a run in progress); verify again\n",
                       res->days_newer);
        if (res->unverifiable)
                printf("verify: not compared, the source cannot give exact metrics: %s\n", res->unverifiable);
        size_t missing = count_missing(res);
        printf("verify: %zu days checked, %zu differ", res->days_checked, res->n_diffs);
        if (missing)
                printf(" (%zu missing in clickhouse)", missing);
        printf("\n");
}

static json_t *day_columns_json(const VerifyDiff *d) {
        json_t *cols = json_array();
        char a[MONEY_STRLEN], b[MONEY_STRLEN];
        for (size_t c = 0; cols && c < VERIFY_N_COLUMNS; c++)
                if (d->missing || (d->columns & (1u << c)))
                        json_array_append_new(
                                cols,
                                json_pack("{s:s, s:o, s:s}", "column", verify_column_name(c), "stored",
                                          d->missing ? json_null()
                                                     : json_string(verify_column_value(&d->stored, c, a, sizeof(a))),
                                          "recomputed", verify_column_value(&d->computed, c, b, sizeof(b))));
        return cols;
}

/* Decimals are strings: JSON numbers would go through a double. */
static json_t *verify_json(const VerifyArgs *a, const VerifyResult *res) {
        char from[DAY_STRLEN], to[DAY_STRLEN], day[DAY_STRLEN];
        json_t *diffs = json_array();
        for (size_t i = 0; diffs && i < res->n_diffs; i++) {
                const VerifyDiff *d = &res->diffs[i];
                json_array_append_new(diffs,
                                      json_pack("{s:s, s:b, s:o, s:o}", "day", day_format(d->day, day), "missing",
                                                (int)d->missing, "stored_version",
                                                d->missing ? json_null() : json_integer((json_int_t)d->stored_version),
                                                "columns", day_columns_json(d)));
        }
        return json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:o, s:o}", "from", day_format(a->from, from), "to",
                         day_format(a->to, to), "days_checked", (json_int_t)res->days_checked, "days_differ",
                         (json_int_t)res->n_diffs, "days_missing", (json_int_t)count_missing(res), "days_not_compared",
                         (json_int_t)res->days_newer, "differences", diffs ? diffs : json_array(), "unverifiable",
                         res->unverifiable ? json_string(res->unverifiable) : json_null());
}

/* --repair: a run with the differing days as its explicit days, so it
 * takes the lock (skipped: exit 75), recomputes them in a fresh snapshot,
 * writes those still differing with new versions through the same code as
 * every run, records a salesd_runs row and never moves the watermark. */
static int repair_days(const Config *c, const VerifyResult *res, json_t *doc) {
        _cleanup_(run_backlog_freep) RunBacklog *backlog = NULL;
        _cleanup_free_ Day *days = calloc(res->n_diffs + 1, sizeof(Day));
        _cleanup_free_ Day *written = calloc(res->n_diffs + 1, sizeof(Day));
        RunControl ctl;
        RunRecord rec;
        RunOutcome out;

        if (!days || !written || run_backlog_new(&backlog) < 0)
                return 1;
        for (size_t i = 0; i < res->n_diffs; i++)
                days[i] = res->diffs[i].day;
        run_control_init(&ctl);
        RunOptions o = { .trigger = "cli",
                         .days = days,
                         .n_days = res->n_diffs,
                         .ret_written_days = written,
                         .instance = c->instance };
        int r = run_execute(c, &o, &ctl, backlog, &rec, &out);
        log_run(&rec, &out, true);
        run_control_done(&ctl);
        int code = exit_code_for_run(r, &rec, &out);
        unsigned n = rec.status == RUN_STATUS_SUCCESS ? rec.days_written : 0;
        json_t *list = json_array();
        Buf text = { 0 };
        for (unsigned i = 0; i < n; i++) {
                char day[DAY_STRLEN];
                json_array_append_new(list, json_string(day_format(written[i], day)));
                buf_printf(&text, "%s%s", i ? ", " : "", day);
        }
        if (doc)
                json_object_set_new(doc, "repair",
                                    json_pack("{s:s, s:s, s:s, s:o}", "run_id", rec.run_id, "status",
                                              run_status_to_string(rec.status), "error", rec.error, "written", list));
        else {
                json_decref(list);
                if (rec.status == RUN_STATUS_SUCCESS)
                        printf("repair: wrote %u of %zu days%s%s (run %s)\n", n, res->n_diffs, n ? ": " : "",
                               text.data ? text.data : "", rec.run_id);
                else
                        printf("repair: nothing written: %s\n", rec.error);
        }
        buf_free(&text);
        return code;
}

static int cmd_verify(const Config *c, int argc, char **argv) {
        VerifyArgs a = { 0 };
        VerifyResult res = { 0 };
        char err[2048] = "";
        int code = parse_verify_args(argc, argv, &a);
        if (code != 0)
                return code;
        size_t n = (size_t)(a.to - a.from) + 1;
        _cleanup_free_ Day *days = calloc(n, sizeof(Day));
        if (!days)
                return 1;
        for (size_t i = 0; i < n; i++)
                days[i] = a.from + (Day)i;
        int r = verify_days(c, days, n, NULL, &res, err, sizeof(err));
        if (r < 0) {
                log_error("verify: %s", *err ? err : strerror(-r));
                return exit_code_for(r, run_error_unavailable(r));
        }
        json_t *doc = a.json ? verify_json(&a, &res) : NULL;
        if (!a.json)
                print_verify_text(&res);
        code = res.n_diffs || res.unverifiable ? 1 : EX_OK;
        if (a.repair && res.n_diffs)
                code = repair_days(c, &res, doc);
        if (doc) {
                char *s = json_dumps(doc, JSON_COMPACT);
                if (s)
                        printf("%s\n", s);
                free(s);
                json_decref(doc);
        }
        verify_result_done(&res);
        return code;
}

static int cmd_init_schema(const Config *c) {
        bool unavailable = false;
        int r = verify_schema(c, true, &unavailable);
        if (r < 0)
                return exit_code_for(r, unavailable);
        log_info("init-schema: clickhouse database '%s' has every salesd object with the expected columns",
                 c->clickhouse.database);
        printf("schema OK: database '%s'\n", c->clickhouse.database);
        return EX_OK;
}

static size_t on_status_body(char *ptr, size_t size, size_t nmemb, void *userdata) {
        return buf_append(userdata, ptr, size * nmemb) < 0 ? 0 : size * nmemb;
}

static const char *json_str(json_t *o, const char *key) {
        const char *s = json_string_value(json_object_get(o, key));
        return s ? s : "-";
}

static int cmd_status(const Config *c, int argc, char **argv) {
        bool as_json = false;
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--json") == 0)
                        as_json = true;
                else
                        return usage_error("status: unexpected argument '%s'", argv[i]);
        }
        if (!*c->http.listen) {
                log_error("status: the HTTP endpoint is disabled (http.listen is empty in '%s'); enable it to ask "
                          "the daemon",
                          c->path);
                return EX_CONFIG;
        }
        const char *listen = c->http.listen;
        Buf url = { 0 }, body = { 0 };
        /* a wildcard listen address is reached through loopback */
        if (strncmp(listen, "0.0.0.0:", 8) == 0)
                buf_printf(&url, "http://127.0.0.1:%s/healthz", listen + 8);
        else if (strncmp(listen, "[::]:", 5) == 0)
                buf_printf(&url, "http://[::1]:%s/healthz", listen + 5);
        else
                buf_printf(&url, "http://%s/healthz", listen);
        CURL *curl = curl_easy_init();
        if (!curl || !url.data) {
                buf_free(&url);
                return 1;
        }
        curl_easy_setopt(curl, CURLOPT_URL, url.data);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_status_body);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        CURLcode cc = curl_easy_perform(curl);
        long status = 0;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(curl);
        if (cc != CURLE_OK) {
                log_error("status: cannot reach the daemon at %s: %s (is salesd running? check 'systemctl status "
                          "salesd')",
                          url.data, curl_easy_strerror(cc));
                buf_free(&url);
                buf_free(&body);
                return EX_UNAVAILABLE;
        }
        buf_free(&url);
        json_error_t jerr;
        json_t *doc = json_loadb(body.data ? body.data : "", body.len, 0, &jerr);
        if (!doc) {
                log_error("status: the daemon answered HTTP %ld with a body that is not JSON: %s", status, jerr.text);
                buf_free(&body);
                return 1;
        }
        if (as_json)
                printf("%s\n", body.data);
        else {
                json_t *last = json_object_get(doc, "last_run");
                printf("status:        %s\n", json_str(doc, "status"));
                printf("instance:      %s\n", json_str(doc, "instance"));
                printf("version:       %s\n", json_str(doc, "version"));
                if (json_is_object(last))
                        printf("last run:      %s (trigger %s) at %s, %" JSON_INTEGER_FORMAT " days written%s%s\n",
                               json_str(last, "status"), json_str(last, "trigger"), json_str(last, "finished_at"),
                               json_integer_value(json_object_get(last, "days_written")),
                               *json_str(last, "error") && strcmp(json_str(last, "error"), "-") ? ": " : "",
                               strcmp(json_str(last, "error"), "-") ? json_str(last, "error") : "");
                else
                        printf("last run:      none yet\n");
                printf("last success:  %s\n", json_str(doc, "last_success"));
                printf("next run:      %s\n", json_str(doc, "next_run"));
                printf("watermark:     %s\n", json_str(doc, "watermark"));
                printf("complete as of: %s\n", json_str(doc, "complete_as_of"));
                json_t *ch = json_object_get(doc, "clickhouse");
                if (json_is_object(ch))
                        printf("clickhouse:    %s\n", json_str(ch, "endpoint"));
        }
        json_decref(doc);
        buf_free(&body);
        return status == 200 ? EX_OK : 1;
}

/* A Postgres cancel request or a LISTEN connection attempt may still be on
 * its own thread (a server that does not answer).  Give it a moment, then
 * leave without running the libraries' exit handlers under it: nothing is
 * left to flush but stdio. */
static int leave(int code) {
        if (!detached_wait(EXIT_WAIT_USEC)) {
                log_warning("a request to postgres is still in progress on a helper thread after %" PRIu64
                            " s; exiting without waiting for it",
                            EXIT_WAIT_USEC / USEC_PER_SEC);
                fflush(stdout);
                fflush(stderr);
                _exit(code);
        }
        curl_global_cleanup();
        return code;
}

int main(int argc, char **argv) {
        static const struct option opts[] = { { "config", required_argument, NULL, 'c' },
                                              { "help", no_argument, NULL, 'h' },
                                              { "version", no_argument, NULL, 'V' },
                                              { NULL, 0, NULL, 0 } };
        const char *config_path = DEFAULT_CONFIG;
        Config *config = NULL;
        int opt, r;

        log_set_timestamps(isatty(STDERR_FILENO));
        /* stop at the first non-option: the command has options of its own */
        while ((opt = getopt_long(argc, argv, "+c:hV", opts, NULL)) != -1) {
                switch (opt) {
                case 'c':
                        config_path = optarg;
                        break;
                case 'h':
                        print_help(stdout);
                        return EX_OK;
                case 'V':
                        printf("salesd %s\n", SALESD_VERSION);
                        return EX_OK;
                default:
                        fprintf(stderr, "Try 'salesd --help'.\n");
                        return EX_USAGE;
                }
        }
        const char *command = optind < argc ? argv[optind] : "run";
        int cargc = optind < argc ? argc - optind : 1;
        char **cargv = optind < argc ? argv + optind : (char *[]){ "run", NULL };

        static const char *const commands[] = { "run",          "once",   "backfill", "init-schema",
                                                "check-config", "status", "verify" };
        bool known = false;
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                known = known || strcmp(command, commands[i]) == 0;
        if (!known)
                return usage_error("unknown command '%s'", command);
        if ((strcmp(command, "run") == 0 || strcmp(command, "init-schema") == 0 ||
             strcmp(command, "check-config") == 0) &&
            cargc > 1)
                return usage_error("unexpected argument '%s'", cargv[1]);

        r = load_config(config_path, &config);
        if (r != 0)
                return r;
        if (strcmp(command, "check-config") == 0) {
                config_print(config, stdout);
                fprintf(stderr, "configuration '%s' OK\n", config_path);
                config_free(config);
                return EX_OK;
        }
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                log_error("cannot initialise libcurl");
                config_free(config);
                return 1;
        }
        if (strcmp(command, "run") == 0)
                return leave(manager_main(config_path, config)); /* takes config; cleans up */
        if (strcmp(command, "once") == 0)
                r = cmd_once(config, cargc, cargv);
        else if (strcmp(command, "backfill") == 0)
                r = cmd_backfill(config, cargc, cargv);
        else if (strcmp(command, "init-schema") == 0)
                r = cmd_init_schema(config);
        else if (strcmp(command, "verify") == 0)
                r = cmd_verify(config, cargc, cargv);
        else
                r = cmd_status(config, cargc, cargv);
        config_free(config);
        return leave(r);
}
