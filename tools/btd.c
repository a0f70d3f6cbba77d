/* btd.c: the btd command -- run a program under the preload, inspect and
 * check pools, serve as a memory node, and (later) restore pools. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/settings.h"
#include "../net/memd.h"
#include "btd.h"
#include "../net/repl.h"
#include "pool_cmds.h"

#define PRELOAD_NAME "libbtd_preload.so"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: btd <command> [options]\n"
		"\n"
		"commands:\n"
		"  run [--stats] [--pool PATH] [--policy none|tagged|large|all] -- PROGRAM [ARGS...]\n"
		"             run PROGRAM with its allocations taken over by bartender\n"
		"  info POOL  header, state, roots and usage of a pool (read-only; exit 2 when\n"
		"             it is not a readable pool)\n"
		"  check [--repair] POOL\n"
		"             run the recovery a program's open would run, verify every heap\n"
		"             invariant and that every allocated block is reachable; without\n"
		"             --repair on a private copy (the file is never written), with it\n"
		"             repairing what it finds; exit 0 clean, 1 problems found (and\n"
		"             repaired), 2 not a usable pool\n"
		"  restore POOL --from HOST:PORT[,HOST:PORT...] [--key FILE] [--uuid UUID]\n"
		"             rebuild a lost pool from the newest consistent image the memory\n"
		"             nodes hold of it (--from and --key default to BTD_REPLICAS and\n"
		"             BTD_KEY_FILE; --uuid: the image of that pool, whatever path it\n"
		"             had); the next open recovers it as after a crash\n"
		"  memd --pool PATH --list | --drop UUID|CLIENT-POOL\n"
		"             the leases of a stopped node, or free one\n"
		"  memd --pool PATH --listen [ADDR:]PORT --key FILE [--size SIZE] [-v]\n"
		"             serve as a memory node: keep the replicas of clients' pools in\n"
		"             the node pool PATH (created with SIZE, default 1G, when missing),\n"
		"             on ADDR (default 127.0.0.1) and PORT (0: any; the line\n"
		"             'memd: listening on ADDR:PORT' says which), for clients that\n"
		"             know the key in FILE; until SIGTERM or SIGINT\n"
		"  help       this text\n"
		"  --version  the version of btd\n"
		"\n"
		"The run options set BTD_STATS, BTD_POOL and BTD_POLICY for PROGRAM and its\n"
		"children; every BTD_* variable of the environment is passed on as well.\n");
}

/* The preload library: beside the btd binary in the build tree
 * (tools/btd, interpose/libbtd_preload.so), else in the installed libdir. */
static int find_preload(char *out, size_t cap)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');

		if (slash) {
			*slash = '\0';
			static const char *const rel[] = {
				"../interpose/" PRELOAD_NAME, /* build tree */
				PRELOAD_NAME,
			};
			for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
				if (snprintf(out, cap, "%s/%s", exe, rel[i]) < (int)cap &&
				    !access(out, R_OK))
					return 0;
			}
		}
	}
	snprintf(out, cap, "%s/%s", BTD_LIBDIR, PRELOAD_NAME);
	return access(out, R_OK) ? -1 : 0;
}

/* The value of option a: "--opt=VALUE", or the next argument -- which may
 * be neither missing nor "--" nor another option (`btd run --pool -- prog`
 * must not create a pool named "--"). */
static const char *option_value(const char *a, const char *name, int argc, char **argv, int *i)
{
	size_t n = strlen(name);

	if (!strncmp(a, name, n) && a[n] == '=')
		return a[n + 1] ? a + n + 1 : NULL;
	if (*i + 1 >= argc || !strncmp(argv[*i + 1], "--", 2))
		return NULL;
	return argv[++*i];
}

static int is_option(const char *a, const char *name)
{
	size_t n = strlen(name);

	return !strncmp(a, name, n) && (a[n] == '\0' || a[n] == '=');
}

static int cmd_run(int argc, char **argv)
{
	int i;

	for (i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--")) {
			i++;
			break;
		} else if (!strcmp(a, "--stats")) {
			setenv("BTD_STATS", "1", 1);
		} else if (is_option(a, "--pool") || is_option(a, "--policy")) {
			const char *name = is_option(a, "--pool") ? "--pool" : "--policy";
			const char *v = option_value(a, name, argc, argv, &i);

			if (!v) {
				const char *what = !strcmp(name, "--pool") ? "PATH" : "POLICY";

				fprintf(stderr, "btd run: %s needs a value (%s %s or %s=%s): "
					"see 'btd help'\n", name, name, what, name, what);
				return 2;
			}
			if (!strcmp(name, "--policy")) {
				int ok = 0;

				for (int p = POLICY_NONE; p <= POLICY_ALL; p++)
					ok |= !strcmp(v, settings_policy_name(p));
				if (!ok) {
					fprintf(stderr, "btd run: --policy %s is not valid: "
						"use none, tagged, large or all\n", v);
					return 2;
				}
			}
			setenv(!strcmp(name, "--pool") ? "BTD_POOL" : "BTD_POLICY", v, 1);
		} else if (a[0] == '-') {
			fprintf(stderr, "btd run: unknown option %s: see 'btd help'\n", a);
			return 2;
		} else {
			break; /* the program, without a "--" */
		}
	}
	if (i >= argc) {
		fprintf(stderr, "btd run: no program given: btd run [options] -- PROGRAM [ARGS...]\n");
		return 2;
	}
	char lib[PATH_MAX];

	if (find_preload(lib, sizeof(lib))) {
		fprintf(stderr, "btd run: %s was found neither beside btd nor in %s: "
			"build it (ninja -C build) or install it (meson install)\n",
			PRELOAD_NAME, BTD_LIBDIR);
		return 2;
	}
	const char *old = getenv("LD_PRELOAD");
	char *preload;

	if (asprintf(&preload, "%s%s%s", lib, old && *old ? ":" : "", old ? old : "") < 0)
		return 2;
	setenv("LD_PRELOAD", preload, 1);
	free(preload);
	execvp(argv[i], argv + i);
	fprintf(stderr, "btd run: cannot run %s: %s\n", argv[i], strerror(errno));
	return errno == ENOENT ? 127 : 126;
}

static int cmd_restore(int argc, char **argv)
{
	const char *pool = NULL, *from = NULL, *key = getenv("BTD_KEY_FILE"), *uuid = NULL;

	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (is_option(a, "--from") || is_option(a, "--key") || is_option(a, "--uuid")) {
			const char *name = is_option(a, "--from") ? "--from"
					 : is_option(a, "--key") ? "--key" : "--uuid";
			const char *v = option_value(a, name, argc, argv, &i);

			if (!v) {
				fprintf(stderr, "btd restore: %s needs a value: see 'btd help'\n", name);
				return 2;
			}
			*(!strcmp(name, "--from") ? &from : !strcmp(name, "--key") ? &key : &uuid) = v;
		} else if (a[0] == '-' || pool) {
			fprintf(stderr, "btd restore: unexpected argument %s: btd restore POOL --from "
				"HOST:PORT [--key FILE]\n", a);
			return 2;
		} else {
			pool = a;
		}
	}
	if (!from)
		from = getenv("BTD_REPLICAS"); /* as --key defaults to BTD_KEY_FILE */
	if (!pool || !from || !*from) {
		fprintf(stderr, "btd restore: give the pool and the memory nodes: btd restore "
			"POOL --from HOST:PORT[,HOST:PORT...] [--key FILE]\n");
		return 2;
	}
	struct repl_config c = { .nodes = from, .key_file = key, .uuid = uuid };
	double secs = 0;
	uint64_t bytes = 0;
	int st = repl_restore(pool, &c, isatty(2) || getenv("BTD_PROGRESS"), &secs, &bytes);

	if (st) {
		const char *why = btd_last_error();

		fprintf(stderr, "btd %s%s\n", strncmp(why, "restore: ", 9) ? "restore: " : "", why);
		return st == BTD_ERR_NOENT || st == BTD_ERR_BUSY || st == BTD_ERR_INVAL ? 1 : 2;
	}
	printf("btd restore: %s restored: %.1f MiB in %.3f s (%.0f MiB/s); its next open "
	       "recovers it as after a crash\n", pool, (double)bytes / (1 << 20), secs,
	       secs > 0 ? (double)bytes / (1 << 20) / secs : 0.0);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];

	if (!strcmp(cmd, "run"))
		return cmd_run(argc - 2, argv + 2);
	if (!strcmp(cmd, "info") || !strcmp(cmd, "check")) {
		int repair = argc == 4 && !strcmp(cmd, "check") && !strcmp(argv[2], "--repair");

		if (argc != 3 + repair || argv[argc - 1][0] == '-') {
			fprintf(stderr, "btd %s: give one pool file: btd %s%s POOL\n", cmd, cmd,
				!strcmp(cmd, "check") ? " [--repair]" : "");
			return 2;
		}
		return !strcmp(cmd, "info") ? cmd_info(argv[2]) : cmd_check(argv[argc - 1], repair);
	}
	if (!strcmp(cmd, "restore"))
		return cmd_restore(argc - 2, argv + 2);
	if (!strcmp(cmd, "memd"))
		return memd_main(argc - 2, argv + 2);
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
		printf("btd %s\n", BTD_VERSION_STRING);
		return 0;
	}
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "btd: unknown command '%s': see 'btd help'\n", cmd);
	return 2;
}
