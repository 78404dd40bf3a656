/*
 * keysvc_main.c - archive-keysvc: command line, data directory, socket,
 * signals.  See docs/keysvc.md.
 *
 *   archive-keysvc [-d DIR] [-s SOCKET] [--passphrase-fd N] [options]
 *   archive-keysvc init -d DIR [--passphrase-fd N] [--pwhash-cost C]
 *   archive-keysvc backup|restore|backup-info ...   (backup_cli.c)
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <sodium.h>

#include "ar.h"
#include "keysvc/cli.h"
#include "keysvc/keystore.h"
#include "keysvc/server.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
	    "usage: archive-keysvc -d DIR [-s SOCKET] [--passphrase-fd N]\n"
	    "                      [--max-conns N] [--idle-timeout SEC] [-v]\n"
	    "       archive-keysvc init -d DIR [--passphrase-fd N]\n"
	    "                      [--pwhash-cost interactive|moderate|sensitive]\n"
	    "       archive-keysvc backup -d DIR -o FILE ...   (backup -h)\n"
	    "       archive-keysvc restore -d DIR -i FILE ...  (restore -h)\n"
	    "       archive-keysvc backup-info FILE\n"
	    "\n"
	    "  -d DIR             data directory (KEK, signing key, tenant keys)\n"
	    "  -s SOCKET          unix socket (default DIR/keysvc.sock)\n"
	    "  --passphrase-fd N  read the KEK passphrase from file descriptor N\n"
	    "                     (up to the first newline or EOF)\n"
	    "  --pwhash-cost C    Argon2id cost when sealing a new KEK\n"
	    "                     (default moderate)\n"
	    "  --max-conns N      connections served at once (default 128)\n"
	    "  --idle-timeout SEC close idle connections (default 60)\n"
	    "  -v                 debug logging\n");
}

/* Read the passphrase into locked memory.  0 or an AR_* code. */
int cli_read_passphrase(int fd, char **out, size_t *outlen)
{
	char *buf = sodium_malloc(CLI_PASS_MAX + 1);
	size_t len = 0;

	*out = NULL;
	*outlen = 0;
	if (!buf)
		return AR_ENOMEM;
	while (len < CLI_PASS_MAX) {
		ssize_t r = read(fd, buf + len, CLI_PASS_MAX - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			sodium_free(buf);
			return AR_EIO;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (memchr(buf, '\n', len))
			break;
	}
	close(fd);
	for (size_t i = 0; i < len; i++)
		if (buf[i] == '\n') {
			len = i;
			break;
		}
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	if (len == 0 || len >= CLI_PASS_MAX) {
		sodium_free(buf);
		return AR_EINVAL;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
}

int cli_parse_int(const char *s, int lo, int hi, int *out)
{
	char *end;
	long v;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return AR_EINVAL;
	*out = (int)v;
	return 0;
}

/* Exclusive lock on DIR/keysvc.lock, held for the life of the process. */
static int lock_dir(const char *dir)
{
	char path[4096];
	int fd;
	if (ar_path(path, sizeof path, "%s/keysvc.lock", dir))
		return -1;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		ar_log(AR_LOG_ERR, "op=start file=%s status=error errno=%d "
		    "msg=\"cannot open lock file\"", path, errno);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		ar_log(AR_LOG_ERR, "op=start dir=%s status=error msg=\"another "
		    "archive-keysvc is running on this directory\"", dir);
		close(fd);
		return -1;
	}
	return fd;
}

/* Bind the listening socket (mode 0600), replacing a stale socket file. */
static int listen_socket(const char *path)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd;

	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sa.sun_path) {
		ar_log(AR_LOG_ERR, "op=start socket=%s status=error "
		    "msg=\"socket path too long\"", path);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			ar_log(AR_LOG_ERR, "op=start socket=%s status=error "
			    "msg=\"exists and is not a socket\"", path);
			return -1;
		}
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa,
		    sizeof sa) == 0) {
			close(fd);
			ar_log(AR_LOG_ERR, "op=start socket=%s status=error "
			    "msg=\"socket in use by another process\"", path);
			return -1;
		}
		if (fd >= 0)
			close(fd);
		if (unlink(path) < 0) {
			ar_log(AR_LOG_ERR, "op=start socket=%s status=error "
			    "errno=%d msg=\"cannot remove stale socket\"", path,
			    errno);
			return -1;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    chmod(path, 0600) < 0 || listen(fd, 64) < 0) {
		ar_log(AR_LOG_ERR, "op=start socket=%s status=error errno=%d "
		    "msg=\"cannot listen\"", path, errno);
		close(fd);
		return -1;
	}
	return fd;
}

static void harden(void)
{
	struct rlimit rl = { 0, 0 };
	umask(077);
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);   /* no core, no ptrace */
	(void)setrlimit(RLIMIT_CORE, &rl);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "passphrase-fd", required_argument, NULL, 'p' },
		{ "pwhash-cost",   required_argument, NULL, 'c' },
		{ "max-conns",     required_argument, NULL, 'm' },
		{ "idle-timeout",  required_argument, NULL, 'i' },
		{ "help",          no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct server_opts sopts = { 128, 60000, 10000 };
	enum keystore_cost cost = KEYSTORE_COST_MODERATE;
	const char *dir = NULL, *sock = NULL;
	char sockbuf[4096], err[512], hex[2 * KEYSVC_PK_LEN + 1];
	char *pass = NULL;
	size_t passlen = 0;
	int init = 0, passfd = -1, opt, rc, lockfd, lfd, secs;
	keystore_t *ks = NULL;
	uint8_t pk[KEYSVC_PK_LEN];
	struct sigaction sa;
	sigset_t block, waitmask;

	ar_log_set_prog("archive-keysvc");
	if (argc > 1 && (!strcmp(argv[1], "backup") ||
	    !strcmp(argv[1], "restore") || !strcmp(argv[1], "backup-info"))) {
		harden();
		if (sodium_init() < 0)
			return 1;
		if (!strcmp(argv[1], "backup"))
			return cli_backup(argc - 1, argv + 1);
		if (!strcmp(argv[1], "restore"))
			return cli_restore(argc - 1, argv + 1);
		return cli_backup_info(argc - 1, argv + 1);
	}
	if (argc > 1 && strcmp(argv[1], "init") == 0) {
		init = 1;
		argv[1] = argv[0];
		argc--;
		argv++;
	}
	while ((opt = getopt_long(argc, argv, "d:s:vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'd': dir = optarg; break;
		case 's': sock = optarg; break;
		case 'v': ar_log_set_level(AR_LOG_DEBUG); break;
		case 'p':
			if (cli_parse_int(optarg, 0, 1 << 20, &passfd)) {
				fprintf(stderr, "archive-keysvc: bad "
				    "--passphrase-fd '%s'\n", optarg);
				return 2;
			}
			break;
		case 'c':
			if (!strcmp(optarg, "interactive"))
				cost = KEYSTORE_COST_INTERACTIVE;
			else if (!strcmp(optarg, "moderate"))
				cost = KEYSTORE_COST_MODERATE;
			else if (!strcmp(optarg, "sensitive"))
				cost = KEYSTORE_COST_SENSITIVE;
			else {
				fprintf(stderr, "archive-keysvc: bad "
				    "--pwhash-cost '%s'\n", optarg);
				return 2;
			}
			break;
		case 'm':
			if (cli_parse_int(optarg, 1, 4096, &sopts.max_conns)) {
				fprintf(stderr, "archive-keysvc: bad "
				    "--max-conns '%s' (1..4096)\n", optarg);
				return 2;
			}
			break;
		case 'i':
			if (cli_parse_int(optarg, 1, 86400, &secs)) {
				fprintf(stderr, "archive-keysvc: bad "
				    "--idle-timeout '%s' (1..86400)\n", optarg);
				return 2;
			}
			sopts.idle_timeout_ms = secs * 1000;
			if (sopts.frame_timeout_ms > sopts.idle_timeout_ms)
				sopts.frame_timeout_ms = sopts.idle_timeout_ms;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || !dir || !*dir) {
		usage(stderr);
		return 2;
	}
	harden();
	if (sodium_init() < 0) {
		ar_log(AR_LOG_ERR, "op=start status=error msg=\"sodium_init "
		    "failed\"");
		return 1;
	}
	if (passfd >= 0 && (rc = cli_read_passphrase(passfd, &pass, &passlen))) {
		ar_log(AR_LOG_ERR, "op=start status=error msg=\"cannot read "
		    "passphrase from fd %d: %s\"", passfd,
		    rc == AR_EINVAL ? "empty or too long" : ar_strerror(rc));
		return 1;
	}
	if ((rc = ar_mkdirs(dir, 0700))) {
		ar_log(AR_LOG_ERR, "op=start dir=%s status=error msg=\"cannot "
		    "create data directory: %s\"", dir, ar_strerror(rc));
		sodium_free(pass);
		return 1;
	}
	if ((lockfd = lock_dir(dir)) < 0) {
		sodium_free(pass);
		return 1;
	}
	err[0] = '\0';
	if (init) {
		rc = keystore_init(dir, pass, passlen, cost, err, sizeof err);
		if (rc == 0)
			rc = keystore_open(&ks, dir, pass, passlen, err,
			    sizeof err);
		sodium_free(pass);
		if (rc) {
			ar_log(AR_LOG_ERR, "op=init dir=%s status=error rc=%d "
			    "msg=\"%s\"", dir, rc, err);
			return 1;
		}
		keystore_public_key(ks, pk);
		printf("%s\n", ar_hex(pk, KEYSVC_PK_LEN, hex));
		keystore_close(ks);
		return 0;
	}
	rc = keystore_probe(dir);
	if (rc == AR_ENOENT) {
		ar_log(AR_LOG_INFO, "op=start dir=%s msg=\"new data directory, "
		    "creating keys\"", dir);
		rc = keystore_init(dir, pass, passlen, cost, err, sizeof err);
	} else if (rc == AR_ECORRUPT) {
		snprintf(err, sizeof err, "%s holds keys but no kek file; "
		    "restore %s/kek from backup", dir, dir);
	}
	if (rc == 0)
		rc = keystore_open(&ks, dir, pass, passlen, err, sizeof err);
	if (rc == 0 && pass && !keystore_sealed(ks))
		ar_log(AR_LOG_WARN, "op=start dir=%s msg=\"kek is not sealed; "
		    "the passphrase was not used\"", dir);
	sodium_free(pass);
	if (rc) {
		ar_log(AR_LOG_ERR, "op=start dir=%s status=error rc=%d "
		    "msg=\"refusing to start: %s\"", dir, rc, err);
		return 1;
	}

	if (!sock) {
		if (ar_path(sockbuf, sizeof sockbuf, "%s/keysvc.sock", dir)) {
			keystore_close(ks);
			return 1;
		}
		sock = sockbuf;
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	if (sigprocmask(SIG_BLOCK, &block, &waitmask) < 0 ||
	    sigaction(SIGTERM, &sa, NULL) < 0 ||
	    sigaction(SIGINT, &sa, NULL) < 0 ||
	    signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		keystore_close(ks);
		return 1;
	}
	sigdelset(&waitmask, SIGTERM);
	sigdelset(&waitmask, SIGINT);
	if ((lfd = listen_socket(sock)) < 0) {
		keystore_close(ks);
		return 1;
	}
	keystore_public_key(ks, pk);
	ar_log(AR_LOG_INFO, "op=start dir=%s socket=%s sealed=%d pk=%s "
	    "max_conns=%d idle_timeout_ms=%d status=ready", dir, sock,
	    keystore_sealed(ks), ar_hex(pk, KEYSVC_PK_LEN, hex),
	    sopts.max_conns, sopts.idle_timeout_ms);

	rc = server_run(ks, lfd, &sopts, &waitmask, &stop_flag);

	close(lfd);
	if (unlink(sock) < 0 && errno != ENOENT)
		ar_log(AR_LOG_WARN, "op=stop socket=%s errno=%d "
		    "msg=\"cannot remove socket\"", sock, errno);
	keystore_close(ks);     /* wipes the KEK and the signing key */
	close(lockfd);
	ar_log(AR_LOG_INFO, "op=stop dir=%s status=%s", dir,
	    rc == 0 ? "ok" : "error");
	return rc == 0 ? 0 : 1;
}
