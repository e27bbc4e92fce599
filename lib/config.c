/* Loading salesd.yaml: defaults from the key table, then the file (the YAML
 * walk in config_yaml.c), then SALESD_* environment overrides, then the
 * checks on final values, the instance name and the secrets.  Also
 * config_free() and the reload policy.  Every step is driven by the key
 * table in config_keys.c; see config_internal.h for the other pieces.
 *
 * Loading collects every problem instead of stopping at the first, because an
 * operator fixing a file wants the whole list at once.  Values are validated
 * where they are read (so a bad value in the file is reported even when the
 * environment overrides it); "must not be empty" is checked on the final
 * value, reported at the place that set it.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_internal.h"
#include "macro.h"
#include "secret.h"

DEFINE_POINTER_CLEANUP_FUNC(Config, config_free)
DEFINE_POINTER_CLEANUP_FUNC(FILE, fclose)

void loader_add(Loader *l, const char *fmt, ...) {
        va_list ap;

        l->errors++;
        if (!l->err || l->errlen == 0 || l->used + 1 >= l->errlen)
                return;
        if (l->used > 0)
                l->err[l->used++] = '\n';
        va_start(ap, fmt);
        int r = vsnprintf(l->err + l->used, l->errlen - l->used, fmt, ap);
        va_end(ap);
        if (r < 0)
                r = 0;
        l->used += (size_t)r;
        if (l->used >= l->errlen)
                l->used = l->errlen - 1;
        l->err[l->used] = '\0';
}

/* At the key's origin: the environment variable, the file position or,
 * when it holds the default, just the file. */
void loader_key_error(Loader *l, size_t ki, const char *msg) {
        const Origin *o = &l->origin[ki];
        if (o->env[0])
                loader_add(l, "environment %s: %s", o->env, msg);
        else if (o->line > 0)
                loader_add(l, "%s:%u:%u: key '%s': %s", l->path, o->line, o->column, config_keys[ki].name, msg);
        else
                loader_add(l, "%s: key '%s': %s", l->path, config_keys[ki].name, msg);
}

static char **secret_field(Config *c, const KeyDef *k) {
        return (char **)((char *)c + k->secret_offset);
}

void config_free(Config *c) {
        if (!c)
                return;
        for (size_t i = 0; i < config_n_keys; i++) {
                config_value_free(c, &config_keys[i]);
                if (config_keys[i].credential)
                        secret_free(*secret_field(c, &config_keys[i]));
        }
        free(c->path);
        free(c);
}

/* A string default its validator refuses on this machine (the check looks
 * at the system, as the time zone's does) is stored as it is; the final
 * checks report it unless the file or the environment replaces it. */
static int set_default_unchecked(Loader *l, size_t ki) {
        char **dst = config_field(l->config, &config_keys[ki]);
        char *s = strdup(config_keys[ki].def);
        if (!s)
                return -ENOMEM;
        free(*dst);
        *dst = s;
        l->origin[ki].bad_default = true;
        return 0;
}

static int load_defaults(Loader *l) {
        char msg[512];
        for (size_t i = 0; i < config_n_keys; i++) {
                int r = config_value_set(l->config, &config_keys[i], config_keys[i].def, msg, sizeof(msg));
                if (r == -EINVAL && config_keys[i].type == KEY_STRING && config_keys[i].check)
                        r = set_default_unchecked(l, i);
                /* Otherwise the defaults are part of the table; a bad one is a bug. */
                if (r < 0) {
                        loader_add(l, "%s: internal error: default of key '%s': %s", l->path, config_keys[i].name, msg);
                        return r == -ENOMEM ? r : -EINVAL;
                }
        }
        return 0;
}

/* Reads at most CONFIG_MAX_BYTES + 1 bytes into buf: one more says the file
 * is too large (a regular file or not: a FIFO has no size to check up front). */
static int read_capped(Loader *l, FILE *f, unsigned char *buf, size_t *ret_len) {
        size_t n = fread(buf, 1, CONFIG_MAX_BYTES + 1, f);
        if (ferror(f)) {
                int e = errno ? errno : EIO;
                loader_add(l, "%s: cannot read configuration file: %s", l->path, strerror(e));
                return -e;
        }
        if (n > CONFIG_MAX_BYTES) {
                loader_add(l,
                           "%s: larger than %d bytes (1 MiB), too large for a salesd configuration (is -c the "
                           "right file?)",
                           l->path, CONFIG_MAX_BYTES);
                return -EFBIG;
        }
        *ret_len = n;
        return 0;
}

static int load_file(Loader *l) {
        _cleanup_(fclosep) FILE *f = fopen(l->path, "re");
        struct stat st;
        if (!f) {
                int e = errno;
                loader_add(l, "%s: cannot open configuration file: %s", l->path, strerror(e));
                return -e;
        }
        if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
                loader_add(l, "%s: is a directory, not a configuration file (give the YAML file's path with -c)",
                           l->path);
                return -EISDIR;
        }
        _cleanup_free_ unsigned char *buf = malloc(CONFIG_MAX_BYTES + 1);
        size_t len = 0;
        if (!buf)
                return -ENOMEM;
        int r = read_capped(l, f, buf, &len);
        if (r < 0)
                return r == -EFBIG ? -EINVAL : r;
        r = config_yaml_load(l, buf, len);
        return r == -ENOMEM ? r : 0;
}

static void apply_environment(Loader *l) {
        for (size_t i = 0; i < config_n_keys; i++) {
                char name[64], msg[512];
                config_key_env_name(&config_keys[i], name, sizeof(name));
                const char *v = getenv(name);
                if (!v)
                        continue;
                l->origin[i].bad_default = false; /* set here: an error is this value's */
                int r = config_value_set(l->config, &config_keys[i], v, msg, sizeof(msg));
                if (r < 0) {
                        loader_add(l, "environment %s: %s", name, r == -ENOMEM ? "out of memory" : msg);
                        continue;
                }
                l->origin[i] = (Origin){ 0 };
                snprintf(l->origin[i].env, sizeof(l->origin[i].env), "%s", name);
        }
}

static int resolve_instance(Loader *l) {
        Config *c = l->config;
        char host[256] = "";
        if (c->instance[0])
                return 0;
        if (gethostname(host, sizeof(host) - 1) < 0 || !host[0]) {
                loader_add(l, "%s: key 'instance': empty and the hostname is unknown (set instance)", l->path);
                return 0;
        }
        char *s = strdup(host);
        if (!s)
                return -ENOMEM;
        free(c->instance);
        c->instance = s;
        return 0;
}

/* The key's file when set; else the systemd credential, when it exists
 * (absent means the credential is simply not configured). */
static void resolve_secret(Loader *l, size_t ki) {
        const KeyDef *k = &config_keys[ki];
        char *const *file = config_field_const(l->config, k);
        char **dst = secret_field(l->config, k);
        char msg[512], q[256];

        if (*file && **file) {
                if (secret_read(*file, config_value_quote(*file, q, sizeof(q)), dst, msg, sizeof(msg)) < 0)
                        loader_key_error(l, ki, msg);
                return;
        }
        const char *dir = getenv("CREDENTIALS_DIRECTORY");
        if (!dir || !*dir)
                return;
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", dir, k->credential);
        if (access(path, F_OK) < 0)
                return;
        if (secret_read(path, config_value_quote(path, q, sizeof(q)), dst, msg, sizeof(msg)) < 0)
                loader_add(l, "%s: key '%s' (credential '%s'): %s", l->path, k->name, k->credential, msg);
}

/* Failover between URLs is safe only between replicas of one table: with
 * several URLs and no cluster, salesd would create unrelated tables on each
 * server and a failover would read another history. */
static void check_clickhouse_replicas(Loader *l) {
        const ClickHouseConfig *c = &l->config->clickhouse;
        size_t n = 0;
        for (char **u = c->url; u && *u; u++)
                n++;
        if (n > 1 && (!c->cluster || !*c->cluster))
                loader_key_error(l, config_key_index("clickhouse.url"),
                                 "a list of urls needs clickhouse.cluster (the replicas' cluster in "
                                 "<remote_servers>): failover between servers that do not replicate the salesd "
                                 "tables would read and write different histories");
}

static void check_final_values(Loader *l) {
        char msg[512];
        for (size_t i = 0; i < config_n_keys; i++) {
                const KeyDef *k = &config_keys[i];
                if (k->required && config_value_empty(l->config, k))
                        loader_key_error(l, i, "must not be empty");
                else if (l->origin[i].bad_default && k->check(k->def, msg, sizeof(msg)) < 0)
                        loader_key_error(l, i, msg);
        }
        check_clickhouse_replicas(l);
}

static int load(Loader *l) {
        int r = load_defaults(l);
        if (r < 0)
                return r;
        r = load_file(l);
        if (r < 0)
                return r; /* the file cannot be opened, or out of memory */
        apply_environment(l);
        check_final_values(l);
        r = resolve_instance(l);
        if (r < 0)
                return r;
        for (size_t i = 0; i < config_n_keys; i++)
                if (config_keys[i].credential)
                        resolve_secret(l, i);
        return l->errors > 0 ? -EINVAL : 0;
}

static Config *config_new(const char *path) {
        Config *c = calloc(1, sizeof(Config));
        if (!c)
                return NULL;
        c->path = strdup(path);
        if (!c->path) {
                free(c);
                return NULL;
        }
        return c;
}

int config_load(const char *path, Config **ret, char *err, size_t errlen) {
        if (err && errlen)
                err[0] = '\0';
        _cleanup_free_ Origin *origin = calloc(config_n_keys, sizeof(Origin));
        _cleanup_(config_freep) Config *c = config_new(path);
        if (!origin || !c)
                return -ENOMEM;

        Loader l = { .path = path, .config = c, .origin = origin, .err = err, .errlen = errlen };
        int r = load(&l);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

bool config_reloadable(const Config *old_config, const Config *new_config, const char **why) {
        if (why)
                *why = NULL;
        for (size_t i = 0; i < config_n_keys; i++) {
                const KeyDef *k = &config_keys[i];
                if (!k->restart_only || config_value_equal(old_config, new_config, k))
                        continue;
                if (why)
                        *why = k->name;
                return false;
        }
        return true;
}

bool config_clickhouse_changed(const Config *old_config, const Config *new_config) {
        const char *a = old_config->clickhouse.password, *b = new_config->clickhouse.password;
        if ((a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0))
                return true;
        for (size_t i = 0; i < config_n_keys; i++) {
                const KeyDef *k = &config_keys[i];
                if (strncmp(k->name, "clickhouse.", 11) == 0 && !config_value_equal(old_config, new_config, k))
                        return true;
        }
        return false;
}
