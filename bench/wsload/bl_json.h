/* bl_json.h — one pass over a frame's JSON: checks that it is one well-formed
 * value and picks out the few fields a load generator needs.
 *
 * Why not jansson: at 10,000 clients x 1,000 job updates/s the client has to
 * get through ~10^7 frames a second on one core; building a tree per frame
 * would make the load generator, not the server, the thing measured.  The
 * scanner reads every byte once and allocates nothing.  (wsload --strict also
 * runs jansson over every frame, for the smoke test.)
 *
 * Fields (missing ones keep their "unknown" value):
 *   top level: type, status, progress, id, message, t, and the length of the
 *              "jobs" array (a /ws/jobs snapshot, or the ceiling's frame)
 *   under "job": id, status, progress, message (a /ws/jobs job message)
 *   each object of the top-level "jobs" array: id, status, message, handed
 *              to on_item when set (a ?v=2 "update": one entry per job)
 * The change stamp t_ms comes from a top-level number "t" or from a message
 * "t=<unix ms>" (what `::status t=$(date +%s%3N)` leaves in a job). */
#ifndef BL_JSON_H
#define BL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t id;      /* -1 when absent */
    char status[16]; /* "" when absent (a ?v=2 entry carries only what changed) */
    int64_t t_ms;    /* -1 when absent */
} bl_item;

typedef struct bl_frame {
    /* set by the caller before the scan (or NULL): called at the end of
     * each object in the top-level "jobs" array */
    void (*on_item)(void *ud, const bl_item *it);
    void *ud;
    char type[16];   /* "" when absent */
    char status[16]; /* "" when absent */
    int64_t id;      /* -1 when absent */
    double progress; /* -1 when absent */
    int64_t t_ms;    /* -1 when absent */
    long items;      /* elements of the top-level "jobs" array, -1 when absent */
} bl_frame;

/* Returns true when buf[0..len) is exactly one JSON value (whitespace
 * around it allowed); fills *f either way with what it saw. */
bool bl_json_scan(const char *buf, size_t len, bl_frame *f);

#endif
