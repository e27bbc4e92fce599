/* What the pieces of the configuration module share; config.h is the public
 * API.  The pieces, one job each:
 *
 *   config.c          loading (defaults, file, environment, secrets), free, reload policy
 *   config_keys.c     the key table: every key with its type, default, limits,
 *                     validator, reload policy, secret and documentation
 *   config_value.c    typed values: parse into Config, emptiness, equality, free
 *   config_check.c    validators of string values, and URL masking
 *   config_conninfo.c libpq conninfo: validation with scrubbed errors, masking
 *   config_yaml.c     the libyaml walk
 *   config_print.c    check-config output
 *   config_doc.c      the generated reference and example (not in the daemon)
 *
 * Nothing outside lib/config*.c includes this header. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"

#define CONFIG_MASK "********"

typedef enum KeyType {
        KEY_STRING,
        KEY_BOOL,
        KEY_UINT,
        KEY_INT64,
        KEY_DURATION,
        KEY_STRLIST,
        KEY_LOGLEVEL,
} KeyType;

/* Checks a non-empty string value; writes why it is wrong into msg. */
typedef int (*KeyCheck)(const char *value, char *msg, size_t msglen);

typedef struct KeyDef {
        const char *name; /* dotted path */
        KeyType type;
        const char *def;   /* default, in the syntax of an environment override */
        bool restart_only; /* a change needs a restart; SIGHUP rejects it */
        bool required;     /* final value must not be empty */
        size_t offset;     /* of the value in Config */
        uint64_t min, max; /* KEY_UINT, KEY_DURATION */
        KeyCheck check;    /* a non-empty string, or each list item */
        bool scalar_ok;    /* KEY_STRLIST: a single value in the file is a one-item list */
        /* check-config shows mask(value): a value that may hold a password
         * in part (conninfo, url). */
        char *(*mask)(const char *value);
        /* A key naming a secret file.  The secret read from it (or, when the
         * key is empty, from $CREDENTIALS_DIRECTORY/<credential> if that
         * exists) is stored at secret_offset (a char *) and never printed:
         * check-config says only "# <secret>: (set)". */
        const char *secret;     /* what it is: "password", "token" */
        const char *credential; /* systemd credential name: "pg-password" */
        size_t secret_offset;
        /* Documentation: doc is one line for check-config, the example
         * config and the reference; doc_type names the type in the
         * reference when the KeyType says too little ("time zone");
         * doc_more adds sentences to the reference only. */
        const char *doc;
        const char *doc_type;
        const char *doc_more;
} KeyDef;

typedef struct KeySection {
        const char *name;  /* "postgres" */
        const char *title; /* "the shop database" */
} KeySection;

/* config_keys.c */
extern const KeyDef config_keys[];
extern const size_t config_n_keys;
extern const KeySection config_sections[]; /* ends with { NULL } */
/* Index of the key with this dotted name, or config_n_keys. */
size_t config_key_index(const char *name);
/* True when name is a section ("postgres") of some key. */
bool config_key_is_section(const char *name);
/* The closest key or section to a misspelt name, copied into buf, or NULL. */
const char *config_key_suggest(const char *name, char *buf, size_t len);
/* SALESD_POSTGRES_CONNINFO for postgres.conninfo. */
void config_key_env_name(const KeyDef *k, char *buf, size_t len);

/* config_value.c */
void *config_field(Config *c, const KeyDef *k);
const void *config_field_const(const Config *c, const KeyDef *k);
/* Parses v (a scalar; for a list, comma-separated) for key k and stores it
 * in c.  Returns 0, -EINVAL with msg filled, or -ENOMEM. */
int config_value_set(Config *c, const KeyDef *k, const char *v, char *msg, size_t len);
/* Stores a NULL-terminated list, taking ownership of items on success. */
int config_value_set_list(Config *c, const KeyDef *k, char **items, char *msg, size_t len);
int config_value_check_item(const KeyDef *k, const char *item, char *msg, size_t len);
bool config_value_empty(const Config *c, const KeyDef *k);
bool config_value_equal(const Config *a, const Config *b, const KeyDef *k);
void config_value_free(Config *c, const KeyDef *k);
/* "a duration", for "expected a duration, got a list". */
const char *config_value_type_name(const KeyDef *k);
/* A user value for a message: control characters escaped so one error
 * stays one line, long values shortened.  Returns buf. */
const char *config_value_quote(const char *v, char *buf, size_t len);
void config_strv_free(char **v);

/* config_check.c: the table's validators */
int config_check_text(const char *v, char *msg, size_t len);
int config_check_timezone(const char *v, char *msg, size_t len);
int config_check_schedule(const char *v, char *msg, size_t len);
int config_check_table(const char *v, char *msg, size_t len);
int config_check_channel(const char *v, char *msg, size_t len);
int config_check_ch_identifier(const char *v, char *msg, size_t len);
int config_check_ch_cluster(const char *v, char *msg, size_t len);
int config_check_zookeeper_path(const char *v, char *msg, size_t len);
int config_check_url(const char *v, char *msg, size_t len);
int config_check_listen(const char *v, char *msg, size_t len);
/* Copies a URL with the password of any user:password@ part masked. */
char *config_mask_url(const char *url);

/* config_conninfo.c */
int config_check_conninfo(const char *v, char *msg, size_t len);

/* config.c: the loader collects every problem instead of stopping at the
 * first, each with the place that set the value. */
typedef struct Origin {
        unsigned line, column; /* 1-based; 0 = not from the file */
        char env[64];          /* "" = not from the environment */
        /* The default fails its check on this machine (timezone "UTC" with a
         * TZDIR that lacks it): an error only if nothing else sets the key. */
        bool bad_default;
} Origin;

typedef struct Loader {
        const char *path;
        Config *config;
        Origin *origin; /* one per key */
        char *err;
        size_t errlen;
        size_t used;
        unsigned errors;
} Loader;

void loader_add(Loader *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reports a problem with key ki at its origin. */
void loader_key_error(Loader *l, size_t ki, const char *msg);

/* Limits on a configuration file, so that a wrong path or a hostile file
 * cannot stall loading (on SIGHUP, the daemon's loop): its size, and how
 * deeply nodes nest (salesd's own settings nest 3 deep: section, key, list). */
#define CONFIG_MAX_BYTES (1024 * 1024)
#define CONFIG_MAX_DEPTH 32

/* config_yaml.c: walks the file's text (len bytes, at most CONFIG_MAX_BYTES)
 * into l->config.  Returns 0 (problems are in l), -EINVAL on a syntax error
 * or nesting deeper than CONFIG_MAX_DEPTH (reported) or -ENOMEM. */
int config_yaml_load(Loader *l, const unsigned char *buf, size_t len);
