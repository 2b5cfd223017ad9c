/* galvani — the command-line client of galvanid.
 *
 * Each command is one (or, for several ids, a few) HTTP requests through
 * http.c; main parses the options every command shares and dispatches
 * through gvc_commands (the command files are listed in cli.h).  With --json
 * the server's JSON is printed as it came, one document per line, and errors
 * are JSON too (report.h), for scripts.
 *
 * Exit codes: 0 success, 1 the request failed (daemon unreachable, HTTP
 * error), 2 usage error (nothing was sent); run --follow, rerun --follow and
 * watch ID exit with the job's status (help.c, "Exit status"). */
#include "cli.h"
#include "help.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef GALVANI_CLI_VERSION
#define GALVANI_CLI_VERSION "unknown"
#endif

/* Every command: its name, its function, and whether it reads options of
 * its own (the others get plain words: main refuses an unknown "-x" for
 * them).  A new command is one line here and its help in help.c. */
static const struct {
    const char *name;
    gvc_cmd_fn fn;
    int own_options;
} gvc_commands[] = {
    {"run", gvc_cmd_run, 1},
    {"rerun", gvc_cmd_rerun, 1},
    {"ls", gvc_cmd_ls, 1},
    {"show", gvc_cmd_show, 0},
    {"pause", gvc_cmd_transition, 0},
    {"resume", gvc_cmd_transition, 0},
    {"cancel", gvc_cmd_transition, 0},
    {"rm", gvc_cmd_rm, 0},
    {"start", gvc_cmd_start, 0},
    {"set", gvc_cmd_set, 0},
    {"params", gvc_cmd_params, 1},
    {"rules", gvc_cmd_rules, 1},
    {"pipeline", gvc_cmd_pipeline, 1},
    {"logs", gvc_cmd_logs, 1},
    {"watch", gvc_cmd_watch, 0},
    {"nodes", gvc_cmd_nodes, 0},
};

/* Take a shared option at argv[*i] if it is one.  Returns 1 if taken, 0 if
 * not a shared option, 2 for a usage error (printed). */
static int gvc_take_shared(gvc_ctx *ctx, const char *cmd, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    if (!strcmp(a, "--json")) {
        ctx->json = 1;
        return 1;
    }
    int rc = gvc_take_value(cmd, argc, argv, i, "--server", "a URL", &ctx->server);
    if (rc == 0)
        rc = gvc_take_value(cmd, argc, argv, i, "--token", "a value", &ctx->token);
    return rc;
}

/* --json anywhere before "--" asks for JSON errors too, including the usage
 * errors found while reading the options that come before it. */
static int gvc_wants_json(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
        if (!strcmp(argv[i], "--json"))
            return 1;
    return 0;
}

/* The command's own arguments into rest[] (*n of them), with the shared
 * options and --help taken out wherever they appear before "--" (after it
 * everything belongs to run's command, even "--json").  0 to go on, -1 when
 * --help was printed (exit 0), or the usage error's 2. */
static int gvc_split_args(gvc_ctx *ctx, const char *cmd, const char *help, int argc, char **argv, int i,
                          char **rest, int *n)
{
    *n = 0;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--")) {
            for (; i < argc; i++)
                rest[(*n)++] = argv[i];
            break;
        }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(help, stdout);
            return -1;
        }
        int t = gvc_take_shared(ctx, cmd, argc, argv, &i);
        if (t == 2)
            return 2;
        if (t == 0)
            rest[(*n)++] = argv[i];
    }
    return 0;
}

int main(int argc, char **argv)
{
    gvc_ctx ctx = {0};
    const char *env = getenv("GALVANI_URL");
    ctx.server = env && *env ? env : GVC_DEFAULT_URL;
    const char *tok = getenv("GALVANI_TOKEN");
    ctx.token = tok && *tok ? tok : NULL;
    ctx.tty = isatty(STDOUT_FILENO);
    ctx.color = ctx.tty && !getenv("NO_COLOR");
    gvc_report_json(gvc_wants_json(argc, argv));

    /* Shared options before the command. */
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(gvc_main_help, stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--version") || !strcmp(argv[i], "-V")) {
            printf("galvani %s\n", GALVANI_CLI_VERSION);
            return 0;
        }
        int t = gvc_take_shared(&ctx, NULL, argc, argv, &i);
        if (t == 2)
            return 2;
        if (t == 0)
            return gvc_usage_error(NULL, "unknown option '%s'", argv[i]);
    }
    if (i >= argc) {
        if (gvc_report_is_json())
            return gvc_usage_error(NULL, "no command given");
        fputs(gvc_main_help, stderr);
        return 2;
    }
    ctx.cmd = argv[i++];
    size_t c = 0, nc = sizeof gvc_commands / sizeof gvc_commands[0];
    while (c < nc && strcmp(gvc_commands[c].name, ctx.cmd))
        c++;
    const char *help = gvc_help_for(ctx.cmd);
    if (c == nc || !help)
        return gvc_usage_error(NULL, "unknown command '%s'", ctx.cmd);

    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    if (!rest)
        return gvc_oom();
    int n = 0;
    int rc = gvc_split_args(&ctx, ctx.cmd, help, argc, argv, i, rest, &n);
    if (rc) {
        free(rest);
        return rc < 0 ? 0 : rc;
    }
    for (int j = 0; j < n && !gvc_commands[c].own_options; j++) {
        if (rest[j][0] == '-') {
            rc = gvc_usage_error(ctx.cmd, "%s: unknown option '%s'", ctx.cmd, rest[j]);
            free(rest);
            return rc;
        }
    }
    if (gvc_http_init(&ctx.http, ctx.server) != 0 || gvc_http_set_token(&ctx.http, ctx.token) != 0) {
        gvc_error("init_failed", "cannot initialise libcurl");
        gvc_http_free(&ctx.http);
        free(rest);
        return 1;
    }
    rc = gvc_commands[c].fn(&ctx, n, rest);
    gvc_http_free(&ctx.http);
    free(rest);
    if (fflush(stdout) != 0 && rc == 0)
        rc = 1;
    return rc;
}
