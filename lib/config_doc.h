/* Documentation generated from the configuration key table: the key
 * reference in docs/configuration.md (between the marker lines below), the
 * example config/salesd.yaml and the manual page docs/salesd.yaml.5.  Used by the hidden build tool
 * salesd-config-doc (`make config-docs`, `make config-docs-check`), not by
 * the daemon, so defaults and reload policy in the docs cannot drift from
 * the code. */
#pragma once

#include <stddef.h>
#include <stdio.h>

#define CONFIG_DOC_BEGIN "<!-- BEGIN GENERATED KEYS: make config-docs writes this part from lib/config_keys.c -->"
#define CONFIG_DOC_END   "<!-- END GENERATED KEYS -->"

/* Writes the key reference as Markdown: one table per section, each key with
 * its type, default, reload policy (SIGHUP or restart) and meaning.  Returns
 * 0 or -errno. */
int config_doc_reference(FILE *f);

/* Writes the example configuration: every key at its default, each with its
 * one-line doc as a comment; config_load() accepts it.  Returns 0 or -errno. */
int config_doc_example(FILE *f);

/* Writes the manual page salesd.yaml(5) in man(7) format: the file's syntax,
 * then every key as in the reference, environment overrides, credentials.
 * date and version go into the .TH line.  Returns 0 or -errno. */
int config_doc_man(FILE *f, const char *date, const char *version);

/* Returns in *ret a copy of doc with the lines between the CONFIG_DOC_BEGIN
 * and CONFIG_DOC_END lines replaced by generated.  Returns 0, -ENOMEM, or
 * -EINVAL with err filled when a marker is missing. */
int config_doc_splice(const char *doc, const char *generated, char **ret, char *err, size_t errlen);
