/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * HTTP requests to Vault through libcurl's multi interface, driven by the
 * libevent loop (CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION): nothing
 * here blocks. TLS is always verified (ca_file, else the system bundle).
 * Request and response bodies may hold secrets; they are wiped when freed.
 */
#ifndef MTLSD_VAULT_HTTP_H
#define MTLSD_VAULT_HTTP_H

#include <stddef.h>

#include "util.h"

struct event_base;
struct vhttp;
struct vhttp_req;

struct vhttp_request {
	const char *method;             /* "GET", "POST", "PUT", "DELETE" */
	const char *url;                /* full URL: https://host:8200/v1/... */
	const char *token;              /* X-Vault-Token, or NULL */
	const char *ns;                 /* X-Vault-Namespace, or NULL */
	const char *ca_file;            /* CA bundle for Vault's certificate, or NULL */
	const char *body;               /* JSON body (copied), or NULL */
	size_t body_len;
	long timeout_ms;                /* whole request; 0 = 30 s */
};

struct vhttp_result {
	long status;                    /* HTTP status, 0 when no answer */
	const char *body;               /* NUL-terminated, body_len bytes */
	size_t body_len;
	const char *error;              /* transport error (curl's words), else NULL */
	long retry_after;               /* seconds from Retry-After, -1 when absent */
};

/* Called once per request (never from inside vhttp_start). r and its
 * buffers are valid only during the call. */
typedef void (*vhttp_cb)(void *arg, const struct vhttp_result *r);

struct vhttp *vhttp_new(struct event_base *base) MUSTCHECK;
/* Cancels every request in flight (their callbacks are not called). Not
 * from inside a vhttp callback. */
void vhttp_free(struct vhttp *h);
/* Start a request; NULL (and no callback) only if it cannot be started,
 * with the reason in err. Answers above 4 MiB fail with an error. */
struct vhttp_req *vhttp_start(struct vhttp *h, const struct vhttp_request *rq, vhttp_cb cb,
    void *arg, char *err, size_t errlen);
/* Abandon a request in flight; its callback is not called. From inside
 * the request's own callback it is a no-op (the request is done). */
void vhttp_cancel(struct vhttp_req *r);

#endif
