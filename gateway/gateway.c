/*
 * gateway.c - the gateway module's process-wide pieces.
 */
#include "gateway/gateway.h"
