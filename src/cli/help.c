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
    "  run [OPTIONS] -- CMD ARGS...   create a job here, with this environment; prints its id\n"
    "                                 (--follow: print its output to the end, exit with its status)\n"
    "  rerun [--follow] ID            the same job again (same spec, current params): a new job\n"
    "  ls [--status S] [--name GLOB] [--label K=V] [--limit N]\n"
    "                                 list jobs (id, name, status, progress, started; node in a cluster)\n"
    "  show ID                        one job's fields (its node among them)\n"
    "  pause ID...                    pause running jobs\n"
    "  resume ID...                   resume paused jobs\n"
    "  cancel ID...                   cancel queued, running or paused jobs\n"
    "  rm ID...                       delete finished jobs (their log and history too)\n"
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
    "Nodes (several galvanid on one PostgreSQL, docs/cluster.md):\n"
    "  nodes                          the nodes: state, heartbeat, running/max, address\n"
    "\n"
    "The demo job (the seed's routes):\n"
    "  start                          start a demo job\n"
    "  pause | resume | cancel        with no ID: act on the demo job\n"
    "\n"
    "Options (anywhere before --):\n"
    "  --server URL   galvanid's address (default $GALVANI_URL, else " GVC_DEFAULT_URL ")\n"
    "  --token TOKEN  galvanid's bearer token, if it requires one (default $GALVANI_TOKEN)\n"
    "  --json         print the server's JSON instead of text, and errors as JSON on stderr:\n"
    "                 {\"error\":{\"code\":\"not_found\",\"message\":\"no job 42\",...}}\n"
    "  --help         help for galvani or for a command\n"
    "  --version      print the version\n"
    "\n"
    "Exit status: 0 ok, 1 request failed (daemon down, unknown job, refused), 2 usage error.\n"
    "run --follow, rerun --follow and watch ID end with the job's status instead: 0 succeeded,\n"
    "its exit code if it failed with one, 128+N if signal N killed it, 130 cancelled, 125 failed\n"
    "without an exit status (it could not start: the reason is on the verdict line).\n";

#define GVC_JOB_EXIT                                                                                        \
    "Exit status when following: 0 succeeded; the job's exit code; 128+N if signal N killed it; 130\n"      \
    "cancelled; 125 failed without an exit status (e.g. the program does not exist); 1 and 2 as for\n"      \
    "every command (request failed, usage).\n"

static const char *const gvc_cmd_help[][2] = {
    {"run", "usage: galvani run [OPTIONS] [--] CMD ARGS...\n"
            "\n"
            "Create a job running CMD with ARGS (no shell unless --shell: then CMD ARGS... are joined\n"
            "with spaces and run by /bin/sh -c).  Prints the new job's id.  Like a shell, the job runs\n"
            "in the current directory with the current environment (minus GALVANI_TOKEN), both stored\n"
            "in its spec: see docs/security.md for who can read them.\n"
            "  --name N          the job's name (default: the program name)\n"
            "  --cwd DIR         run in DIR (relative to here) instead of the current directory\n"
            "  --env K=V         set a variable (repeatable; on top of the environment, or alone)\n"
            "  --clean-env       do not pass this environment: only the --env variables\n"
            "  --param K=V       a param; V is JSON if it parses, else a string (repeatable)\n"
            "  --label K=V       a label (repeatable; galvani ls --label K=V, global rules match them)\n"
            "  --timeout SECS    fail the job once it has run this long\n"
            "  --retries N       run it again up to N times (0..100) when it fails\n"
            "  --backoff SECS    wait before a retry (doubling each time)\n"
            "  --priority N      queued jobs start by priority, higher first (default 0)\n"
            "  --pause-mode M    stop (SIGSTOP, default) or cooperative (the job is told to pause)\n"
            "  --rule A=COND     a rule: action A (pause, cancel, resume, notify) when COND becomes true,\n"
            "                    e.g. --rule 'pause=metrics.fraud_score > 0.9' (repeatable)\n"
            "  --shell           run the command through /bin/sh -c\n"
            "  -f, --follow      print the job's output as it runs (like docker run), then a verdict line\n"
            "                    on stderr (job 7 make: failed (exited with status 2) after 3.1s), and\n"
            "                    exit with the job's status; Ctrl-C stops following, the job runs on.\n"
            "                    With --json: the new job, then the finished job, one line each.\n"
            "\n" GVC_JOB_EXIT},
    {"rerun", "usage: galvani rerun [-f|--follow] ID [--json]\n\n"
              "Create a new job from job ID's spec (command, directory, environment, options, labels,\n"
              "rules) with its params as they are now.  Prints the new id; --follow as for run.\n"
              "\n" GVC_JOB_EXIT},
    {"watch", "usage: galvani watch [ID...] [--json]\n\n"
              "Show live progress from galvanid's event stream.  On a terminal: a header with the job\n"
              "counts, one line per job fitted to the width (id, name, bar, percent, status, rate and\n"
              "eta, the job's ::status message or why it failed), q to quit.  Piped: a line per change,\n"
              "and the verdict line of each job that ends.  --json prints each stream message.\n"
              "With IDs: those jobs, until all of them have finished, then exit with the status of the\n"
              "first that did not succeed (as run --follow does).  Without: every job that is active or\n"
              "becomes active, until q or Ctrl-C.  If galvanid goes away, the last frame stays with a\n"
              "\"reconnecting\" line until it is back.\n"
              "\n" GVC_JOB_EXIT},
    {"ls", "usage: galvani ls [--status S[,S...]] [--name GLOB] [--label NAME=VALUE] [--limit N] [--json]\n"
           "\n"
           "List jobs, newest first.  S: queued, running, paused, succeeded, failed, cancelled.\n"
           "--name: jobs whose name matches the shell pattern GLOB ('build-*').  --label: only jobs\n"
           "with that label.  --limit: at most N jobs (1..1000, default 1000).\n"
           "When galvanid is one of several nodes (galvani nodes lists more than one), a last column,\n"
           "NODE, says which node runs each job (- while it is queued and no node has claimed it);\n"
           "on a single galvanid it would repeat one name, and is left out.  --json: every job has\n"
           "\"node\" either way.\n"},
    {"nodes", "usage: galvani nodes [--json]\n\n"
              "List the galvanid nodes that share this one's store (docs/cluster.md), one line each:\n"
              "  ID           the node's --node-id; * marks the node that answered (--server)\n"
              "  STATE        up; left (stopped cleanly); lost (its heartbeat stopped for longer than\n"
              "               its lease: its jobs were retried or failed on the other nodes)\n"
              "  HEARTBEAT    how long ago it last renewed its lease (by the database's clock)\n"
              "  RUNNING/MAX  its jobs running or paused, and its --max-running\n"
              "  ADDRESS      where it serves HTTP (a job's log is kept on its node)\n"
              "A single galvanid (SQLite) lists itself alone, with its id and state only.\n"},
    {"rm", "usage: galvani rm ID... [--json]\n\n"
           "Delete finished jobs (succeeded, failed or cancelled) with their log, params history and\n"
           "metrics.  A job still queued, running or paused is refused: cancel it first.\n"},
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
                 "FILE.json ('-': stdin) and prints the new pipeline (like run, a step without \"cwd\" runs\n"
                 "in the current directory and one without \"env\" with the current environment, minus\n"
                 "GALVANI_TOKEN); --follow then prints each step's\n"
                 "change until the pipeline ends and exits 0 if it succeeded, 1 if it failed or was\n"
                 "cancelled.  retry re-runs STEP (failed, cancelled or succeeded) and every step after it.\n"
                 "rm deletes a finished pipeline with its jobs.  Example: examples/ci-pipeline.json.\n"},
    {"show", "usage: galvani show ID [--json]\n\nPrint one job's fields, one per line, then its rule firings.  The\n"
             "environment is counted, not shown (--json has it, values included unless the token is\n"
             "read-only).  node: the galvanid node that runs it (- while it is queued and no node has\n"
             "claimed it); at_most_once: true if it fails rather than runs again when its node is lost.\n"},
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
