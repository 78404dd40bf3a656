/*
 * conf.h - typed configuration tables.
 *
 * A program describes its settings once, as a table of ar_conf_def (name,
 * type, offset in its struct, default, limits, help).  ar_conf_load() sets
 * the defaults, then reads "name = value" lines ('#' starts a comment) and
 * refuses, with "file:line: reason", an unknown name, a bad value or a
 * value out of its limits.  Sizes take K/M/G suffixes (powers of 1024),
 * durations s/m/h/d suffixes (stored as seconds or milliseconds, see type).
 */
#ifndef AR_CONF_H
#define AR_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum ar_conf_type {
	AR_CONF_STR,       /* char[AR_CONF_STR_MAX] */
	AR_CONF_INT,       /* int64_t */
	AR_CONF_SIZE,      /* int64_t bytes; 10M, 200M, 1G */
	AR_CONF_SECONDS,   /* int64_t seconds; 30s, 5m, 2h, 7d */
	AR_CONF_MS,        /* int64_t milliseconds; 500ms, 5s */
	AR_CONF_BOOL,      /* int; yes/no, true/false, on/off, 1/0 */
};

#define AR_CONF_STR_MAX 1024

struct ar_conf_def {
	const char *name;
	enum ar_conf_type type;
	size_t offset;          /* offsetof(struct ..., field) */
	const char *def;        /* default, in config syntax */
	int64_t min, max;       /* limits for numbers (ignored for STR/BOOL) */
	const char *help;       /* one line, written into the default file */
};

/* Set every default.  0, or AR_ECONFIG with the reason in err. */
int ar_conf_defaults(const struct ar_conf_def *defs, size_t n, void *target,
    char *err, size_t errlen);
/* Defaults, then the file.  A missing file is AR_ENOENT. */
int ar_conf_load(const struct ar_conf_def *defs, size_t n, void *target,
    const char *path, char *err, size_t errlen);
/* Set one value from text (as a line "name = value" would). */
/* A number as the table reads it: AR_CONF_SIZE "10M", AR_CONF_SECONDS
 * "2h", AR_CONF_MS "500ms", AR_CONF_INT.  0 or AR_EINVAL. */
int ar_conf_parse_number(const char *text, enum ar_conf_type type,
    int64_t *out);
int ar_conf_set(const struct ar_conf_def *defs, size_t n, void *target,
    const char *name, const char *value, char *err, size_t errlen);
/* Write every setting with its help and default, commented or not. */
int ar_conf_write(const struct ar_conf_def *defs, size_t n,
    const void *target, FILE *out);

#endif
