/*
 * gateway.h - the filtering gateway: archived as the tenants' inbound MX
 * (DESIGN.md "Filtering gateway").  Before the 250: recipient domain and
 * user checks, antivirus (clamd), spam/SPF/DKIM/DMARC/RBL (rspamd),
 * attachment policy; per-tenant verdicts (reject, quarantine, tag,
 * deliver); every accepted message handed to the archive through the
 * ingest spool, and to the relay queue for delivery.
 *
 * Every call returns 0 or a negative AR_* status (common/ar.h).
 */
#ifndef GATEWAY_GATEWAY_H
#define GATEWAY_GATEWAY_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#endif /* GATEWAY_GATEWAY_H */
