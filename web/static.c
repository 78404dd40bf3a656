/*
 * static.c - the console's files, embedded at build time (static_files.h).
 * "/" is index.html; anything else unknown is 404.
 */
#include <string.h>

#include "ar.h"
#include "static_files.h"
#include "web_priv.h"

int web_static_serve(struct web_req *r, const char *path)
{
	struct MHD_Response *resp;

	if (!strcmp(path, "/") || !strcmp(path, "/index.html"))
		path = "/index.html";
	for (size_t i = 0; i < web_static_nfiles; i++) {
		const struct web_static_file *f = &web_static_files[i];
		if (strcmp(f->path, path))
			continue;
		resp = MHD_create_response_from_buffer(f->len,
		    (void *)f->data, MHD_RESPMEM_PERSISTENT);
		MHD_add_response_header(resp, "Content-Type", f->type);
		return web_reply(r, 200, resp, NULL);
	}
	return web_reply_error(r, 404, "not_found", "no such page", NULL);
}
