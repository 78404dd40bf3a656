/*
 * ctl.h - private to archivectl: the opened data directory and the
 * command table.
 */
#ifndef CTL_H
#define CTL_H

#include <jansson.h>

#include "archived/config.h"
#include "keysvc/keysvc.h"
#include "search/search.h"
#include "store/store.h"

/* Exit statuses (documented in docs/archivectl.md). */
#define CTL_OK        0
#define CTL_FAIL      1    /* the command failed; the reason is printed */
#define CTL_USAGE     2    /* the command line is wrong */
#define CTL_PROBLEMS  3    /* verify found problems */
#define CTL_SKIPPED   4    /* import skipped files that are not messages */
#define CTL_TEMPFAIL 75    /* temporary: key service down, disk full */

struct ctl {
	const char *data_dir;
	int json;
	struct ar_config cfg;
	keysvc_t *ks;
	store_backend_t *be;
	store_t *st;
	search_t *idx;         /* opened by ctl_search_open */
};

/* Load the configuration and open keysvc client, backend and catalog. */
int ctl_open(struct ctl *c);
void ctl_close(struct ctl *c);

/* Print "archivectl: <text>" on stderr; return the exit status for rc
 * (CTL_TEMPFAIL for temporary failures, else CTL_FAIL). */
int ctl_fail(int rc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int ctl_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print a JSON value on stdout (indented) and release it. */
void ctl_json_out(json_t *j);

/* Tenant by name, or a failure exit status printed. */
int ctl_tenant(struct ctl *c, const char *name, store_tenant_t *t);
/* Object id from hex, or a failure exit status printed. */
int ctl_object_id(const char *hex, uint8_t id[STORE_ID_LEN]);
/* An "access" entry in the tenant's log for a read of mail by archivectl. */
int ctl_audit(struct ctl *c, const store_tenant_t *t, const char *action,
    const uint8_t *object);

/* Open the index (c->idx) once; a failure exit status printed. */
int ctl_search_open(struct ctl *c);
/* Bring the tenant's index up to date with its log (after an import). */
int ctl_index_sync(struct ctl *c, const store_tenant_t *t,
    search_sync_stats_t *s);

/* Commands: argv[0] is the command name. */
int cmd_init(struct ctl *c, int argc, char **argv);
int cmd_tenant(struct ctl *c, int argc, char **argv);
int cmd_import(struct ctl *c, int argc, char **argv);
int cmd_list(struct ctl *c, int argc, char **argv);
int cmd_show(struct ctl *c, int argc, char **argv);
int cmd_get(struct ctl *c, int argc, char **argv);
int cmd_log(struct ctl *c, int argc, char **argv);
int cmd_verify(struct ctl *c, int argc, char **argv);
int cmd_checkpoint(struct ctl *c, int argc, char **argv);
int cmd_stats(struct ctl *c, int argc, char **argv);
int cmd_queue(struct ctl *c, int argc, char **argv);
int cmd_search(struct ctl *c, int argc, char **argv);
int cmd_reindex(struct ctl *c, int argc, char **argv);
int cmd_reconcile(struct ctl *c, int argc, char **argv);
int cmd_export(struct ctl *c, int argc, char **argv);
int cmd_verify_export(struct ctl *c, int argc, char **argv);
int cmd_retention(struct ctl *c, int argc, char **argv);
int cmd_hold(struct ctl *c, int argc, char **argv);
int cmd_dispose(struct ctl *c, int argc, char **argv);

/* The filtering gateway (ctl_gateway.c): tenant set's policy and domain
 * options (the long option's name and value; a usage exit status when
 * wrong), tenant show's part, and the gateway lists. */
struct ctl_gw_domain {
	store_domain_t set;          /* --domain and its options */
	unsigned given;              /* which of them were given */
	char remove[STORE_DOMAIN_MAX];
};
int ctl_gw_policy_opt(store_gw_policy_t *p, const char *name,
    const char *value);
int ctl_gw_domain_opt(struct ctl_gw_domain *d, const char *name,
    const char *value);
int ctl_gw_domain_apply(struct ctl *c, const store_tenant_t *t,
    struct ctl_gw_domain *d);
void ctl_gw_tenant_json(struct ctl *c, const store_tenant_t *t, json_t *o);
void ctl_gw_tenant_print(struct ctl *c, const store_tenant_t *t);
int cmd_gateway(struct ctl *c, int argc, char **argv);
/* relay queue|retry|bounce|hold|release, quarantine ... (ctl_relay.c) */
int cmd_relay(struct ctl *c, int argc, char **argv);
int cmd_quarantine(struct ctl *c, int argc, char **argv);

/* tenant dkim add|list|remove (argv[0] is "dkim"; ctl_dkim.c). */
int ctl_tenant_dkim(struct ctl *c, int argc, char **argv);
/* tenant show's part: the tenant's DKIM keys (line / JSON array). */
void ctl_dkim_tenant_print(struct ctl *c, const store_tenant_t *t);
json_t *ctl_dkim_tenant_json(struct ctl *c, const store_tenant_t *t);

/* tenant terminate|advance (argv[0] is the subcommand). */
int ctl_tenant_lifecycle(struct ctl *c, int argc, char **argv);

/* Object ids under hold NAME (malloc'd, caller frees), or a failure exit
 * status printed. */
int ctl_hold_ids(struct ctl *c, const store_tenant_t *t, const char *name,
    uint8_t **ids, size_t *n);
int cmd_user(struct ctl *c, int argc, char **argv);
/* ctl_s3.c */
int cmd_bucket(struct ctl *c, int argc, char **argv);
int cmd_rebuild(struct ctl *c, int argc, char **argv);
int cmd_migrate(struct ctl *c, int argc, char **argv);

#endif
