/*
 * conf.c - typed configuration tables (see conf.h).
 */
#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ar.h"

static int parse_num(const char *v, enum ar_conf_type type, int64_t *out)
{
	char *end;
	long long n;
	int64_t mul = 1;

	errno = 0;
	n = strtoll(v, &end, 10);
	if (end == v || errno)
		return -1;
	if (type == AR_CONF_SIZE) {
		if (!strcasecmp(end, "k") || !strcasecmp(end, "kb")) mul = 1024;
		else if (!strcasecmp(end, "m") || !strcasecmp(end, "mb"))
			mul = 1024 * 1024;
		else if (!strcasecmp(end, "g") || !strcasecmp(end, "gb"))
			mul = 1024LL * 1024 * 1024;
		else if (*end && strcasecmp(end, "b")) return -1;
	} else if (type == AR_CONF_SECONDS) {
		if (!strcmp(end, "s") || !*end) mul = 1;
		else if (!strcmp(end, "m")) mul = 60;
		else if (!strcmp(end, "h")) mul = 3600;
		else if (!strcmp(end, "d")) mul = 86400;
		else return -1;
	} else if (type == AR_CONF_MS) {
		if (!strcmp(end, "ms") || !*end) mul = 1;
		else if (!strcmp(end, "s")) mul = 1000;
		else if (!strcmp(end, "m")) mul = 60000;
		else return -1;
	} else if (*end) {
		return -1;
	}
	if (n != 0 && (n > INT64_MAX / mul || n < INT64_MIN / mul))
		return -1;
	*out = n * mul;
	return 0;
}

int ar_conf_parse_number(const char *text, enum ar_conf_type type,
    int64_t *out)
{
	return parse_num(text, type, out) ? AR_EINVAL : 0;
}

int ar_conf_set(const struct ar_conf_def *defs, size_t n, void *target,
    const char *name, const char *value, char *err, size_t errlen)
{
	const struct ar_conf_def *d = NULL;
	char *base = target;

	for (size_t i = 0; i < n; i++)
		if (!strcmp(defs[i].name, name))
			d = &defs[i];
	if (!d) {
		snprintf(err, errlen, "unknown setting '%s'", name);
		return AR_ECONFIG;
	}
	switch (d->type) {
	case AR_CONF_STR:
		if (strlen(value) >= AR_CONF_STR_MAX) {
			snprintf(err, errlen, "%s: value longer than %d bytes",
			    name, AR_CONF_STR_MAX - 1);
			return AR_ECONFIG;
		}
		ar_strlcpy(base + d->offset, value, AR_CONF_STR_MAX);
		return 0;
	case AR_CONF_BOOL: {
		int b;
		if (!strcasecmp(value, "yes") || !strcasecmp(value, "true") ||
		    !strcasecmp(value, "on") || !strcmp(value, "1"))
			b = 1;
		else if (!strcasecmp(value, "no") ||
		    !strcasecmp(value, "false") || !strcasecmp(value, "off") ||
		    !strcmp(value, "0"))
			b = 0;
		else {
			snprintf(err, errlen, "%s: '%s' is not yes or no", name,
			    value);
			return AR_ECONFIG;
		}
		*(int *)(base + d->offset) = b;
		return 0;
	}
	default: {
		int64_t v;
		static const char *what[] = { [AR_CONF_INT] = "a whole number",
		    [AR_CONF_SIZE] = "a size (e.g. 200M)",
		    [AR_CONF_SECONDS] = "a duration (e.g. 30s, 5m, 7d)",
		    [AR_CONF_MS] = "a duration (e.g. 500ms, 5s)" };
		if (parse_num(value, d->type, &v) < 0) {
			snprintf(err, errlen, "%s: '%s' is not %s", name, value,
			    what[d->type]);
			return AR_ECONFIG;
		}
		if (v < d->min || v > d->max) {
			snprintf(err, errlen, "%s: %s is outside %" PRId64
			    "..%" PRId64, name, value, d->min, d->max);
			return AR_ECONFIG;
		}
		*(int64_t *)(base + d->offset) = v;
		return 0;
	}
	}
}

int ar_conf_defaults(const struct ar_conf_def *defs, size_t n, void *target,
    char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		char e[512];
		if (ar_conf_set(defs, n, target, defs[i].name, defs[i].def, e,
		    sizeof e)) {
			snprintf(err, errlen, "default of %s", e);
			return AR_ECONFIG;
		}
	}
	return 0;
}

static char *trim(char *s)
{
	char *e;
	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

int ar_conf_load(const struct ar_conf_def *defs, size_t n, void *target,
    const char *path, char *err, size_t errlen)
{
	char line[AR_CONF_STR_MAX + 256];
	int lineno = 0, rc;
	FILE *f;

	if ((rc = ar_conf_defaults(defs, n, target, err, errlen)))
		return rc;
	f = fopen(path, "re");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return errno == ENOENT ? AR_ENOENT : AR_ECONFIG;
	}
	while (fgets(line, sizeof line, f)) {
		char *eq, *name, *value, e[512];
		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, errlen, "%s:%d: line too long", path,
			    lineno);
			fclose(f);
			return AR_ECONFIG;
		}
		name = trim(line);
		if (*name == '#' || *name == '\0')
			continue;
		if (!(eq = strchr(name, '='))) {
			snprintf(err, errlen, "%s:%d: expected 'name = value'",
			    path, lineno);
			fclose(f);
			return AR_ECONFIG;
		}
		*eq = '\0';
		value = trim(eq + 1);
		name = trim(name);
		if (ar_conf_set(defs, n, target, name, value, e, sizeof e)) {
			snprintf(err, errlen, "%s:%d: %s", path, lineno, e);
			fclose(f);
			return AR_ECONFIG;
		}
	}
	fclose(f);
	return 0;
}

int ar_conf_write(const struct ar_conf_def *defs, size_t n,
    const void *target, FILE *out)
{
	const char *base = target;
	for (size_t i = 0; i < n; i++) {
		const struct ar_conf_def *d = &defs[i];
		fprintf(out, "# %s (default: %s)\n", d->help, d->def);
		switch (d->type) {
		case AR_CONF_STR:
			fprintf(out, "%s = %s\n\n", d->name, base + d->offset);
			break;
		case AR_CONF_BOOL:
			fprintf(out, "%s = %s\n\n", d->name,
			    *(const int *)(base + d->offset) ? "yes" : "no");
			break;
		case AR_CONF_MS:
			fprintf(out, "%s = %" PRId64 "ms\n\n", d->name,
			    *(const int64_t *)(base + d->offset));
			break;
		case AR_CONF_SECONDS:
			fprintf(out, "%s = %" PRId64 "s\n\n", d->name,
			    *(const int64_t *)(base + d->offset));
			break;
		default:
			fprintf(out, "%s = %" PRId64 "\n\n", d->name,
			    *(const int64_t *)(base + d->offset));
		}
	}
	return ferror(out) ? AR_EIO : 0;
}
