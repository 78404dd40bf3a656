/*
 * static_files.h - private to web/: the console files embedded at build
 * time (web/embed.cmake generates the table from web/static/).
 */
#ifndef WEB_STATIC_FILES_H
#define WEB_STATIC_FILES_H

#include <stddef.h>

struct web_static_file {
	const char *path;               /* "/app.js" */
	const char *type;               /* Content-Type */
	const unsigned char *data;
	size_t len;
};

extern const struct web_static_file web_static_files[];
extern const size_t web_static_nfiles;

#endif
