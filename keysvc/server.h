/*
 * server.h - archive-keysvc's request loop (private to keysvc/): one
 * thread, poll() over a bounded set of non-blocking connections, each with
 * its own frame buffer, idle deadline and peer credentials.
 */
#ifndef KEYSVC_SERVER_H
#define KEYSVC_SERVER_H

#include <signal.h>

#include "keysvc/keystore.h"

struct server_opts {
	int max_conns;        /* connections served at once */
	int idle_timeout_ms;  /* close a connection silent this long */
	int frame_timeout_ms; /* a started frame must complete within this */
};

/*
 * Serve requests on the listening socket lfd (non-blocking) until *stop is
 * set by a signal handler.  waitmask is the signal mask installed while
 * waiting (ppoll), so a signal blocked elsewhere is delivered only there.
 * Returns 0 on a requested stop, or a negative AR_* code on a fatal error.
 */
int server_run(keystore_t *ks, int lfd, const struct server_opts *opts,
    const sigset_t *waitmask, volatile sig_atomic_t *stop);

#endif /* KEYSVC_SERVER_H */
