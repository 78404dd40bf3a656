/*
 * net.h - client address checks shared by archivectl (validation) and the
 * SMTP receivers (matching), and listener addresses.
 */
#ifndef AR_NET_H
#define AR_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct ar_cidr {
	int family;                 /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	int prefix;                 /* bits */
};

/* "192.0.2.0/24", "2001:db8::/32", or a single address.  0 or
 * AR_EINVAL. */
int ar_cidr_parse(const char *text, struct ar_cidr *out);
/* Is the address (struct sockaddr_in/_in6) inside the network?  An IPv4
 * address seen as IPv4-mapped IPv6 matches IPv4 networks. */
int ar_cidr_match(const struct ar_cidr *net, const struct sockaddr *sa);

/* "host:port" or "[v6]:port" (port 0..65535) into host (brackets
 * removed) and *port.  0 or AR_EINVAL. */
int ar_hostport_parse(const char *hostport, char *host, size_t hostlen,
    unsigned *port);

#endif
