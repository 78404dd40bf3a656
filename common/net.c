/*
 * net.c - CIDR parsing and matching (see net.h).
 */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "ar.h"

int ar_cidr_parse(const char *text, struct ar_cidr *out)
{
	char buf[64], *slash, *end;
	long prefix = -1;
	int max;

	memset(out, 0, sizeof *out);
	if (strlen(text) >= sizeof buf)
		return AR_EINVAL;
	ar_strlcpy(buf, text, sizeof buf);
	if ((slash = strchr(buf, '/'))) {
		*slash = '\0';
		prefix = strtol(slash + 1, &end, 10);
		if (slash[1] == '\0' || *end)
			return AR_EINVAL;
	}
	if (inet_pton(AF_INET, buf, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		return AR_EINVAL;
	}
	if (prefix < 0)
		prefix = max;
	if (prefix > max)
		return AR_EINVAL;
	out->prefix = (int)prefix;
	return 0;
}

static int prefix_equal(const uint8_t *a, const uint8_t *b, int bits)
{
	int bytes = bits / 8, rest = bits % 8;
	if (memcmp(a, b, (size_t)bytes))
		return 0;
	if (rest) {
		uint8_t mask = (uint8_t)(0xff << (8 - rest));
		return (a[bytes] & mask) == (b[bytes] & mask);
	}
	return 1;
}

int ar_cidr_match(const struct ar_cidr *net, const struct sockaddr *sa)
{
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff };
	const uint8_t *a;

	if (sa->sa_family == AF_INET) {
		a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
		return net->family == AF_INET &&
		    prefix_equal(a, net->addr, net->prefix);
	}
	if (sa->sa_family != AF_INET6)
		return 0;
	a = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (net->family == AF_INET6)
		return prefix_equal(a, net->addr, net->prefix);
	return !memcmp(a, v4mapped, 12) &&
	    prefix_equal(a + 12, net->addr, net->prefix);
}

int ar_hostport_parse(const char *hostport, char *host, size_t hostlen,
    unsigned *port)
{
	const char *colon = hostport ? strrchr(hostport, ':') : NULL;
	unsigned long p;
	size_t n;
	char *end;

	if (!colon || colon == hostport ||
	    (n = (size_t)(colon - hostport)) >= hostlen)
		return AR_EINVAL;
	memcpy(host, hostport, n);
	host[n] = '\0';
	if (host[0] == '[') {
		if (n < 3 || host[n - 1] != ']')
			return AR_EINVAL;
		memmove(host, host + 1, n - 2);
		host[n - 2] = '\0';
	}
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || p > 65535)
		return AR_EINVAL;
	*port = (unsigned)p;
	return 0;
}
