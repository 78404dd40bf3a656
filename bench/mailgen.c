/*
 * mailgen - write the generator's messages as .eml files (import
 * benchmarks), or only describe them.
 *
 *   mailgen --corpus DIR [--seed S] [--first F] --count N [--out OUTDIR]
 *
 * DIR is the unpacked sample corpus (the model: sizes and words, see
 * mailgen.h).  Messages F .. F+N-1 of seed S (default 1, first 0); with
 * --out each is written as OUTDIR/SSSS-IIIIIIII.eml (LF line ends).
 * Prints the model (corpus messages per class, words, fingerprint: two
 * runs with the same fingerprint and seed make the same bytes), the
 * corpus's and the generated sizes' percentiles, messages per kind, and
 * the generation rate.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ar.h"
#include "mailgen.h"

static void usage(void)
{
	fprintf(stderr, "usage: mailgen --corpus DIR [--seed S] [--first F] "
	    "--count N [--out OUTDIR]\n");
	exit(2);
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	return x < y ? -1 : x > y;
}

static void percentiles(const char *what, size_t *v, size_t n)
{
	unsigned long long sum = 0;

	if (!n)
		return;
	qsort(v, n, sizeof *v, cmp_size);
	for (size_t k = 0; k < n; k++)
		sum += v[k];
	printf("%s sizes: n %zu, mean %llu, p10 %zu, p50 %zu, p90 %zu, "
	    "p99 %zu, p99.9 %zu, max %zu bytes\n", what, n, sum / n,
	    v[n / 10], v[n / 2], v[n * 9 / 10], v[n * 99 / 100],
	    v[n * 999 / 1000], v[n - 1]);
}

/* The corpus's own sizes, for comparison. */
static void corpus_sizes(const char *dir)
{
	size_t *v = NULL, n = 0, cap = 0;
	char path[4096];
	DIR *d = opendir(dir);
	struct dirent *de;
	struct stat st;

	if (!d)
		return;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < 5 || strcmp(de->d_name + l - 4, ".eml") ||
		    ar_path(path, sizeof path, "%s/%s", dir, de->d_name) ||
		    stat(path, &st) ||
		    ar_grow((void **)&v, &cap, n, sizeof *v))
			continue;
		v[n++] = (size_t)st.st_size;
	}
	closedir(d);
	percentiles("corpus   ", v, n);
	free(v);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "corpus", required_argument, NULL, 'c' },
		{ "seed", required_argument, NULL, 's' },
		{ "first", required_argument, NULL, 'f' },
		{ "count", required_argument, NULL, 'n' },
		{ "out", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	const char *corpus = NULL, *outdir = NULL;
	unsigned long long seed = 1, first = 0, count = 0;
	char err[512], *e;
	int o, rc;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'c': corpus = optarg; break;
		case 'o': outdir = optarg; break;
		case 's': case 'f': case 'n': {
			errno = 0;
			unsigned long long v = strtoull(optarg, &e, 10);
			if (errno || *e || !*optarg) {
				fprintf(stderr, "mailgen: --%s: not a number: "
				    "%s\n", o == 's' ? "seed" : o == 'f' ?
				    "first" : "count", optarg);
				return 2;
			}
			*(o == 's' ? &seed : o == 'f' ? &first : &count) = v;
			break;
		}
		default: usage();
		}
	}
	if (!corpus || !count || optind != argc)
		usage();
	if (outdir && (rc = ar_mkdirs(outdir, 0755))) {
		fprintf(stderr, "mailgen: %s: %s\n", outdir, ar_strerror(rc));
		return 1;
	}

	mailgen_t *g;
	mailgen_info_t info;
	int64_t t0 = ar_mono_us();
	if ((rc = mailgen_open(&g, corpus, err, sizeof err))) {
		fprintf(stderr, "mailgen: %s\n", err);
		return 1;
	}
	mailgen_info(g, &info);
	printf("model: %zu corpus messages (%zu plain, %zu multipart without "
	    "attachment, %zu with an attachment), %zu words of text, %zu "
	    "distinct, fingerprint %016llx, read in %.2f s\n", info.messages,
	    info.plain, info.alternative, info.attachment, info.tokens,
	    info.words, (unsigned long long)info.fingerprint,
	    (double)(ar_mono_us() - t0) / 1e6);
	corpus_sizes(corpus);

	size_t *sizes = malloc(count * sizeof *sizes);
	size_t kinds[4] = { 0 };
	unsigned long long bytes = 0;
	mailgen_buf_t b = { 0 };
	if (!sizes) {
		fprintf(stderr, "mailgen: out of memory\n");
		return 1;
	}
	t0 = ar_mono_us();
	for (unsigned long long k = 0; k < count; k++) {
		enum mailgen_kind kind;
		if (mailgen_message(g, seed, first + k, 0, &b, &kind)) {
			fprintf(stderr, "mailgen: out of memory\n");
			return 1;
		}
		sizes[k] = b.len;
		bytes += b.len;
		kinds[kind]++;
		if (outdir) {
			char path[4096];
			FILE *f;
			if ((rc = ar_path(path, sizeof path, "%s/%04llu-%08llu"
			    ".eml", outdir, seed, first + k)) ||
			    !(f = fopen(path, "wx"))) {
				fprintf(stderr, "mailgen: %s: %s\n", path,
				    rc ? ar_strerror(rc) : strerror(errno));
				return 1;
			}
			if (fwrite(b.p, 1, b.len, f) != b.len || fclose(f)) {
				fprintf(stderr, "mailgen: %s: %s\n", path,
				    strerror(errno));
				return 1;
			}
		}
	}
	double s = (double)(ar_mono_us() - t0) / 1e6;
	percentiles("generated", sizes, count);
	printf("generated: %llu messages (seed %llu, %llu..%llu): %zu plain, "
	    "%zu multipart/alternative, %zu with an attachment, %zu of 1-10 "
	    "MB; %.1f MB in %.2f s (%.0f msg/s, %.0f MB/s)%s%s\n", count, seed,
	    first, first + count - 1, kinds[MAILGEN_PLAIN],
	    kinds[MAILGEN_ALTERNATIVE], kinds[MAILGEN_ATTACHMENT],
	    kinds[MAILGEN_BIG], (double)bytes / 1e6, s, (double)count / s,
	    (double)bytes / 1e6 / s, outdir ? ", written to " : "",
	    outdir ? outdir : "");
	free(b.p);
	free(sizes);
	mailgen_close(g);
	return 0;
}
