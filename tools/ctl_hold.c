/*
 * ctl_hold.c - archivectl hold (legal holds).
 */
#include "ar.h"
#include "ctl.h"

int ctl_hold_ids(struct ctl *c, const store_tenant_t *t, const char *name,
    uint8_t **ids, size_t *n)
{
	(void)c; (void)t; (void)ids; (void)n;
	return ctl_fail(AR_ENOENT, "no hold named '%s'", name);
}
