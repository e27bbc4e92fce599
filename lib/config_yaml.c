/* The libyaml walk: one document, one mapping, sections as nested mappings.
 * Every key found is looked up in the table and its value handed to
 * config_value_set(); every problem is reported with the file, line and
 * column of the node at fault, and the walk goes on. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config_internal.h"
#include "macro.h"

static const char *node_kind(const yaml_node_t *n) {
        switch (n->type) {
        case YAML_MAPPING_NODE:
                return "a mapping";
        case YAML_SEQUENCE_NODE:
                return "a list";
        default:
                return "a single value";
        }
}

static bool scalar_is_null(const yaml_node_t *n) {
        if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                return false;
        const char *v = (const char *)n->data.scalar.value;
        return !*v || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

static void node_error(Loader *l, const yaml_node_t *n, const char *key, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void node_error(Loader *l, const yaml_node_t *n, const char *key, const char *fmt, ...) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        loader_add(l, "%s:%zu:%zu: key '%s': %s", l->path, n->start_mark.line + 1, n->start_mark.column + 1, key, msg);
}

DEFINE_POINTER_CLEANUP_FUNC(char *, config_strv_free)

/* Reads a sequence of strings, each checked here to point at the item. */
static int apply_list(Loader *l, yaml_document_t *doc, const KeyDef *k, yaml_node_t *v) {
        char msg[512];
        if (v->type != YAML_SEQUENCE_NODE) {
                node_error(l, v, k->name, "expected a list of strings such as [completed], got %s", node_kind(v));
                return -EINVAL;
        }
        size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start), i = 0;
        _cleanup_(config_strv_freep) char **items = calloc(n + 1, sizeof(char *));
        if (!items)
                return -ENOMEM;
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
                yaml_node_t *item = yaml_document_get_node(doc, *it);
                if (!item || item->type != YAML_SCALAR_NODE) {
                        node_error(l, item ? item : v, k->name, "list items must be strings, got %s",
                                   item ? node_kind(item) : "nothing");
                        return -EINVAL;
                }
                items[i] = strdup((const char *)item->data.scalar.value);
                if (!items[i])
                        return -ENOMEM;
                if (config_value_check_item(k, items[i++], msg, sizeof(msg)) < 0) {
                        node_error(l, item, k->name, "%s", msg);
                        return -EINVAL;
                }
        }
        int r = config_value_set_list(l->config, k, items, msg, sizeof(msg));
        if (r < 0) {
                node_error(l, v, k->name, "%s", msg);
                return r;
        }
        TAKE_PTR(items);
        return 0;
}

static int apply_scalar(Loader *l, const KeyDef *k, yaml_node_t *v) {
        char msg[512];
        if (v->type != YAML_SCALAR_NODE) {
                node_error(l, v, k->name, "expected %s, got %s", config_value_type_name(k), node_kind(v));
                return -EINVAL;
        }
        const char *text = (const char *)v->data.scalar.value;
        if (scalar_is_null(v)) {
                if (k->type != KEY_STRING) {
                        node_error(l, v, k->name, "expected %s, got nothing", config_value_type_name(k));
                        return -EINVAL;
                }
                text = "";
        }
        int r = config_value_set(l->config, k, text, msg, sizeof(msg));
        if (r < 0)
                node_error(l, v, k->name, "%s", r == -ENOMEM ? "out of memory" : msg);
        return r;
}

static void apply_leaf(Loader *l, yaml_document_t *doc, size_t ki, yaml_node_t *v) {
        const KeyDef *k = &config_keys[ki];
        l->origin[ki].bad_default = false; /* set here: an error is this value's */
        bool list = k->type == KEY_STRLIST && !(k->scalar_ok && v->type == YAML_SCALAR_NODE);
        int r = list ? apply_list(l, doc, k, v) : apply_scalar(l, k, v);
        if (r == -ENOMEM && list) /* apply_scalar has said so at the node */
                loader_add(l, "%s: out of memory", l->path);
        if (r < 0)
                return;
        l->origin[ki] =
                (Origin){ .line = (unsigned)v->start_mark.line + 1, .column = (unsigned)v->start_mark.column + 1 };
}

/* libyaml accepts repeated keys; silently taking the last one would hide a
 * mistake.  For each pair of a mapping, the index of the earlier pair with
 * the same key, or SIZE_MAX: the keys sorted by (name, position), so a file
 * of many keys costs n log n, not n^2 (40,000 keys took 12 s on SIGHUP). */
typedef struct KeyRef {
        const char *name;
        size_t pos;
} KeyRef;

static int keyref_compare(const void *a, const void *b) {
        const KeyRef *x = a, *y = b;
        int c = strcmp(x->name, y->name);
        return c ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

static size_t *find_duplicates(yaml_document_t *doc, yaml_node_t *map) {
        size_t n = (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start), m = 0;
        _cleanup_free_ KeyRef *keys = calloc(n ? n : 1, sizeof(KeyRef));
        size_t *first = calloc(n ? n : 1, sizeof(size_t));
        if (!keys || !first) {
                free(first);
                return NULL;
        }
        for (size_t i = 0; i < n; i++) {
                yaml_node_t *kn = yaml_document_get_node(doc, map->data.mapping.pairs.start[i].key);
                first[i] = SIZE_MAX;
                if (kn && kn->type == YAML_SCALAR_NODE)
                        keys[m++] = (KeyRef){ (const char *)kn->data.scalar.value, i };
        }
        qsort(keys, m, sizeof(KeyRef), keyref_compare);
        for (size_t i = 1; i < m; i++)
                if (strcmp(keys[i].name, keys[i - 1].name) == 0)
                        first[keys[i].pos] =
                                first[keys[i - 1].pos] == SIZE_MAX ? keys[i - 1].pos : first[keys[i - 1].pos];
        return first;
}

static void report_duplicate(Loader *l, yaml_document_t *doc, yaml_node_t *map, size_t first, const yaml_node_t *kn,
                             const char *full) {
        char q[128];
        const yaml_node_t *pk = yaml_document_get_node(doc, map->data.mapping.pairs.start[first].key);
        loader_add(l, "%s:%zu:%zu: key '%s': duplicate key (first set on line %zu)", l->path, kn->start_mark.line + 1,
                   kn->start_mark.column + 1, config_value_quote(full, q, sizeof(q)), pk->start_mark.line + 1);
}

static void report_unknown(Loader *l, const yaml_node_t *kn, const char *full) {
        char s[128], q[128];
        /* the suggestion is the costly part: none once no more text fits */
        bool full_buffer = !l->err || l->used + 1 >= l->errlen;
        const char *hint = full_buffer ? NULL : config_key_suggest(full, s, sizeof(s));
        loader_add(l, "%s:%zu:%zu: unknown key '%s'%s%s%s", l->path, kn->start_mark.line + 1, kn->start_mark.column + 1,
                   config_value_quote(full, q, sizeof(q)), hint ? " (did you mean '" : "", hint ? hint : "",
                   hint ? "'?)" : "");
}

static void walk_mapping(Loader *l, yaml_document_t *doc, yaml_node_t *map, const char *prefix) {
        _cleanup_free_ size_t *first = find_duplicates(doc, map);
        if (!first) {
                loader_add(l, "%s: out of memory", l->path);
                return;
        }
        for (yaml_node_pair_t *pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top; pair++) {
                yaml_node_t *kn = yaml_document_get_node(doc, pair->key);
                yaml_node_t *vn = yaml_document_get_node(doc, pair->value);
                if (!kn || !vn)
                        continue;
                if (kn->type != YAML_SCALAR_NODE) {
                        loader_add(l, "%s:%zu:%zu: keys must be plain names, got %s", l->path, kn->start_mark.line + 1,
                                   kn->start_mark.column + 1, node_kind(kn));
                        continue;
                }
                char full[256];
                snprintf(full, sizeof(full), "%s%s%s", prefix ? prefix : "", prefix ? "." : "",
                         (const char *)kn->data.scalar.value);
                size_t dup = first[pair - map->data.mapping.pairs.start];
                if (dup != SIZE_MAX) {
                        report_duplicate(l, doc, map, dup, kn, full);
                        continue;
                }

                size_t ki = config_key_index(full);
                if (ki < config_n_keys)
                        apply_leaf(l, doc, ki, vn);
                else if (!config_key_is_section(full))
                        report_unknown(l, kn, full);
                else if (vn->type == YAML_MAPPING_NODE)
                        walk_mapping(l, doc, vn, full);
                else if (!scalar_is_null(vn))
                        node_error(l, vn, full, "expected a mapping of settings, got %s", node_kind(vn));
        }
}

static void syntax_error(Loader *l, const yaml_parser_t *parser) {
        const char *problem = parser->problem ? parser->problem : "cannot parse";
        if (parser->context)
                loader_add(l, "%s:%zu:%zu: yaml syntax error: %s %s that starts at line %zu, column %zu", l->path,
                           parser->problem_mark.line + 1, parser->problem_mark.column + 1, problem, parser->context,
                           parser->context_mark.line + 1, parser->context_mark.column + 1);
        else
                loader_add(l, "%s:%zu:%zu: yaml syntax error: %s", l->path, parser->problem_mark.line + 1,
                           parser->problem_mark.column + 1, problem);
}

/* One file, one document: a second one would be silently ignored. */
static void check_single_document(Loader *l, yaml_parser_t *parser) {
        yaml_document_t next;
        if (!yaml_parser_load(parser, &next)) {
                syntax_error(l, parser);
                return;
        }
        _cleanup_(yaml_document_delete) yaml_document_t owned = next;
        yaml_node_t *root = yaml_document_get_root_node(&owned);
        if (root)
                loader_add(l, "%s:%zu:%zu: only one YAML document is allowed", l->path, root->start_mark.line + 1,
                           root->start_mark.column + 1);
}

/* libyaml reads "\0" escapes into scalars that C strings would cut short
 * ("UTC\0/../../etc/passwd" read as "UTC"): refuse any scalar, key or value,
 * holding a NUL.  Returns how many were found. */
static size_t refuse_nul_scalars(Loader *l, yaml_document_t *doc) {
        size_t found = 0;
        for (yaml_node_t *n = doc->nodes.start; n < doc->nodes.top; n++)
                if (n->type == YAML_SCALAR_NODE && memchr(n->data.scalar.value, '\0', n->data.scalar.length)) {
                        loader_add(l, "%s:%zu:%zu: a NUL character (\\0) is not allowed in the configuration", l->path,
                                   n->start_mark.line + 1, n->start_mark.column + 1);
                        found++;
                }
        return found;
}

/* libyaml has no depth limit, and its scanner slows down with every level
 * of nesting; salesd's settings are two levels deep.  A first pass over the
 * events stops at the first node deeper than CONFIG_MAX_DEPTH, before
 * libyaml builds the document.  Returns 0, or -EINVAL (reported). */
static int check_depth(Loader *l, const unsigned char *buf, size_t len) {
        _cleanup_(yaml_parser_delete) yaml_parser_t parser;
        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&parser, buf, len);
        for (unsigned depth = 0;;) {
                yaml_event_t ev;
                if (!yaml_parser_parse(&parser, &ev)) {
                        syntax_error(l, &parser);
                        return -EINVAL;
                }
                yaml_event_type_t type = ev.type;
                yaml_mark_t mark = ev.start_mark;
                yaml_event_delete(&ev);
                if (type == YAML_STREAM_END_EVENT)
                        return 0;
                if (type == YAML_SEQUENCE_END_EVENT || type == YAML_MAPPING_END_EVENT)
                        depth--;
                if ((type == YAML_SEQUENCE_START_EVENT || type == YAML_MAPPING_START_EVENT) &&
                    ++depth > CONFIG_MAX_DEPTH) {
                        loader_add(l,
                                   "%s:%zu:%zu: nested more than %d levels deep (salesd's settings are at most 3: "
                                   "section, key, list; check the indentation and brackets)",
                                   l->path, mark.line + 1, mark.column + 1, CONFIG_MAX_DEPTH);
                        return -EINVAL;
                }
        }
}

int config_yaml_load(Loader *l, const unsigned char *buf, size_t len) {
        int r = check_depth(l, buf, len);
        if (r < 0)
                return r;
        _cleanup_(yaml_parser_delete) yaml_parser_t parser;
        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&parser, buf, len);
        yaml_document_t loaded;
        if (!yaml_parser_load(&parser, &loaded)) {
                syntax_error(l, &parser);
                return -EINVAL;
        }
        _cleanup_(yaml_document_delete) yaml_document_t doc = loaded;
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (!root)
                return 0;
        if (refuse_nul_scalars(l, &doc) > 0)
                return -EINVAL;
        if (root->type == YAML_MAPPING_NODE)
                walk_mapping(l, &doc, root, NULL);
        else if (!scalar_is_null(root))
                loader_add(l, "%s:%zu:%zu: expected a mapping of settings at the top level, got %s", l->path,
                           root->start_mark.line + 1, root->start_mark.column + 1, node_kind(root));
        check_single_document(l, &parser);
        return 0;
}
