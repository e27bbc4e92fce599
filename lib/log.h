/* Logging for the daemon and the CLI.
 *
 * One line per event on stderr, prefixed with the syslog priority in the
 * "<N>" form that journald (and systemd's SyslogLevelPrefix) understands, so a
 * unit's journal gets real priorities without linking sd-journal into every
 * module.  Library modules only ever call log_debug(); the daemon decides
 * what is worth an operator's attention and logs it once.
 */
#pragma once

#include <stdarg.h>
#include <syslog.h>

/* Messages above this priority (numerically greater) are dropped. */
void log_set_level(int priority);

/* Parses "error", "warning", "notice", "info", "debug" (also "err", "warn").
 * Returns the syslog priority or -EINVAL. */
int log_level_from_string(const char *s);
const char *log_level_to_string(int priority);

/* When true (stderr is a terminal), lines read "TIME LEVEL: message"
 * instead of "<N>message".  Default off: journald adds its own time and
 * reads the priority prefix. */
void log_set_timestamps(int on);

void log_msg(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(int priority, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Like log_msg, with ": strerror(-r)" appended; returns r (a negative
 * errno), so a caller can `return log_error_errno(r, "cannot ...");`. */
int log_msg_errno(int priority, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define log_error(...)   log_msg(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...)  log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)    log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)   log_msg(LOG_DEBUG, __VA_ARGS__)

#define log_error_errno(r, ...)   log_msg_errno(LOG_ERR, (r), __VA_ARGS__)
#define log_warning_errno(r, ...) log_msg_errno(LOG_WARNING, (r), __VA_ARGS__)
#define log_debug_errno(r, ...)   log_msg_errno(LOG_DEBUG, (r), __VA_ARGS__)
