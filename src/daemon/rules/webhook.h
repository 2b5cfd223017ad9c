/*
 * webhook.h — the notify action's webhook (galvanid --webhook URL): each
 * firing of a notify rule is POSTed as JSON to one URL the daemon's
 * operator configured (docs/api.md, "Rules": "Webhook").
 *
 * A small HTTP/1.1 client on the daemon's libuv loop: asynchronous (the loop
 * never waits for the receiver), one connection per attempt
 * ("Connection: close"), a timeout per attempt, and retries with
 * exponential backoff (0.5 s, 1 s, 2 s, ...) until a 2xx answer or the last
 * attempt.  Plain http:// only (the receiver is meant to be a local relay
 * or a service on the operator's network); the host is resolved once, when
 * galvanid starts, so a bad URL stops galvanid with a clear message instead
 * of failing every delivery.  Deliveries still in flight at shutdown are
 * dropped (and logged).
 */
#ifndef GALVANI_DAEMON_WEBHOOK_H
#define GALVANI_DAEMON_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct gvd_webhook gvd_webhook;

/* Parse and resolve `url` (http://HOST[:PORT][/PATH]).  attempts: 1 + the
 * retries.  NULL with err on a bad URL, an unresolvable host or no memory. */
gvd_webhook *gvd_webhook_new(uv_loop_t *loop, const char *url, double timeout_s, unsigned attempts, char *err,
                             size_t errlen);
/* Drop what is in flight; the memory goes when the handles closed (run
 * the loop once after). */
void gvd_webhook_free(gvd_webhook *w);
/* Deliver `body` (a JSON text, copied).  `what` names it in the log lines
 * (e.g. "job=3 rule=rule-1"). */
void gvd_webhook_post(gvd_webhook *w, const char *body, const char *what);

#endif
