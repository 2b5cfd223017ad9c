/*
 * webhook.h — the notify action's webhook (galvanid --webhook URL): each
 * firing of a notify rule is POSTed as JSON to one URL the daemon's
 * operator configured (docs/api.md, "Rules": "Webhook").
 *
 * libcurl on the daemon's libuv loop: asynchronous (the loop never waits for
 * the receiver, nor for DNS), http:// and https:// (verified), a timeout
 * per attempt, and retries with exponential backoff (0.5 s, 1 s, 2 s, ...)
 * until a 2xx answer or the last attempt; no redirect is followed.  The
 * URL is checked and its host resolved when galvanid starts, so a bad URL
 * stops galvanid with a clear message instead of failing every delivery.
 * Deliveries still in flight at shutdown are dropped (and logged).
 */
#ifndef GALVANI_DAEMON_WEBHOOK_H
#define GALVANI_DAEMON_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct gvd_webhook gvd_webhook;

/* Check and resolve `url` (http(s)://HOST[:PORT][/PATH]).  attempts: 1 +
 * the retries.  NULL with err on a bad URL, an unresolvable host or no
 * memory. */
gvd_webhook *gvd_webhook_new(uv_loop_t *loop, const char *url, double timeout_s, unsigned attempts, char *err,
                             size_t errlen);
/* Drop what is in flight; the memory goes when the handles closed (run
 * the loop once after). */
void gvd_webhook_free(gvd_webhook *w);
/* Deliver `body` (a JSON text, copied).  `what` names it in the log lines
 * (e.g. "job=3 rule=rule-1"). */
void gvd_webhook_post(gvd_webhook *w, const char *body, const char *what);

#endif
