/*
 * backend_seg.h - private to the seg backend (backend_seg.c: writing,
 * reading, deleting; backend_seg_scan.c: opening, damage, corrupt/).
 * Record format: docs/formats.md "Spool segments".
 */
#ifndef STORE_BACKEND_SEG_H
#define STORE_BACKEND_SEG_H

#include <limits.h>
#include <pthread.h>
#include <stdint.h>

#include "store/backend_impl.h"

#define KEY_LEN     (STORE_TENANT_LEN + STORE_ID_LEN)
#define HDR_LEN     64
#define HASH_LEN    16
#define SEG_VERSION 1u
#define SEG_MAX     (64u * 1024 * 1024)  /* a segment takes no more appends */
#define SEG_SPILL   (256u * 1024)        /* larger objects get a segment each */

extern const char seg_magic_live[4];
extern const char seg_magic_dead[4];

typedef struct seg_damage {
	uint64_t off, len;             /* a damaged byte range */
} seg_damage_t;

typedef struct seg {
	uint64_t seq;
	int fd;
	uint64_t end;                  /* appends go here */
	uint64_t synced;               /* durable up to here */
	size_t live;                   /* records in the index */
	unsigned refs;                 /* readers and committers */
	int open_for_appends;          /* the active segment */
	int unlinked;                  /* unlinked, or moved to corrupt/ */
	int dirty;                     /* deletions not fdatasync'd */
	seg_damage_t *damage;          /* found by the scan: the file is */
	size_t ndamage, capdamage;     /* moved aside, never unlinked */
	struct seg *next;
} seg_t;

typedef struct seg_rec {
	uint8_t key[KEY_LEN];          /* first: the tree compares it */
	seg_t *seg;
	uint64_t off;                  /* of the header */
	uint64_t len;                  /* of the data */
} seg_rec_t;

typedef struct seg_backend {
	store_backend_t base;          /* first */
	char segdir[PATH_MAX];
	char tmpdir[PATH_MAX];
	char corruptdir[PATH_MAX];
	int rdonly;
	pthread_mutex_t lock;          /* index, segments, next_seq */
	pthread_mutex_t sync_lock;     /* one fdatasync at a time */
	void *index;
	seg_t *segs;
	seg_t *active;
	uint64_t next_seq;
} seg_backend_t;

static inline seg_backend_t *sgb(store_backend_t *be)
{
	return (seg_backend_t *)be;
}

/* backend_seg.c, under sb->lock */
seg_t *seg_add(seg_backend_t *sb, uint64_t seq, int fd, uint64_t end);
void seg_maybe_unlink(seg_backend_t *sb, seg_t *s);
seg_rec_t *seg_rec_find(seg_backend_t *sb, const uint8_t *key);
/* 0, AR_EEXIST or AR_ENOMEM */
int seg_rec_insert(seg_backend_t *sb, const uint8_t *key, seg_t *s,
    uint64_t off, uint64_t len);
void seg_name(const seg_backend_t *sb, uint64_t seq, char *buf, size_t size);
int seg_errno(store_backend_t *be, int err, const char *what,
    const char *path);

/* backend_seg_scan.c */
/* Index every segment of sb->segdir (at open, no lock needed yet). */
int seg_scan_all(seg_backend_t *sb);
/* A damaged segment with no live record left goes to corrupt/, with a
 * list of its damaged ranges beside it (under sb->lock). */
void seg_move_aside(seg_backend_t *sb, seg_t *s);

#endif
