/*
 * copy_fsync - the disk baseline of bench/store: copy files into a
 * directory, each with its own fsync (and the directory fsync'd once at
 * the end), with T threads.  Prints files/s and MB/s.
 *
 * With -d it does the file operations of the ingest pipeline's drain
 * instead (bench/drain's floor): each file is copied to a temporary name,
 * fsync'd, renamed into place and its source unlinked, and the destination
 * directory is fsync'd after every 64 files, as a catalog batch does.
 *
 *   copy_fsync [-d] THREADS DESTDIR FILE...
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char **files;
static int nfiles;
static const char *dest;
static atomic_int next;
static atomic_llong bytes;
static int drain;          /* -d: temp name, rename, unlink the source */

/* -d: every 64 files one thread fsyncs the destination directory. */
static void drain_step(int i, const char *tmp, const char *path)
{
	int dfd;

	if (rename(tmp, path) < 0 || unlink(files[i]) < 0) {
		perror(path);
		exit(1);
	}
	if (i % 64 == 63) {
		if ((dfd = open(dest, O_RDONLY | O_DIRECTORY)) < 0 ||
		    fsync(dfd) < 0) {
			perror(dest);
			exit(1);
		}
		close(dfd);
	}
}

static void *worker(void *arg)
{
	static __thread char buf[1 << 16];
	(void)arg;
	for (;;) {
		int i = atomic_fetch_add(&next, 1), in, out;
		char path[4096], tmp[4200];
		ssize_t n;
		if (i >= nfiles)
			return NULL;
		snprintf(path, sizeof path, "%s/%d", dest, i);
		snprintf(tmp, sizeof tmp, "%s.tmp", path);
		if ((in = open(files[i], O_RDONLY)) < 0 ||
		    (out = open(drain ? tmp : path, O_WRONLY | O_CREAT | O_EXCL,
		    0600)) < 0) {
			perror(files[i]);
			exit(1);
		}
		while ((n = read(in, buf, sizeof buf)) > 0) {
			if (write(out, buf, (size_t)n) != n) {
				perror(path);
				exit(1);
			}
			atomic_fetch_add(&bytes, n);
		}
		if (fsync(out) < 0 || close(out) < 0) {
			perror(path);
			exit(1);
		}
		close(in);
		if (drain)
			drain_step(i, tmp, path);
	}
}

int main(int argc, char **argv)
{
	struct timespec a, z;
	pthread_t tid[64];
	int threads, dfd;
	double s;

	if (argc > 1 && strcmp(argv[1], "-d") == 0) {
		drain = 1;
		argc--, argv++;
	}
	if (argc < 4) {
		fprintf(stderr, "usage: copy_fsync [-d] THREADS DESTDIR "
		    "FILE...\n");
		return 2;
	}
	threads = atoi(argv[1]);
	if (threads < 1 || threads > 64)
		threads = 1;
	dest = argv[2];
	files = argv + 3;
	nfiles = argc - 3;
	if (mkdir(dest, 0700) < 0 && errno != EEXIST) {
		perror(dest);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int t = 0; t < threads; t++)
		pthread_create(&tid[t], NULL, worker, NULL);
	for (int t = 0; t < threads; t++)
		pthread_join(tid[t], NULL);
	if ((dfd = open(dest, O_RDONLY | O_DIRECTORY)) < 0 || fsync(dfd) < 0) {
		perror(dest);
		return 1;
	}
	close(dfd);
	clock_gettime(CLOCK_MONOTONIC, &z);
	s = (double)(z.tv_sec - a.tv_sec) + (double)(z.tv_nsec - a.tv_nsec) / 1e9;
	printf("{\"mode\": \"%s\", \"threads\": %d, \"files\": %d, "
	    "\"seconds\": %.3f, "
	    "\"files_per_s\": %.0f, \"mb_per_s\": %.1f}\n",
	    drain ? "drain" : "copy", threads, nfiles, s,
	    nfiles / s, (double)atomic_load(&bytes) / 1e6 / s);
	return 0;
}
