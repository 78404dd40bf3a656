/*
 * cli.h - archive-keysvc's command line helpers and subcommands (private
 * to keysvc/): keysvc_main.c dispatches "backup", "restore" and
 * "backup-info" to backup_cli.c.
 */
#ifndef KEYSVC_CLI_H
#define KEYSVC_CLI_H

#include <stddef.h>

#define CLI_PASS_MAX 1024

/* Read a passphrase from fd (up to the first newline or EOF, at most
 * CLI_PASS_MAX - 1 bytes) into sodium_malloc'd memory the caller frees
 * with sodium_free; fd is closed.  AR_EINVAL when empty or too long. */
int cli_read_passphrase(int fd, char **out, size_t *outlen);

/* Decimal in lo..hi.  0 or AR_EINVAL. */
int cli_parse_int(const char *s, int lo, int hi, int *out);

/* Subcommands; argv[0] is the subcommand's name.  Exit status: 0, 1 on
 * an error, 2 on a usage error. */
int cli_backup(int argc, char **argv);
int cli_restore(int argc, char **argv);
int cli_backup_info(int argc, char **argv);

#endif /* KEYSVC_CLI_H */
