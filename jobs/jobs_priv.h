/*
 * jobs_priv.h - private to the jobs module.
 */
#ifndef JOBS_PRIV_H
#define JOBS_PRIV_H

#include <stdio.h>
#include <jansson.h>
#include <sodium.h>
#include <openssl/evp.h>

#include "jobs/jobs.h"

/* Write "file:line: text" into err (may be NULL) and return rc. */
int jobs_fail_at(char *err, size_t errlen, int rc, const char *file,
    int line, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
#define jobs_fail(err, errlen, rc, ...) \
	jobs_fail_at(err, errlen, rc, __FILE__, __LINE__, __VA_ARGS__)

/* Could the message whose first len bytes are hdr have an attachment?
 * 0 only when its header ends within hdr and names no multipart,
 * message/..., file name or Content-Disposition: then GMime would find none
 * and the parse is skipped.  1 (parse) when in doubt. */
int jobs_may_have_attachments(const unsigned char *hdr, size_t len);

/* SHA-256 of a whole file (streamed).  0 or AR_EIO; *size its length. */
int jobs_file_sha256(const char *path, uint8_t out[32], uint64_t *size);

/* A file written under a temp name and renamed into place by close. */
typedef struct jobs_out {
	FILE *f;
	char path[4096];
	char tmp[4200];
	EVP_MD_CTX *sha;      /* OpenSSL: SHA-NI where the CPU has it */
	uint64_t size;
	int failed;
	int direct;           /* written in place: no temp name */
} jobs_out_t;
int jobs_out_open(jobs_out_t *o, const char *path);
/* The same, written under its own name (O_TRUNC): for files whose
 * completion is recorded elsewhere (an export's records journal). */
int jobs_out_open_direct(jobs_out_t *o, const char *path);
void jobs_out_write(jobs_out_t *o, const void *buf, size_t len);
void jobs_out_puts(jobs_out_t *o, const char *s);
/* Close and rename; fills sha (may be NULL).  AR_EIO on any failure. */
int jobs_out_close(jobs_out_t *o, uint8_t sha[32]);
void jobs_out_abort(jobs_out_t *o);

/* --- export assembly (export_files.c) --- */

/* CSV field (RFC 4180): quoted when it has , " CR or LF. */
void jobs_csv_field(jobs_out_t *o, const char *s, int last);
/* Concordance DAT field: þ-qualified, DC4-separated. */
void jobs_dat_field(jobs_out_t *o, const char *s, int last);
/* Copy an .eml to an mboxrd file (From line, >From quoting). */
int jobs_mbox_append(jobs_out_t *o, const char *eml, const char *sender,
    int64_t when);
/* Ed25519 public key as a PEM SubjectPublicKeyInfo. */
int jobs_pubkey_pem(const uint8_t pk[KEYSVC_PK_LEN], char *out, size_t len);
int jobs_pubkey_from_pem(const char *pem, uint8_t pk[KEYSVC_PK_LEN]);

/* Attachments of one .eml (GMime): each decoded into dir/NN-name; arr
 * receives {"name","path","sha256","size"} objects, path relative to
 * rel_base.  0 or a status (err filled). */
int jobs_attachments_extract(const char *eml, const char *root,
    const char *reldir, json_t *arr, char *err, size_t errlen);

/* Write the tree under root listed in manifest (paths), plus the manifest
 * and its signature, into a ZIP file. */
int jobs_zip_write(const char *root, const char *zip, char *err,
    size_t errlen);

#endif
