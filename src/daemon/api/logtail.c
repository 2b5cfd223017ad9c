/*
 * logtail.c — GET /jobs/{id}/log: the job's captured stdout+stderr
 * (?tail=N: the last N bytes; ?offset=N: from byte N, for followers that
 * poll).
 *
 * The byte range is fixed when the request arrives (the file may keep
 * growing; the response has a Content-Length) and is streamed in 64 KiB
 * pieces, one h2o_send at a time, so a 10 MiB log costs 64 KiB of memory
 * and the loop never blocks on one large read.
 */
#include "api_int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GVD_LOGTAIL_CHUNK 65536

typedef struct gvd_logtail {
    h2o_generator_t gen; /* first: h2o hands us &gen */
    int fd;
    off_t pos, end;
    char *buf;
} gvd_logtail;

/* Runs when the request's pool goes, however the response ended. */
static void gvd_logtail_dispose(void *p)
{
    gvd_logtail *t = p;
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
}

static void gvd_logtail_proceed(h2o_generator_t *g, h2o_req_t *req)
{
    gvd_logtail *t = (gvd_logtail *)g;
    size_t want = (size_t)(t->end - t->pos) < GVD_LOGTAIL_CHUNK ? (size_t)(t->end - t->pos) : GVD_LOGTAIL_CHUNK;
    ssize_t n;
    do
        n = pread(t->fd, t->buf, want, t->pos);
    while (n < 0 && errno == EINTR);
    if (n <= 0) {
        /* the file shrank under us: the promised length cannot be kept */
        h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
        return;
    }
    t->pos += n;
    h2o_iovec_t v = h2o_iovec_init(t->buf, (size_t)n);
    h2o_send(req, &v, 1, t->pos >= t->end ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void gvd_logtail_stop(h2o_generator_t *g, h2o_req_t *req)
{
    (void)g;
    (void)req; /* the pool's dispose closes the file */
}

void gvd_logtail_send(h2o_req_t *req, const char *path, int64_t tail, int64_t offset)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 && errno != ENOENT) {
        gvd_http_error(req, 500, "log_unreadable", "cannot read the log: %s", strerror(errno));
        return;
    }
    off_t size = 0;
    if (fd >= 0) {
        if (fstat(fd, &st) != 0) {
            int e = errno;
            close(fd);
            gvd_http_error(req, 500, "log_unreadable", "cannot read the log: %s", strerror(e));
            return;
        }
        size = st.st_size;
    }
    off_t start = tail >= 0 && tail < size ? size - tail : 0;
    if (offset >= 0)
        start = offset < size ? (off_t)offset : size; /* the log only grows: offsets stay valid */
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = (size_t)(size - start);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/plain; charset=utf-8"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    if (size == start || h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
        /* nothing written yet (a queued job has no file), or a HEAD: the
         * headers (Content-Length included) without the body */
        if (fd >= 0)
            close(fd);
        h2o_send_inline(req, "", 0);
        return;
    }
    gvd_logtail *t = h2o_mem_alloc_shared(&req->pool, sizeof *t, gvd_logtail_dispose);
    /* h2o_mem_alloc_shared on a pool links the object to the pool, which
     * releases it (calling the dispose) when the request ends. */
    t->gen.proceed = gvd_logtail_proceed;
    t->gen.stop = gvd_logtail_stop;
    t->fd = fd;
    t->pos = start;
    t->end = size;
    t->buf = h2o_mem_alloc_pool(&req->pool, GVD_LOGTAIL_CHUNK);
    h2o_start_response(req, &t->gen);
    gvd_logtail_proceed(&t->gen, req);
}
