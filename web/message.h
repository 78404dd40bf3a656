/*
 * message.h - private to web/: a stored message parsed for display.
 * Strings returned are UTF-8 (invalid bytes replaced), g_malloc'd: the
 * caller g_free()s them.
 */
#ifndef WEB_MESSAGE_H
#define WEB_MESSAGE_H

#include <gmime/gmime.h>

#include "search/search.h"
#include "store/store.h"

struct web_msg {
	GMimeStream *stream;
	GMimeMessage *msg;
};

/* Open and parse (tenant, id).  AR_ENOENT, AR_EKEYSVC, AR_ECORRUPT ... */
int web_msg_open(store_t *st, const uint8_t tenant[STORE_TENANT_LEN],
    const uint8_t id[STORE_ID_LEN], struct web_msg *m);
/* The same over an open reader (a quarantined message), which it takes
 * (closed with the message, or on failure). */
int web_msg_open_reader(store_reader_t *rd, struct web_msg *m);
void web_msg_close(struct web_msg *m);

/* The text of the first text/plain part, or the first HTML part reduced
 * to text; *has_html (may be NULL) tells whether there is an HTML part. */
char *web_msg_text(struct web_msg *m, int *has_html);
/* The first text/html part as UTF-8 (http-equiv attributes defused), or
 * NULL. */
char *web_msg_html(struct web_msg *m);

/* Attachments, numbered from 1 in document order (a part with a file
 * name or disposition attachment, a non-text part, a nested message). */
typedef void (*web_msg_part_cb)(void *arg, int n, GMimeObject *part);
void web_msg_attachments(struct web_msg *m, web_msg_part_cb cb, void *arg);
/* Attachment n (owned by the message) or NULL. */
GMimeObject *web_msg_attachment(struct web_msg *m, int n);
char *web_part_name(GMimeObject *part, int n);
/* Decoded content (transfer encoding undone), NULL when over max bytes. */
GByteArray *web_part_content(GMimeObject *part, size_t max);

/* s made valid UTF-8 (NULL: ""). */
char *web_utf8(const char *s);

#endif
