/* galvani CLI: the help texts (see help.h).  Kept apart from main.c so that
 * the command code reads without two screens of strings in the way. */
#include "help.h"

#include <string.h>

const char gvc_main_help[] =
    "usage: galvani [--server URL] [--token TOKEN] [--json] COMMAND [ARGS...]\n"
    "\n"
    "Control the jobs of galvanid.\n"
    "\n"
    "Jobs:\n"
    "  run [OPTIONS] -- CMD ARGS...   create a job; prints its id (--follow: watch it to the end)\n"
    "  ls [--status S[,S...]]         list jobs (id, name, status, progress, started)\n"
    "  show ID                        one job's fields\n"
    "  pause ID...                    pause running jobs\n"
    "  resume ID...                   resume paused jobs\n"
    "  cancel ID...                   cancel queued, running or paused jobs\n"
    "  set ID KEY=VALUE...            change a job's params (VALUE is JSON if it parses, else a string)\n"
    "  params [--history] ID          a job's params and revision (--history: every change)\n"
    "  rules [add|rm|--job ID]        global rules; a job's rules and their firings\n"
    "  logs [-f] ID                   print a job's captured output (-f: follow it until the job ends)\n"
    "  watch [ID...]                  live progress of all active jobs, or of these until they end\n"
    "\n"
    "Pipelines:\n"
    "  pipeline run FILE.json [--follow]  create a pipeline (--follow: print step changes to the end)\n"
    "  pipeline ls | show ID          list pipelines; one pipeline's steps and rule firings\n"
    "  pipeline pause|resume|cancel ID  act on a whole pipeline\n"
    "  pipeline retry ID STEP         re-run a step, then the steps after it\n"
    "  pipeline rm ID                 delete a finished pipeline and its jobs\n"
    "\n"
    "The demo job (the seed's routes):\n"
    "  start                          start a demo job\n"
    "  pause | resume | cancel        with no ID: act on the demo job\n"
    "\n"
    "Options (anywhere before --):\n"
    "  --server URL   galvanid's address (default $GALVANI_URL, else " GVC_DEFAULT_URL ")\n"
    "  --token TOKEN  galvanid's bearer token, if it requires one (default $GALVANI_TOKEN)\n"
    "  --json         print the server's JSON instead of text\n"
    "  --help         help for galvani or for a command\n"
    "  --version      print the version\n"
    "\n"
    "Exit status: 0 ok, 1 request failed (daemon down, unknown job, refused), 2 usage error.\n";

static const char *const gvc_cmd_help[][2] = {
    {"run", "usage: galvani run [--name N] [--param KEY=VALUE]... [--pause-mode stop|cooperative] [--shell]\n"
            "                   [--json] -- CMD ARGS...\n"
            "\n"
            "Create a job running CMD with ARGS (no shell unless --shell: then CMD ARGS... are joined\n"
            "with spaces and run by /bin/sh -c).  Prints the new job's id.\n"
            "  --name N          the job's name (default: the program name)\n"
            "  --param K=V       a param; V is JSON if it parses, else a string (repeatable)\n"
            "  --pause-mode M    stop (SIGSTOP, default) or cooperative (the job is told to pause)\n"
            "  --label K=V       a label (repeatable; galvani ls --label K=V, global rules match them)\n"
            "  --rule A=COND     a rule: action A (pause, cancel, resume, notify) when COND becomes true,\n"
            "                    e.g. --rule 'pause=metrics.fraud_score > 0.9' (repeatable)\n"
            "  --shell           run the command through /bin/sh -c\n"
            "  --follow          show the job's progress until it ends, then exit with its exit status\n"},
    {"watch", "usage: galvani watch [ID...] [--json]\n\n"
              "Show live progress bars (plain lines when not on a terminal) from galvanid's event stream.\n"
              "With IDs: those jobs, until all of them have finished.  Without: every job that is active\n"
              "or becomes active, until interrupted.  --json prints each stream message as one line.\n"},
    {"ls", "usage: galvani ls [--status S[,S...]] [--label NAME=VALUE] [--json]\n"
           "\n"
           "List jobs, newest first.  S: queued, running, paused, succeeded, failed, cancelled.\n"
           "--label: only jobs with that label.\n"},
    {"rules", "usage: galvani rules [--json]\n"
              "       galvani rules add --then ACTION [--name-glob GLOB] [--label NAME=VALUE]... CONDITION\n"
              "       galvani rules rm ID\n"
              "       galvani rules --job ID [--json]\n\n"
              "Global rules: list them, add one (prints its id; ACTION: pause, cancel, resume, notify;\n"
              "it applies to jobs whose name matches GLOB and that have every label given, or to every\n"
              "job), delete one.  --job: a job's own rules and every firing of a rule on it (when, rule,\n"
              "action, the values that made it true, what the action did).  CONDITION, e.g.\n"
              "'metrics.fraud_score > 0.9 for 30s': see docs/api.md, Rules.\n"},
    {"pipeline", "usage: galvani pipeline run FILE.json [--follow] [--json]\n"
                 "       galvani pipeline ls [--json]\n"
                 "       galvani pipeline show ID [--json]\n"
                 "       galvani pipeline pause|resume|cancel ID\n"
                 "       galvani pipeline retry ID STEP\n"
                 "       galvani pipeline rm ID\n\n"
                 "Pipelines: steps that run in dependency order (docs/api.md, Pipelines).  run posts\n"
                 "FILE.json ('-': stdin) and prints the new pipeline; --follow then prints each step's\n"
                 "change until the pipeline ends and exits 0 if it succeeded, 1 if it failed or was\n"
                 "cancelled.  retry re-runs STEP (failed, cancelled or succeeded) and every step after it.\n"
                 "rm deletes a finished pipeline with its jobs.  Example: examples/ci-pipeline.json.\n"},
    {"show", "usage: galvani show ID [--json]\n\nPrint one job's fields, one per line, then its rule firings.\n"},
    {"pause", "usage: galvani pause [ID...] [--json]\n\n"
              "Pause running jobs; with no ID, pause the demo job.\n"},
    {"resume", "usage: galvani resume [ID...] [--json]\n\n"
               "Resume paused jobs; with no ID, resume the demo job.\n"},
    {"cancel", "usage: galvani cancel [ID...] [--json]\n\n"
               "Cancel queued, running or paused jobs; with no ID, cancel the demo job.\n"},
    {"set", "usage: galvani set ID KEY=VALUE... [--json]\n\n"
            "Merge params into a job: VALUE is JSON if it parses (3, 0.5, true, [1,2], {\"a\":1}),\n"
            "otherwise a string; KEY=null removes the param.  Prints the params and their new revision;\n"
            "a change the job's params_schema refuses is an error that names the param and the rule.\n"},
    {"params", "usage: galvani params [--history] ID [--json]\n\n"
               "Print the job's params, their revision (one per accepted change) and the last revision the\n"
               "job acknowledged (cooperative jobs answer \"ack params N\"; 0: none).\n"
               "  --history   every change, oldest first: revision, when, who (token or local), when the\n"
               "              job applied it (- if it never said so), the patch\n"},
    {"logs", "usage: galvani logs [-f|--follow] ID\n\nPrint the job's captured stdout and stderr (--json has no "
             "effect: the log is text).\n"
             "  -f, --follow   keep printing what the job writes, like tail -f, until the job has ended\n"
             "                 and all of its output is printed\n"},
    {"start", "usage: galvani start [--json]\n\nStart a demo job (progress 0 to 100 in about 10 s).\n"},
};

const char *gvc_help_for(const char *cmd)
{
    for (size_t i = 0; i < sizeof gvc_cmd_help / sizeof gvc_cmd_help[0]; i++)
        if (strcmp(gvc_cmd_help[i][0], cmd) == 0)
            return gvc_cmd_help[i][1];
    return NULL;
}
