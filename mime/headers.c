/*
 * headers.c - the header summary of a message kept (encrypted) in the
 * catalog: subject, from, to, cc, date, message-id.
 */
#include <gmime/gmime.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "ar.h"
#include "mime/mime.h"

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;

static void gmime_start(void)
{
	g_mime_init();
}

void mime_init(void)
{
	pthread_once(&gmime_once, gmime_start);
}

/* Unfolded value of the first header field called name, or NULL. */
static char *header_value(const unsigned char *buf, size_t len,
    const char *name)
{
	size_t nl = strlen(name), i = 0;

	/* An mbox "From " line may lead; it is not a header field. */
	if (len >= 5 && !memcmp(buf, "From ", 5)) {
		while (i < len && buf[i] != '\n')
			i++;
		i++;
	}
	while (i < len) {
		size_t eol = i;
		while (eol < len && buf[eol] != '\n')
			eol++;
		if (eol == i || (eol == i + 1 && buf[i] == '\r'))
			return NULL;            /* end of the header */
		if (eol - i > nl && buf[i + nl] == ':' &&
		    !strncasecmp((const char *)buf + i, name, nl)) {
			size_t cap = 256, n = 0, j = i + nl + 1;
			char *v = malloc(cap);
			if (!v)
				return NULL;
			for (;;) {
				for (; j < eol; j++) {
					if (buf[j] == '\r' || buf[j] == '\0')
						continue;
					if (n + 2 > cap) {
						char *nv;
						if (cap >= 64 * 1024)
							break;
						cap *= 2;
						if (!(nv = realloc(v, cap))) {
							free(v);
							return NULL;
						}
						v = nv;
					}
					v[n++] = (char)buf[j];
				}
				/* continuation lines start with white space */
				if (eol + 1 < len && (buf[eol + 1] == ' ' ||
				    buf[eol + 1] == '\t')) {
					j = eol + 1;
					eol = j;
					while (eol < len && buf[eol] != '\n')
						eol++;
					continue;
				}
				break;
			}
			v[n] = '\0';
			return v;
		}
		i = eol + 1;
	}
	return NULL;
}

static json_t *addresses(const char *value)
{
	InternetAddressList *list;
	json_t *arr = json_array();
	int n;

	if (!value)
		return arr;
	list = internet_address_list_parse(NULL, value);
	if (!list)
		return arr;
	n = internet_address_list_length(list);
	for (int i = 0; i < n && i < 1000; i++) {
		InternetAddress *ia = internet_address_list_get_address(list,
		    i);
		if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
			const char *a = internet_address_mailbox_get_addr(
			    INTERNET_ADDRESS_MAILBOX(ia));
			if (a && g_utf8_validate(a, -1, NULL))
				json_array_append_new(arr, json_string(a));
		} else if (INTERNET_ADDRESS_IS_GROUP(ia)) {
			InternetAddressList *m = internet_address_group_get_members(
			    INTERNET_ADDRESS_GROUP(ia));
			int k = internet_address_list_length(m);
			for (int j = 0; j < k && j < 1000; j++) {
				InternetAddress *x =
				    internet_address_list_get_address(m, j);
				if (INTERNET_ADDRESS_IS_MAILBOX(x)) {
					const char *a =
					    internet_address_mailbox_get_addr(
					    INTERNET_ADDRESS_MAILBOX(x));
					if (a && g_utf8_validate(a, -1, NULL))
						json_array_append_new(arr,
						    json_string(a));
				}
			}
		}
	}
	g_object_unref(list);
	return arr;
}

/* A JSON string of decoded header text; invalid UTF-8 is replaced. */
static json_t *text(const char *value)
{
	char *d, *valid;
	json_t *j;

	if (!value)
		return json_null();
	d = g_mime_utils_header_decode_text(NULL, value);
	valid = g_utf8_make_valid(d ? d : value, -1);
	g_strstrip(valid);
	j = json_string(valid);
	g_free(valid);
	g_free(d);
	return j ? j : json_null();
}

int mime_digest(store_read_cb read, void *arg,
    uint8_t sha[STORE_HASH_LEN], unsigned char *peek, size_t peekcap,
    size_t *npeek)
{
	unsigned char buf[64 * 1024];
	crypto_hash_sha256_state h;
	size_t got;
	int rc;

	*npeek = 0;
	crypto_hash_sha256_init(&h);
	while ((rc = read(arg, buf, sizeof buf, &got)) == 0 && got > 0) {
		size_t k = got < peekcap - *npeek ? got : peekcap - *npeek;
		crypto_hash_sha256_update(&h, buf, got);
		memcpy(peek + *npeek, buf, k);
		*npeek += k;
	}
	crypto_hash_sha256_final(&h, sha);
	return rc;
}

char *mime_header_summary(const unsigned char *buf, size_t len,
    const char *extra, int *parsed)
{
	static const char *fields[] = { "Subject", "From", "To", "Cc",
	    "Date", "Message-ID" };
	char *v[AR_ARRAY_LEN(fields)];
	json_t *o = json_object();
	char *out;
	int any = 0;

	pthread_once(&gmime_once, gmime_start);
	for (size_t i = 0; i < AR_ARRAY_LEN(fields); i++) {
		v[i] = header_value(buf, len, fields[i]);
		any |= v[i] != NULL;
	}
	json_object_set_new(o, "subject", text(v[0]));
	{
		json_t *from = addresses(v[1]);
		json_object_set(o, "from", json_array_size(from) ?
		    json_array_get(from, 0) : json_null());
		json_decref(from);
	}
	json_object_set_new(o, "to", addresses(v[2]));
	json_object_set_new(o, "cc", addresses(v[3]));
	if (v[4]) {
		GDateTime *dt = g_mime_utils_header_decode_date(v[4]);
		if (dt) {
			json_object_set_new(o, "date",
			    json_integer(g_date_time_to_unix(dt)));
			g_date_time_unref(dt);
		} else {
			json_object_set_new(o, "date", json_null());
		}
	} else {
		json_object_set_new(o, "date", json_null());
	}
	if (v[5]) {
		char *mid = g_mime_utils_decode_message_id(v[5]);
		json_object_set_new(o, "message_id", text(mid ? mid : v[5]));
		g_free(mid);
	} else {
		json_object_set_new(o, "message_id", json_null());
	}
	for (size_t i = 0; i < AR_ARRAY_LEN(fields); i++)
		free(v[i]);
	if (extra) {
		json_t *x = json_loads(extra, 0, NULL);
		if (json_is_object(x))
			json_object_update(o, x);
		json_decref(x);
	}
	if (parsed)
		*parsed = any;
	out = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return out;
}
