/*
 * job_status.c — a first tour of libgalvani.
 *
 * A background job has a status ("idle", "running", "paused", "done").  We
 * keep it in a *signal*, derive "is the job active?" from it with a
 * *computed*, and print both from *effects*.  Nothing here calls the printing
 * code by hand: every line of output is the graph reacting to a write.
 *
 * Build and run:  bash scripts/run     (or: build/examples/job_status)
 */
#include <galvani/signals.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Everything the callbacks need.  Signals, computeds and effects take one
 * `void *ud` ("user data") pointer; passing a struct is the usual way to give
 * them more than one thing.  The graph only borrows it, so it must outlive
 * the nodes — here it lives on main()'s stack until the very end. */
struct app {
    gv_signal *job_status;  /* writable: the status string */
    gv_computed *is_active; /* derived: status is "running" or "paused" */
    int status_runs;        /* how many times the status effect ran */
    int active_runs;        /* how many times the is_active effect ran */
};

/* Effect: print the status.  Reading job_status through gv_signal_get_string
 * is what subscribes this effect to it — no registration step needed. */
static void print_status(void *ud)
{
    struct app *app = ud;
    app->status_runs++;
    printf("Job status: %s\n", gv_signal_get_string(app->job_status));
}

/* Compute function: is the job doing (or holding) work?  It reads the signal,
 * so it depends on it; its result is cached until the status changes. */
static void compute_is_active(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev; /* the previous result; not needed here */
    struct app *app = ud;
    const char *status = gv_signal_get_string(app->job_status);
    *out = gv_bool(strcmp(status, "running") == 0 || strcmp(status, "paused") == 0);
}

/* Effect: print is_active.  It depends on the computed, not on the signal, so
 * it only runs when the *answer* changes: "running" -> "paused" recomputes
 * is_active, finds it still true, and stops there. */
static void print_active(void *ud)
{
    struct app *app = ud;
    app->active_runs++;
    printf("  active: %s\n", gv_computed_get_bool(app->is_active) ? "yes" : "no");
}

/* Set the status and say so, so the output reads as a story. */
static void set_status(struct app *app, const char *status)
{
    printf("> set job_status = \"%s\"\n", status);
    /* gv_signal_set_string copies the string and returns whether the value
     * changed; effects have already run by the time it returns. */
    if (!gv_signal_set_string(app->job_status, status))
        printf("  (same value: nothing changed, no effect ran)\n");
}

int main(void)
{
    struct app app = {0};

    /* 1. The state.  Every _new has a matching _free at the end. */
    app.job_status = gv_signal_new(gv_str("idle"));
    if (app.job_status == NULL) {
        fprintf(stderr, "job_status: out of memory\n");
        return EXIT_FAILURE;
    }

    /* 2. An effect runs once right away, then after every change it sees. */
    gv_effect *status_log = gv_effect_new(print_status, &app);

    /* 3. A computed runs lazily, the first time someone reads it — here, the
     *    effect created just after it. */
    app.is_active = gv_computed_new(compute_is_active, &app);
    gv_effect *active_log = gv_effect_new(print_active, &app);
    if (status_log == NULL || app.is_active == NULL || active_log == NULL) {
        fprintf(stderr, "job_status: out of memory\n");
        gv_effect_free(active_log); /* NULL is a no-op */
        gv_effect_free(status_log);
        if (app.is_active != NULL)
            gv_computed_free(app.is_active);
        gv_signal_free(app.job_status);
        return EXIT_FAILURE;
    }

    /* 4. Writes.  Watch which lines each one prints. */
    set_status(&app, "running"); /* status and active both change */
    set_status(&app, "paused");  /* status changes, active stays "yes" */
    set_status(&app, "paused");  /* equal value: nothing at all */
    set_status(&app, "running"); /* status changes, active stays "yes" */

    /* 5. A batch: both writes land first, effects run once at the end and
     *    only ever see the final state — "stopping" is never printed. */
    printf("> batch: job_status = \"stopping\", then \"done\"\n");
    int before = app.status_runs;
    gv_batch_begin();
    gv_signal_set_string(app.job_status, "stopping");
    gv_signal_set_string(app.job_status, "done");
    gv_batch_end();
    printf("  (two writes, status effect ran %d time)\n", app.status_runs - before);

    printf("status effect ran %d times, active effect ran %d times\n",
           app.status_runs, app.active_runs);

    /* 6. Clean up: effects first (they read the other nodes), then the
     *    computed, then the signal; finally the thread's runtime caches. */
    gv_effect_free(active_log);
    gv_effect_free(status_log);
    gv_computed_free(app.is_active);
    gv_signal_free(app.job_status);
    gv_runtime_release();
    return EXIT_SUCCESS;
}
