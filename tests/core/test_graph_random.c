/*
 * test_graph_random.c — the randomized differential test (graph_ops.c): a
 * fixed list of seeds, each a program of random operations on a random graph
 * of signals, computeds, effects and scopes, checked against the reference
 * model.  Deterministic: the same seeds every run.
 *
 * By hand:
 *   GV_GRAPH_SEEDS=N     run seeds 1..N instead of the fixed list (1..300)
 *   GV_GRAPH_FIRST=F     ... starting at seed F
 *   GV_GRAPH_SEED=S      run seed S only, and print its decoded program
 *   GV_GRAPH_FILE=path   run the program in a file (a libFuzzer crash input)
 *   GV_GRAPH_BYTES=B     bytes per generated program (default 2400)
 *   GV_GRAPH_FLAGS=F     go_run flags (graph_ops.h), e.g. 1: no disposal from
 *                        inside callbacks, 2: no batch ending where it began
 *   GV_GRAPH_FORK=1      run each program in a child process, so a crash is
 *                        reported as one failing seed instead of ending the run
 *   GV_GRAPH_CORPUS=dir  write the seed corpus of fuzz/fuzz_graph.c (GV_GRAPH_SEEDS
 *                        inputs, default 40, of passing programs) and stop
 *   GV_GRAPH_MINIMIZE=path  with GV_GRAPH_SEED or GV_GRAPH_FILE: shrink the
 *                        failing program (whole operations, then bytes) while
 *                        it fails the same way (same message class, or still
 *                        crashes), write it to `path` and print it
 */
#include "gv_test.h"

#include <inttypes.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "graph_ops.h"

#define DEFAULT_BYTES 2400 /* about 270 operations */
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

/* The class of a crash, from the sanitizer report the child wrote to `fd`:
 * "heap-use-after-free in gv_effect_free", or the UBSan location. */
static void crash_class(int fd, char *cls, size_t cls_size)
{
    static char log[65536];
    snprintf(cls, cls_size, "crash");
    if (fd < 0 || lseek(fd, 0, SEEK_SET) != 0)
        return;
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, log + len, sizeof log - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    log[len] = '\0';
    const char *asan = strstr(log, "ERROR: AddressSanitizer: ");
    const char *ubsan = strstr(log, ": runtime error: ");
    if (asan) {
        asan += strlen("ERROR: AddressSanitizer: ");
        const char *fn = strstr(asan, "\n    #0 ");
        fn = fn ? strstr(fn, " in ") : NULL;
        int kl = (int)strcspn(asan, " \n"), fl = fn ? (int)strcspn(fn + 4, " \n") : 0;
        snprintf(cls, cls_size, "crash: %.*s in %.*s", kl, asan, fl, fn ? fn + 4 : "");
    } else if (ubsan) {
        const char *line = ubsan;
        while (line > log && line[-1] != '\n')
            line--;
        snprintf(cls, cls_size, "crash: %.*s", (int)(ubsan - line), line);
    }
}

/* The outcome of a forked run: 0 pass, 1 a check failed (class in `cls`),
 * 2 the child crashed or was killed (a sanitizer report, SEGV, abort; the
 * class names the report's first frame).  `quiet`: the child's stderr goes
 * to a temporary file instead of ours. */
static int run_forked(const uint8_t *data, size_t size, unsigned flags, char *cls, size_t cls_size, bool quiet,
                      char *full, size_t full_size)
{
    int fds[2];
    if (pipe(fds) != 0)
        return 2;
    int logfd = -1;
    if (quiet) {
        char tmpl[] = "/tmp/gv-graph-XXXXXX";
        logfd = mkstemp(tmpl);
        if (logfd >= 0)
            unlink(tmpl);
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        if (logfd >= 0)
            close(logfd);
        return 2;
    }
    if (pid == 0) {
        close(fds[0]);
        if (logfd >= 0 && dup2(logfd, 2) < 0)
            _exit(4);
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
    if (full)
        snprintf(full, full_size, "%s", msg);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        if (logfd >= 0)
            close(logfd);
        return 0;
    }
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
        if (logfd >= 0)
            close(logfd);
        return 1;
    }
    crash_class(logfd, cls, cls_size);
    if (logfd >= 0)
        close(logfd);
    return 2;
}

/* ------------------------------------------------------------------------ */
/* Minimizing                                                                */
/* ------------------------------------------------------------------------ */

static bool still_fails(const uint8_t *data, size_t size, unsigned flags, int kind, const char *cls)
{
    char c[256];
    int k = run_forked(data, size, flags, c, sizeof c, true, NULL, 0);
    return k == kind && strcmp(c, cls) == 0;
}

static size_t minimize(uint8_t *data, size_t size, unsigned flags)
{
    char cls[256];
    int kind = run_forked(data, size, flags, cls, sizeof cls, true, NULL, 0);
    if (kind == 0) {
        fprintf(stderr, "minimize: the program passes\n");
        return size;
    }
    fprintf(stderr, "minimize: %s\n", cls);
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
        char cls[256], full[1024];
        int k = run_forked(data, size, flags, cls, sizeof cls, !verbose, full, sizeof full);
        if (k != 0)
            fprintf(stderr, "%s: %s%s\n", label, k == 2 ? "CRASH " : "FAIL: ", k == 2 ? cls : full);
        return k == 0;
    }
    go_result r;
    int rc = go_run(data, size, flags, &r);
    if (rc != 0)
        fprintf(stderr, "%s (%zu ops): %s\n", label, r.nops, r.message);
    return rc == 0;
}

/* A seed corpus for fuzz/fuzz_graph.c: programs of seeds 1.. with sizes
 * from 64 bytes to 4 KiB, only those that pass (a corpus input that fails
 * would fail the fuzz test before any fuzzing). */
static void write_corpus(const char *dir, size_t count, unsigned flags)
{
    static const size_t sizes[] = {64, 128, 256, 512, 1024, 2048, 4096};
    uint8_t buf[4096];
    size_t written = 0;
    for (uint64_t seed = 1; written < count && seed < 100000; seed++) {
        size_t size = sizes[seed % (sizeof sizes / sizeof *sizes)];
        go_generate(seed, buf, size);
        char cls[256];
        if (run_forked(buf, size, flags, cls, sizeof cls, true, NULL, 0) != 0)
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/seed-%" PRIu64, dir, seed);
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(buf, 1, size, f), size);
        assert_int_equal(fclose(f), 0);
        written++;
    }
    fprintf(stderr, "graph_random: wrote %zu corpus inputs to %s\n", written, dir);
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

    const char *corpus = getenv("GV_GRAPH_CORPUS");
    if (corpus && *corpus) {
        write_corpus(corpus, env_size("GV_GRAPH_SEEDS", 40), flags);
        return;
    }

    size_t first = env_size("GV_GRAPH_FIRST", 1);
    size_t nseeds = env_size("GV_GRAPH_SEEDS", DEFAULT_SEEDS);
    uint8_t *data = malloc(bytes ? bytes : 1);
    assert_non_null(data);
    size_t failed = 0, ops = 0;
    gv_stats st0, st1;
    gv_get_stats(&st0);
    for (size_t seed = first; seed < first + nseeds; seed++) {
        go_generate(seed, data, bytes);
        char label[64];
        snprintf(label, sizeof label, "seed %zu", seed);
        if (!run_one(label, data, bytes, flags, fork_it, false))
            failed++;
        ops += go_op_starts(data, bytes, NULL, 0);
    }
    free(data);
    gv_get_stats(&st1);
    fprintf(stderr,
            "graph_random: %zu programs (%zu operations; %" PRIu64 " compute and %" PRIu64 " effect runs), %zu failed\n",
            nseeds, ops, st1.computes - st0.computes, st1.effect_runs - st0.effect_runs, failed);
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
