/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libcurl's multi interface on the libevent loop (curl's hiperfifo
 * pattern). curl tells us which sockets to watch (sock_cb) and when to wake
 * it (timer_cb); libevent calls back into curl_multi_socket_action, and
 * finished transfers are collected from curl_multi_info_read afterwards.
 * User callbacks run only from there, never from inside a curl callback or
 * from vhttp_start, so a callback may start or cancel other requests.
 */
#include "autoconf.h"

#include <assert.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "curl_dl.h"
#include "log.h"
#include "util.h"
#include "vault_http.h"

#define VHTTP_MAX_ANSWER   (4u << 20)
#define VHTTP_TIMEOUT_MS   30000L
#define VHTTP_CONNECT_MS   10000L

struct vsock {
	struct vhttp *h;
	struct event *ev;
	LIST_ENTRY(vsock) link;
};

struct vhttp_req {
	struct vhttp *h;
	CURL *easy;
	struct curl_slist *headers;
	char *body;                     /* our copy: wiped, unlike COPYPOSTFIELDS */
	size_t body_len;
	char *resp;                     /* the answer so far, NUL-terminated */
	size_t resp_len, resp_cap;
	long retry_after;
	int too_large;
	int delivering;                 /* its callback is running */
	vhttp_cb cb;
	void *arg;
	char errbuf[CURL_ERROR_SIZE];
	LIST_ENTRY(vhttp_req) link;
};

struct vhttp {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	int delivering;                 /* inside deliver_done: no vhttp_free */
	LIST_HEAD(, vhttp_req) reqs;
	LIST_HEAD(, vsock) socks;
};

/* curl_global_init is not thread-safe before 7.84: count users under a lock. */
static pthread_mutex_t global_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned global_users;

static int
global_ref(void)
{
	char err[256];
	int rc = 0;

	pthread_mutex_lock(&global_lock);
	if (global_users == 0 && curl_dl_load(err, sizeof(err)) == -1) {
		log_warnx("vault: %s", err);
		rc = -1;
	} else if (global_users == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_warnx("vault: curl_global_init failed");
		rc = -1;
	} else {
		global_users++;
	}
	pthread_mutex_unlock(&global_lock);
	return rc;
}

static void
global_unref(void)
{
	pthread_mutex_lock(&global_lock);
	assert(global_users > 0);
	if (--global_users == 0)
		curl_global_cleanup();
	pthread_mutex_unlock(&global_lock);
}

/* --- finishing ---------------------------------------------------------- */

/* The header list holds a copy of the token: wipe every line (the list's
 * layout is public in curl.h) before libcurl frees it. libcurl also copies
 * the headers into the request it sends; that buffer is out of our reach. */
static void
headers_wipe_free(struct curl_slist *l)
{
	for (struct curl_slist *i = l; i != NULL; i = i->next)
		if (i->data != NULL)
			explicit_bzero(i->data, strlen(i->data));
	curl_slist_free_all(l);
}

static void
req_free(struct vhttp_req *r)
{
	LIST_REMOVE(r, link);
	curl_multi_remove_handle(r->h->multi, r->easy);
	curl_easy_cleanup(r->easy);
	headers_wipe_free(r->headers);
	wipe_free(r->body, r->body_len);
	wipe_free(r->resp, r->resp_cap);
	free(r);
}

static void
deliver(struct vhttp_req *r, CURLcode rc)
{
	struct vhttp_result res = { 0, "", 0, NULL, r->retry_after };
	const char *url = NULL;

	if (rc == CURLE_OK) {
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &res.status);
		if (r->resp != NULL) {
			res.body = r->resp;
			res.body_len = r->resp_len;
		}
	} else if (r->too_large)
		res.error = "answer from Vault too large";
	else
		res.error = r->errbuf[0] != '\0' ? r->errbuf : curl_easy_strerror(rc);
	curl_easy_getinfo(r->easy, CURLINFO_EFFECTIVE_URL, &url);
	log_debug("vault: %s -> %ld%s%s", url != NULL ? url : "?", res.status,
	    res.error != NULL ? ": " : "", res.error != NULL ? res.error : "");
	r->delivering = 1;
	r->cb(r->arg, &res);
	req_free(r);
}

/* Collect finished transfers. A callback may cancel another request:
 * curl_multi_remove_handle drops its pending message, so the loop never
 * sees a freed request. */
static void
deliver_done(struct vhttp *h)
{
	CURLMsg *m;
	int left;
	void *priv;

	h->delivering++;
	while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
		deliver(priv, m->data.result);
	}
	h->delivering--;
}

/* --- libevent <-> curl -------------------------------------------------- */

static void
on_socket(evutil_socket_t fd, short what, void *arg)
{
	struct vhttp *h = arg;
	int action = 0, running;

	if (what & EV_READ)
		action |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	curl_multi_socket_action(h->multi, fd, action, &running);
	deliver_done(h);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct vhttp *h = arg;
	int running;
	(void)fd;
	(void)what;

	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	deliver_done(h);
}

static void
vsock_free(struct vsock *s)
{
	LIST_REMOVE(s, link);
	event_free(s->ev);
	free(s);
}

/* CURLMOPT_SOCKETFUNCTION: one persistent event per socket curl uses. */
static int
sock_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct vhttp *h = userp;
	struct vsock *s = socketp;
	short kind = EV_PERSIST;
	(void)e;

	if (what == CURL_POLL_REMOVE) {
		if (s != NULL)
			vsock_free(s);
		return 0;
	}
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	if (s == NULL) {
		s = xcalloc(1, sizeof(*s));
		if ((s->ev = event_new(h->base, fd, kind, on_socket, h)) == NULL)
			fatalx("event_new: out of memory");
		s->h = h;
		LIST_INSERT_HEAD(&h->socks, s, link);
		curl_multi_assign(h->multi, fd, s);
	} else {
		/* may run inside this event's own callback: del, then assign */
		event_del(s->ev);
		event_assign(s->ev, h->base, fd, kind, on_socket, h);
	}
	event_add(s->ev, NULL);
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: -1 stops the timer; 0 means "soon", which is a
 * zero timer rather than a call into curl from inside curl. */
static int
timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	struct vhttp *h = userp;
	struct timeval tv;
	(void)m;

	if (timeout_ms < 0) {
		evtimer_del(h->timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(h->timer, &tv);
	return 0;
}

/* --- instance ----------------------------------------------------------- */

struct vhttp *
vhttp_new(struct event_base *base)
{
	struct vhttp *h;

	if (global_ref() == -1)
		return NULL;
	h = xcalloc(1, sizeof(*h));
	h->base = base;
	LIST_INIT(&h->reqs);
	LIST_INIT(&h->socks);
	if ((h->multi = curl_multi_init()) == NULL ||
	    (h->timer = evtimer_new(base, on_timer, h)) == NULL) {
		if (h->multi != NULL)
			curl_multi_cleanup(h->multi);
		free(h);
		global_unref();
		log_warnx("vault: cannot set up libcurl");
		return NULL;
	}
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	return h;
}

void
vhttp_free(struct vhttp *h)
{
	if (h == NULL)
		return;
	assert(h->delivering == 0);
	while (!LIST_EMPTY(&h->reqs))
		req_free(LIST_FIRST(&h->reqs));
	/* closing cached connections reports CURL_POLL_REMOVE for most
	 * sockets; free whatever it did not */
	curl_multi_cleanup(h->multi);
	while (!LIST_EMPTY(&h->socks))
		vsock_free(LIST_FIRST(&h->socks));
	event_free(h->timer);
	free(h);
	global_unref();
}

/* --- one request -------------------------------------------------------- */

/* Grow by copying so no freed block keeps a piece of the answer. */
static int
resp_reserve(struct vhttp_req *r, size_t more)
{
	size_t cap = r->resp_cap != 0 ? r->resp_cap : 4096;
	char *p;

	if (more > VHTTP_MAX_ANSWER - r->resp_len)
		return -1;
	while (cap < r->resp_len + more + 1)
		cap *= 2;
	if (cap == r->resp_cap)
		return 0;
	p = xmalloc(cap);
	if (r->resp_len > 0)
		memcpy(p, r->resp, r->resp_len);
	wipe_free(r->resp, r->resp_cap);
	r->resp = p;
	r->resp_cap = cap;
	return 0;
}

static size_t
write_cb(char *data, size_t size, size_t n, void *arg)
{
	struct vhttp_req *r = arg;

	n *= size;                      /* size is always 1 */
	if (resp_reserve(r, n) == -1) {
		r->too_large = 1;
		return 0;               /* makes curl fail with a write error */
	}
	memcpy(r->resp + r->resp_len, data, n);
	r->resp_len += n;
	r->resp[r->resp_len] = '\0';
	return n;
}

/* Retry-After as delta-seconds (what Vault sends); an HTTP date counts as
 * absent. Each status line (a 100 Continue, a redirect) starts afresh. */
static size_t
header_cb(char *line, size_t size, size_t n, void *arg)
{
	struct vhttp_req *r = arg;
	static const char name[] = "retry-after:";
	size_t len = size * n, i = sizeof(name) - 1;
	long v = 0;

	if (len >= 5 && ascii_ncasecmp(line, "HTTP/", 5) == 0)
		r->retry_after = -1;
	if (len < i || ascii_ncasecmp(line, name, i) != 0)
		return len;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (i == len || line[i] < '0' || line[i] > '9')
		return len;
	for (; i < len && line[i] >= '0' && line[i] <= '9'; i++)
		v = v < 100000000 ? v * 10 + (line[i] - '0') : v;
	while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' ||
	    line[i] == '\n'))
		i++;
	r->retry_after = i == len ? v : -1;
	return len;
}

/* A header value with CR or LF would inject headers of its own. */
static int
header_safe(const char *v)
{
	for (; *v != '\0'; v++)
		if ((unsigned char)*v < 0x20 && *v != '\t')
			return 0;
	return 1;
}

static int
add_header(struct vhttp_req *r, const char *name, const char *value)
{
	struct curl_slist *l;
	char *line = xasprintf("%s: %s", name, value);

	l = curl_slist_append(r->headers, line);
	wipe_free(line, strlen(line));  /* curl keeps its own copy */
	if (l == NULL)
		return -1;
	r->headers = l;
	return 0;
}

/* The token's line in the list is wiped by headers_wipe_free. */
static int
req_headers(struct vhttp_req *r, const struct vhttp_request *rq)
{
	if ((rq->token != NULL && add_header(r, "X-Vault-Token", rq->token) == -1) ||
	    (rq->ns != NULL && add_header(r, "X-Vault-Namespace", rq->ns) == -1) ||
	    add_header(r, "X-Vault-Request", "true") == -1 ||
	    (rq->body != NULL && add_header(r, "Content-Type", "application/json") == -1))
		return -1;
	/* no "Expect: 100-continue" round trip for larger bodies (CSRs) */
	if ((r->headers = curl_slist_append(r->headers, "Expect:")) == NULL)
		return -1;
	return 0;
}

static const char *
check_request(const struct vhttp_request *rq)
{
	static const char *const methods[] = { "GET", "POST", "PUT", "DELETE" };
	size_t i;

	if (rq->url == NULL || rq->method == NULL)
		return "no URL or method";
	for (i = 0; i < ARRAY_LEN(methods); i++)
		if (strcmp(rq->method, methods[i]) == 0)
			break;
	if (i == ARRAY_LEN(methods))
		return "unsupported HTTP method";
	if ((rq->token != NULL && !header_safe(rq->token)) ||
	    (rq->ns != NULL && !header_safe(rq->ns)))
		return "control characters in the token or namespace";
	if (rq->body != NULL && rq->body_len > 0x7fffffff)
		return "request body too large";
	return NULL;
}

static void
set_method(struct vhttp_req *r, const char *method)
{
	if (strcmp(method, "GET") == 0)
		return;
	/* POST, PUT and DELETE all send our copy of the body (maybe empty)
	 * with a Content-Length */
	curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->body != NULL ? r->body : "");
	curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE, (long)r->body_len);
	if (strcmp(method, "POST") != 0)
		curl_easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, method);
}

/* Options that are the same for every request. TLS is always verified;
 * environment proxies are ignored (Vault is reached directly). */
static void
set_fixed(struct vhttp_req *r)
{
	CURL *e = r->easy;

	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
#else
	curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTPS | CURLPROTO_HTTP));
#endif
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, VHTTP_CONNECT_MS);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "mtlsd/" PACKAGE_VERSION);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
}

static int
req_setup(struct vhttp_req *r, const struct vhttp_request *rq)
{
	CURL *e = r->easy;

	set_fixed(r);
	set_method(r, rq->method);
	if (curl_easy_setopt(e, CURLOPT_URL, rq->url) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
		rq->timeout_ms > 0 ? rq->timeout_ms : VHTTP_TIMEOUT_MS) != CURLE_OK ||
	    (rq->ca_file != NULL &&
		curl_easy_setopt(e, CURLOPT_CAINFO, rq->ca_file) != CURLE_OK))
		return -1;
	if (req_headers(r, rq) == -1)
		return -1;
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
	return 0;
}

struct vhttp_req *
vhttp_start(struct vhttp *h, const struct vhttp_request *rq, vhttp_cb cb, void *arg, char *err,
    size_t errlen)
{
	struct vhttp_req *r;
	const char *why;

	if ((why = check_request(rq)) != NULL) {
		snprintf(err, errlen, "%s", why);
		return NULL;
	}
	r = xcalloc(1, sizeof(*r));
	r->h = h;
	r->cb = cb;
	r->arg = arg;
	r->retry_after = -1;
	if (rq->body != NULL) {
		r->body = xmalloc(rq->body_len + 1);
		memcpy(r->body, rq->body, rq->body_len);
		r->body[rq->body_len] = '\0';
		r->body_len = rq->body_len;
	}
	LIST_INSERT_HEAD(&h->reqs, r, link);
	if ((r->easy = curl_easy_init()) == NULL || req_setup(r, rq) == -1 ||
	    curl_multi_add_handle(h->multi, r->easy) != CURLM_OK) {
		snprintf(err, errlen, "cannot set up the request (libcurl)");
		req_free(r);
		return NULL;
	}
	return r;
}

/* A request whose callback is running is finished already: cancelling it
 * from there is a no-op, deliver() frees it when the callback returns. */
void
vhttp_cancel(struct vhttp_req *r)
{
	if (r == NULL || r->delivering)
		return;
	req_free(r);
}
