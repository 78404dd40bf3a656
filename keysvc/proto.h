/*
 * proto.h - wire protocol between keysvc clients and archive-keysvc
 * (private to keysvc/).
 *
 * Every message is a frame: a 4-byte big-endian body length, then the body.
 *
 * Request body:   u8 proto version (KSP_VERSION) | u8 op | fields of op
 * Response body:  i32 status (big-endian, 0 or a negative AR_* code)
 *                 | result fields (only when status is 0)
 *
 *   op            request fields                      result fields
 *   KSP_PING      -                                   -
 *   KSP_PUBKEY    -                                   pk[32]
 *   KSP_CREATE    tenant[16]                          u32 version (1)
 *   KSP_ROTATE    tenant[16]                          u32 new version
 *   KSP_DESTROY   tenant[16]                          -
 *   KSP_INFO      tenant[16]                          u32 current, u8 destroyed
 *   KSP_DERIVE    tenant[16] u32 version u8 n ctx[n]  key[32]
 *   KSP_SIGN      u32 n msg[n]                        sig[64]
 *   KSP_SIGN_MANY u16 k, k x (u32 n msg[n])           k x sig[64]
 *
 * KSP_SIGN_MANY (1 <= k <= KSP_SIGN_BATCH_MAX) signs several messages in
 * one round trip: the client gathers the signatures its threads ask for at
 * the same time (client.c).  The k messages must fill the body exactly.
 *
 * A request whose declared length exceeds KSP_REQ_MAX is answered with
 * AR_ETOOBIG and the connection is closed (its body is never read).  A
 * request with an unknown version (AR_EVERSION) or op, fields shorter than
 * the op needs, or trailing bytes (AR_EPROTO) is answered with the error;
 * the framing is intact, so the connection stays usable.
 */
#ifndef KEYSVC_PROTO_H
#define KEYSVC_PROTO_H

#include "keysvc/keysvc.h"

#define KSP_VERSION   1
#define KSP_HDR_LEN   4                       /* frame length prefix */
#define KSP_REQ_FIXED 2                       /* version + op */
#define KSP_REQ_MAX   (KEYSVC_SIGN_MAX + 64)  /* largest request body */
#define KSP_SIGN_BATCH_MAX 64                 /* messages per SIGN_MANY */
#define KSP_RESP_MAX  (4 + KSP_SIGN_BATCH_MAX * KEYSVC_SIG_LEN)

enum ksp_op {
	KSP_PING    = 1,
	KSP_PUBKEY  = 2,
	KSP_CREATE  = 3,
	KSP_ROTATE  = 4,
	KSP_DESTROY = 5,
	KSP_INFO    = 6,
	KSP_DERIVE  = 7,
	KSP_SIGN    = 8,
	KSP_SIGN_MANY = 9,
};

/* Context strings are printable ASCII without spaces (0x21..0x7e). */
static inline int ksp_context_ok(const unsigned char *ctx, size_t n)
{
	if (n < 1 || n > KEYSVC_CONTEXT_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (ctx[i] < 0x21 || ctx[i] > 0x7e)
			return 0;
	return 1;
}

#endif /* KEYSVC_PROTO_H */
