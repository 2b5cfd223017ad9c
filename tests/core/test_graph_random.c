/*
 * test_graph_random.c — the randomized differential test (graph_ops.c): a
 * fixed list of seeds, each a program of random operations on a random graph
 * of signals, computeds, effects and scopes, checked against the reference
 * model.  Deterministic: the same seeds every run.
 *
 * By hand:
 *   GV_GRAPH_SEEDS=N     run seeds 1..N instead of the fixed list
 *   GV_GRAPH_FIRST=F     ... starting at seed F
 *   GV_GRAPH_SEED=S      run seed S only, and print its decoded program
 *   GV_GRAPH_FILE=path   run the program in a file (a libFuzzer crash input)
 *   GV_GRAPH_BYTES=B     bytes per generated program (default 1200)
 *   GV_GRAPH_FLAGS=F     go_run flags (graph_ops.h), e.g. 1: no disposal from
 *                        inside callbacks, 2: no batch ending where it began
 *   GV_GRAPH_FORK=1      run each program in a child process, so a crash is
 *                        reported as one failing seed instead of ending the run
 *   GV_GRAPH_MINIMIZE=path  with GV_GRAPH_SEED or GV_GRAPH_FILE: shrink the
 *                        failing program (whole operations, then bytes) while
 *                        it fails the same way (same message class, or still
 *                        crashes), write it to `path` and print it
 */
#include "gv_test.h"

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "graph_ops.h"

#define DEFAULT_BYTES 1200
#define DEFAULT_SEEDS 300

static size_t env_size(const char *name, size_t dflt)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return dflt;
    return (size_t)strtoull(s, NULL, 0);
}

/* ------------------------------------------------------------------------ */
/* Running a program in a child process                                      */
/* ------------------------------------------------------------------------ */

/* The outcome of a forked run: 0 pass, 1 a check failed (class in `cls`),
 * 2 the child crashed or was killed (a sanitizer report, SEGV, abort). */
static int run_forked(const uint8_t *data, size_t size, unsigned flags, char *cls, size_t cls_size, bool quiet)
{
    int fds[2];
    if (pipe(fds) != 0)
        return 2;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return 2;
    }
    if (pid == 0) {
        close(fds[0]);
        if (quiet) {
            FILE *devnull = freopen("/dev/null", "w", stderr);
            (void)devnull;
        }
        go_result r;
        int rc = go_run(data, size, flags, &r);
        if (rc != 0) {
            ssize_t w = write(fds[1], r.message, strlen(r.message));
            (void)w;
        }
        close(fds[1]);
        _exit(rc == 0 ? 0 : 3);
    }
    close(fds[1]);
    char msg[1024];
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fds[0], msg + len, sizeof msg - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == sizeof msg - 1)
            break;
    }
    msg[len] = '\0';
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 3) {
        /* The class of a failure: its words up to the first ':' after the
         * "op #N: " prefix, without digits. */
        const char *p = strstr(msg, ": ");
        p = p ? p + 2 : msg;
        size_t k = 0;
        for (; *p && *p != ':' && *p != '[' && k + 1 < cls_size; p++)
            if (!(*p >= '0' && *p <= '9'))
                cls[k++] = *p;
        cls[k] = '\0';
        return 1;
    }
    snprintf(cls, cls_size, "crash");
    return 2;
}

/* ------------------------------------------------------------------------ */
/* Minimizing                                                                */
/* ------------------------------------------------------------------------ */

static bool still_fails(const uint8_t *data, size_t size, unsigned flags, int kind, const char *cls)
{
    char c[256];
    int k = run_forked(data, size, flags, c, sizeof c, true);
    return k == kind && (kind == 2 || strcmp(c, cls) == 0);
}

static size_t minimize(uint8_t *data, size_t size, unsigned flags)
{
    char cls[256];
    int kind = run_forked(data, size, flags, cls, sizeof cls, true);
    if (kind == 0) {
        fprintf(stderr, "minimize: the program passes\n");
        return size;
    }
    fprintf(stderr, "minimize: %s (%s)\n", kind == 2 ? "crash" : "check failure", cls);
    uint8_t *tmp = malloc(size + 1);
    size_t *starts = malloc(sizeof *starts * (size + 1));
    if (!tmp || !starts) {
        free(tmp);
        free(starts);
        return size;
    }
    bool progress = true;
    while (progress) {
        progress = false;
        /* Whole operations, in chunks from large to single. */
        size_t nops = go_op_starts(data, size, starts, size);
        for (size_t chunk = nops / 2 ? nops / 2 : 1; chunk >= 1; chunk /= 2) {
            for (size_t i = 0; i + chunk <= nops;) {
                size_t from = starts[i];
                size_t to = i + chunk < nops ? starts[i + chunk] : size;
                size_t n = 0;
                memcpy(tmp, data, from);
                n = from;
                memcpy(tmp + n, data + to, size - to);
                n += size - to;
                if (n < size && still_fails(tmp, n, flags, kind, cls)) {
                    memcpy(data, tmp, n);
                    size = n;
                    nops = go_op_starts(data, size, starts, size);
                    progress = true;
                } else {
                    i++;
                }
            }
            if (chunk == 1)
                break;
        }
        /* Single bytes: delete, then make smaller. */
        for (size_t i = 0; i < size;) {
            memcpy(tmp, data, i);
            memcpy(tmp + i, data + i + 1, size - i - 1);
            if (still_fails(tmp, size - 1, flags, kind, cls)) {
                memcpy(data, tmp, size - 1);
                size--;
                progress = true;
            } else {
                i++;
            }
        }
        for (size_t i = 0; i < size; i++) {
            if (data[i] == 0)
                continue;
            memcpy(tmp, data, size);
            tmp[i] = 0;
            if (still_fails(tmp, size, flags, kind, cls)) {
                data[i] = 0;
                progress = true;
            }
        }
    }
    free(tmp);
    free(starts);
    return size;
}

/* ------------------------------------------------------------------------ */
/* Running seeds                                                             */
/* ------------------------------------------------------------------------ */

static uint8_t *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 4096;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        if (n == 0)
            break;
        len += n;
    }
    fclose(f);
    *size = len;
    return buf;
}

/* Run one program in this process (or a child); print the failure. */
static bool run_one(const char *label, const uint8_t *data, size_t size, unsigned flags, bool fork_it, bool verbose)
{
    if (fork_it) {
        char cls[256];
        int k = run_forked(data, size, flags, cls, sizeof cls, !verbose);
        if (k != 0)
            fprintf(stderr, "%s: %s%s\n", label, k == 2 ? "CRASH" : "FAIL: ", k == 2 ? "" : cls);
        return k == 0;
    }
    go_result r;
    int rc = go_run(data, size, flags, &r);
    if (rc != 0)
        fprintf(stderr, "%s (%zu ops): %s\n", label, r.nops, r.message);
    return rc == 0;
}

static void test_graph_random(void **state)
{
    (void)state;
    size_t bytes = env_size("GV_GRAPH_BYTES", DEFAULT_BYTES);
    unsigned flags = (unsigned)env_size("GV_GRAPH_FLAGS", 0);
    bool fork_it = env_size("GV_GRAPH_FORK", 0) != 0;
    const char *min_out = getenv("GV_GRAPH_MINIMIZE");
    const char *file = getenv("GV_GRAPH_FILE");
    const char *one = getenv("GV_GRAPH_SEED");

    if (file || one) {
        size_t size = bytes;
        uint8_t *data;
        char label[64];
        if (file) {
            data = read_file(file, &size);
            assert_non_null(data);
            snprintf(label, sizeof label, "file");
        } else {
            data = malloc(size ? size : 1);
            assert_non_null(data);
            go_generate(strtoull(one, NULL, 0), data, size);
            snprintf(label, sizeof label, "seed %s", one);
        }
        if (min_out && *min_out) {
            size = minimize(data, size, flags);
            FILE *f = fopen(min_out, "wb");
            if (f) {
                if (fwrite(data, 1, size, f) != size)
                    fprintf(stderr, "minimize: short write to %s\n", min_out);
                fclose(f);
            }
            fprintf(stderr, "minimized to %zu bytes (%s):\n", size, min_out);
        }
        go_print(data, size, stderr);
        bool ok = run_one(label, data, size, flags, fork_it || (min_out && *min_out), true);
        free(data);
        assert_true(ok);
        return;
    }

    size_t first = env_size("GV_GRAPH_FIRST", 1);
    size_t nseeds = env_size("GV_GRAPH_SEEDS", DEFAULT_SEEDS);
    uint8_t *data = malloc(bytes ? bytes : 1);
    assert_non_null(data);
    size_t failed = 0, ops = 0;
    for (size_t seed = first; seed < first + nseeds; seed++) {
        go_generate(seed, data, bytes);
        char label[64];
        snprintf(label, sizeof label, "seed %zu", seed);
        if (!run_one(label, data, bytes, flags, fork_it, false))
            failed++;
        ops += go_op_starts(data, bytes, NULL, 0);
    }
    free(data);
    fprintf(stderr, "graph_random: %zu programs (%zu operations), %zu failed\n", nseeds, ops, failed);
    if (failed)
        fprintf(stderr, "graph_random: rerun one with GV_GRAPH_SEED=<seed> (prints the program); "
                        "GV_GRAPH_MINIMIZE=<file> shrinks it\n");
    assert_int_equal(failed, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        GV_TEST(test_graph_random),
    };
    return GV_RUN_TESTS(tests);
}
