/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * wolfSSL client contexts and connections. Besides x509.c (certificate
 * material parsing) this is the only file that includes wolfSSL headers.
 */
#include "autoconf.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "certstore.h"
#include "config.h"
#include "log.h"
#include "tls.h"
#include "util.h"

struct tls_ctx {
	unsigned refs;                  /* atomic: generations and connections */
	pthread_mutex_t lock;           /* session: workers share the context */
	WOLFSSL_CTX *ctx;
	char *server_name;
	int use_sni;                    /* not for IP literals (RFC 6066) */
	uint8_t (*pins)[32];
	size_t n_pins;
	WOLFSSL_SESSION *session;       /* last session, offered for resumption */
};

/*
 * wolfSSL reads a record in two pieces, the 5-byte header and then the rest,
 * asking for exactly what it needs: with its own socket I/O that is two
 * recv() per record and a third that fails with EAGAIN. Our receive callback
 * reads up to TLS_READAHEAD bytes at once and serves wolfSSL from them
 * (larger requests go straight to the socket), and remembers whether the
 * socket had no more, so the caller can stop before the EAGAIN read.
 */
#define TLS_READAHEAD 4096

struct tls_conn {
	WOLFSSL *ssl;
	struct tls_ctx *ctx;
	int fd;
	int offered_session;
	int failed_tls;
	int sock_drained;               /* the last recv() got less than asked */
	int peer_reset;                 /* recv() failed with ECONNRESET */
	int close_notify;               /* the server's close_notify arrived */
	int session_saved;              /* tls_conn_save_session done */
	size_t ra_off, ra_len;          /* unread bytes in ra */
	char err[256];
	unsigned char ra[TLS_READAHEAD];
};

/*
 * The suites we offer: TLS 1.3's, then TLS 1.2 with ECDHE or DHE key
 * exchange, AEAD first and CBC last for older servers. wolfSSL's default
 * list also offers anonymous, NULL (no encryption), RC4, 3DES and PSK
 * suites: a man in the middle could pick one of those, so the list is
 * always set. The bulk cipher first in the list is the one the server will
 * most likely pick (nginx and OpenSSL follow the client's order by
 * default): AES-GCM when wolfSSL was built with AES-NI, else
 * ChaCha20-Poly1305, three times faster than table-driven AES in C (431
 * against 146 MB/s on Debian's libwolfssl), as BoringSSL and Go choose
 * when the CPU lacks AES instructions.
 */
#define SUITES_TLS13_AES "TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:"
#define SUITES_TLS13_CHACHA "TLS13-CHACHA20-POLY1305-SHA256:"
#define SUITES_TLS12_AES "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
#define SUITES_TLS12_CHACHA "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
#define SUITES_TLS12_OLD "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:" \
	"ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384:" \
	"ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA"
#ifdef WOLFSSL_AESNI
#define TLS_CIPHER_PREFERENCE "aes-gcm"
#define TLS_SUITES SUITES_TLS13_AES SUITES_TLS13_CHACHA \
	SUITES_TLS12_AES SUITES_TLS12_CHACHA SUITES_TLS12_OLD
#else
#define TLS_CIPHER_PREFERENCE "chacha20-poly1305"
#define TLS_SUITES SUITES_TLS13_CHACHA SUITES_TLS13_AES \
	SUITES_TLS12_CHACHA SUITES_TLS12_AES SUITES_TLS12_OLD
#endif

const char *
tls_cipher_preference(void)
{
	return TLS_CIPHER_PREFERENCE;
}

int
tls_global_init(void)
{
	return wolfSSL_Init() == WOLFSSL_SUCCESS ? 0 : -1;
}

void
tls_global_cleanup(void)
{
	wolfSSL_Cleanup();
}

static int
is_ip_literal(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/*
 * Key exchange groups, X25519 first (its key share is the one sent in the
 * ClientHello). With Debian's libwolfssl an ECDH on P-256 goes through
 * generic big-number code that allocates ~560 KiB of temporary points per
 * handshake: 32 connections opened at once took the heap to 15 MiB. X25519
 * works in fixed-size stack buffers and is faster too.
 */
static int
ctx_set_groups(WOLFSSL_CTX *ctx, char *err, size_t errlen)
{
	int groups[] = { WOLFSSL_ECC_X25519, WOLFSSL_ECC_SECP256R1, WOLFSSL_ECC_SECP384R1 };

	if (wolfSSL_CTX_set_groups(ctx, groups, (int)ARRAY_LEN(groups)) != WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "cannot set the TLS key exchange groups");
		return -1;
	}
	return 0;
}

static int
ctx_load_trust(WOLFSSL_CTX *ctx, const struct mapping *m, char *err, size_t errlen)
{
	int ret;

	if (m->trust_ca_file != NULL) {
		ret = wolfSSL_CTX_load_verify_locations(ctx, m->trust_ca_file, NULL);
		if (ret != WOLFSSL_SUCCESS) {
			snprintf(err, errlen, "cannot load trust.ca_file %s: %s",
			    m->trust_ca_file, wolfSSL_ERR_reason_error_string((unsigned long)ret));
			return -1;
		}
	} else if (wolfSSL_CTX_load_system_CA_certs(ctx) != WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "cannot load the system CA bundle (set trust.ca_file)");
		return -1;
	}
	wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER, NULL);
	return 0;
}

static int
ctx_load_identity(WOLFSSL_CTX *ctx, const struct cert_material *cm, char *err, size_t errlen)
{
	if (wolfSSL_CTX_use_certificate_chain_buffer(ctx,
	    (const unsigned char *)cm->chain_pem, (long)cm->chain_pem_len) != WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "cannot use certificate chain from %s", cm->cert_file);
		return -1;
	}
	if (wolfSSL_CTX_use_PrivateKey_buffer(ctx, cm->key_der, (long)cm->key_der_len,
	    WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "cannot use private key from %s", cm->key_file);
		return -1;
	}
	if (wolfSSL_CTX_check_private_key(ctx) != WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "private key %s does not match certificate %s",
		    cm->key_file, cm->cert_file);
		return -1;
	}
	return 0;
}

struct tls_ctx *
tls_ctx_new(const struct mapping *m, const struct cert_material *cm, char *err, size_t errlen)
{
	struct tls_ctx *t = xcalloc(1, sizeof(*t));

	t->refs = 1;
	pthread_mutex_init(&t->lock, NULL);
	t->ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
	if (t->ctx == NULL) {
		snprintf(err, errlen, "cannot create TLS context");
		goto fail;
	}
	if (wolfSSL_CTX_SetMinVersion(t->ctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "cannot require TLS 1.2 or later");
		goto fail;
	}
	if (wolfSSL_CTX_set_cipher_list(t->ctx, TLS_SUITES) != WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "cannot set the TLS cipher suites");
		goto fail;
	}
	if (ctx_set_groups(t->ctx, err, errlen) < 0)
		goto fail;
	if (ctx_load_trust(t->ctx, m, err, errlen) < 0)
		goto fail;
	if (cm != NULL && ctx_load_identity(t->ctx, cm, err, errlen) < 0)
		goto fail;
	(void)wolfSSL_CTX_UseSessionTicket(t->ctx);
	t->server_name = xstrdup(m->server_name);
	t->use_sni = !is_ip_literal(m->server_name);
	if (m->n_pins > 0) {
		t->pins = xcalloc(m->n_pins, sizeof(*t->pins));
		memcpy(t->pins, m->pins, m->n_pins * sizeof(*t->pins));
		t->n_pins = m->n_pins;
	}
	return t;
fail:
	tls_ctx_free(t);
	return NULL;
}

/* Drop the saved session; t->lock held. */
static void
ctx_drop_session(struct tls_ctx *t)
{
	if (t->session != NULL) {
		wolfSSL_SESSION_free(t->session);
		__atomic_store_n(&t->session, NULL, __ATOMIC_RELAXED);
	}
}

void
tls_ctx_forget_session(struct tls_ctx *t)
{
	pthread_mutex_lock(&t->lock);
	ctx_drop_session(t);
	pthread_mutex_unlock(&t->lock);
}

void
tls_ctx_ref(struct tls_ctx *t)
{
	__atomic_add_fetch(&t->refs, 1, __ATOMIC_RELAXED);
}

void
tls_ctx_free(struct tls_ctx *t)
{
	if (t == NULL || __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	ctx_drop_session(t);
	pthread_mutex_destroy(&t->lock);
	if (t->ctx != NULL)
		wolfSSL_CTX_free(t->ctx);
	free(t->server_name);
	free(t->pins);
	free(t);
}

/* wolfSSL's EmbedReceive error mapping, for an errno. */
static int
io_error(int err)
{
	if (err == EAGAIN || err == EWOULDBLOCK)
		return WOLFSSL_CBIO_ERR_WANT_READ;
	if (err == ECONNRESET)
		return WOLFSSL_CBIO_ERR_CONN_RST;
	if (err == EINTR)
		return WOLFSSL_CBIO_ERR_ISR;
	if (err == EPIPE || err == ECONNABORTED)
		return WOLFSSL_CBIO_ERR_CONN_CLOSE;
	return WOLFSSL_CBIO_ERR_GENERAL;
}

/* recv() for io_recv: bytes, or a WOLFSSL_CBIO_ERR_* as EmbedReceive says. */
static int
io_recv_sock(struct tls_conn *c, void *buf, size_t len)
{
	ssize_t r = recv(c->fd, buf, len, 0);

	if (r < 0) {
		c->sock_drained = 1;
		if (errno == ECONNRESET)
			c->peer_reset = 1;
		return io_error(errno);
	}
	if (r == 0)
		return WOLFSSL_CBIO_ERR_CONN_CLOSE;
	c->sock_drained = (size_t)r < len;
	return (int)r;
}

/* wolfSSL's receive callback: up to sz bytes, from the read-ahead first. */
static int
io_recv(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
	struct tls_conn *c = arg;
	size_t want = (size_t)sz, n;
	int r;

	(void)ssl;
	if (c->ra_len == 0) {
		if (want >= sizeof(c->ra))
			return io_recv_sock(c, buf, want);
		if ((r = io_recv_sock(c, c->ra, sizeof(c->ra))) <= 0)
			return r;
		c->ra_off = 0;
		c->ra_len = (size_t)r;
	}
	n = want < c->ra_len ? want : c->ra_len;
	memcpy(buf, c->ra + c->ra_off, n);
	c->ra_off += n;
	c->ra_len -= n;
	return (int)n;
}

struct tls_conn *
tls_conn_new(struct tls_ctx *t, int fd)
{
	struct tls_conn *c = xcalloc(1, sizeof(*c));

	c->ctx = t;
	c->fd = fd;
	tls_ctx_ref(t);
	if ((c->ssl = wolfSSL_new(t->ctx)) == NULL)
		goto fail;
	if (wolfSSL_set_fd(c->ssl, fd) != WOLFSSL_SUCCESS)
		goto fail;
	/* sends stay wolfSSL's own (one send() per record already) */
	wolfSSL_SSLSetIORecv(c->ssl, io_recv);
	wolfSSL_SetIOReadCtx(c->ssl, c);
	if (t->use_sni && wolfSSL_UseSNI(c->ssl, WOLFSSL_SNI_HOST_NAME, t->server_name,
	    (unsigned short)strlen(t->server_name)) != WOLFSSL_SUCCESS)
		goto fail;
	if (wolfSSL_check_domain_name(c->ssl, t->server_name) != WOLFSSL_SUCCESS)
		goto fail;
	pthread_mutex_lock(&t->lock);
	if (t->session != NULL)
		c->offered_session = wolfSSL_set_session(c->ssl, t->session) == WOLFSSL_SUCCESS;
	pthread_mutex_unlock(&t->lock);
	return c;
fail:
	tls_conn_free(c);
	return NULL;
}

void
tls_conn_free(struct tls_conn *c)
{
	if (c == NULL)
		return;
	if (c->ssl != NULL)
		wolfSSL_free(c->ssl);
	tls_ctx_free(c->ctx);
	free(c);
}

/* Alerts by which a server says it does not accept our client certificate. */
static int
alert_rejects_client_cert(int code)
{
	switch (code) {
	case 42: case 43: case 44: case 45: case 46: case 48: case 49: case 116:
		return 1;
	}
	return 0;
}

static void
describe_verify_error(struct tls_conn *c, int code)
{
	const char *why;

	switch (code) {
	case DOMAIN_NAME_MISMATCH:
		snprintf(c->err, sizeof(c->err),
		    "server certificate does not match name %s", c->ctx->server_name);
		return;
	case ASN_NO_SIGNER_E:
		why = "issuer not trusted (unknown CA; check trust.ca_file)";
		break;
	case ASN_AFTER_DATE_E:
		why = "server certificate expired";
		break;
	case ASN_BEFORE_DATE_E:
		why = "server certificate not yet valid";
		break;
	case ASN_SIG_CONFIRM_E:
		why = "bad signature in server chain";
		break;
	default:
		why = wolfSSL_ERR_reason_error_string((unsigned long)code);
	}
	snprintf(c->err, sizeof(c->err), "server certificate verification failed: %s", why);
}

/* Turn the last wolfSSL error into a one-line reason. */
static enum tls_io
conn_fail(struct tls_conn *c, int code)
{
	WOLFSSL_ALERT_HISTORY h;

	memset(&h, 0, sizeof(h));
	h.last_rx.code = -1;
	(void)wolfSSL_get_alert_history(c->ssl, &h);
	c->failed_tls = 1;
	if (code == SOCKET_PEER_CLOSED_E || code == SOCKET_ERROR_E) {
		c->failed_tls = 0;
		snprintf(c->err, sizeof(c->err), "connection closed by server");
	} else if (h.last_rx.code >= 0 && h.last_rx.level == alert_fatal) {
		snprintf(c->err, sizeof(c->err), "%s (alert %s)",
		    alert_rejects_client_cert(h.last_rx.code) ?
		    "server rejected our client certificate" : "server sent a fatal alert",
		    wolfSSL_alert_desc_string_long(h.last_rx.code));
	} else if (code == DOMAIN_NAME_MISMATCH || code == ASN_NO_SIGNER_E ||
	    code == ASN_AFTER_DATE_E || code == ASN_BEFORE_DATE_E ||
	    code == ASN_SIG_CONFIRM_E || code == VERIFY_CERT_ERROR) {
		describe_verify_error(c, code);
	} else {
		snprintf(c->err, sizeof(c->err), "TLS error: %s",
		    wolfSSL_ERR_reason_error_string((unsigned long)code));
	}
	return TLS_IO_ERROR;
}

static enum tls_io
conn_result(struct tls_conn *c, int ret)
{
	int code = wolfSSL_get_error(c->ssl, ret);

	switch (code) {
	case WOLFSSL_ERROR_WANT_READ:
		return TLS_IO_WANT_READ;
	case WOLFSSL_ERROR_WANT_WRITE:
		return TLS_IO_WANT_WRITE;
	case WOLFSSL_ERROR_ZERO_RETURN:
		c->close_notify = 1;
		return TLS_IO_CLOSED;
	}
	return conn_fail(c, code);
}

static int
check_pins(struct tls_conn *c)
{
	WOLFSSL_X509 *peer;
	WOLFSSL_EVP_PKEY *pk = NULL;
	unsigned char *der = NULL, hash[WC_SHA256_DIGEST_SIZE];
	int len, ok = 0;

	if (c->ctx->n_pins == 0)
		return 0;
	if ((peer = wolfSSL_get_peer_certificate(c->ssl)) == NULL)
		goto out;
	if ((pk = wolfSSL_X509_get_pubkey(peer)) == NULL)
		goto out;
	if ((len = wolfSSL_i2d_PUBKEY(pk, &der)) <= 0)
		goto out;
	if (wc_Sha256Hash(der, (word32)len, hash) != 0)
		goto out;
	for (size_t i = 0; i < c->ctx->n_pins && !ok; i++)
		ok = memcmp(hash, c->ctx->pins[i], sizeof(hash)) == 0;
out:
	XFREE(der, NULL, DYNAMIC_TYPE_OPENSSL);
	wolfSSL_EVP_PKEY_free(pk);
	wolfSSL_X509_free(peer);
	if (!ok) {
		c->failed_tls = 1;
		snprintf(c->err, sizeof(c->err),
		    "server public key matches none of trust.pin_sha256");
		return -1;
	}
	return 0;
}

enum tls_io
tls_handshake(struct tls_conn *c)
{
	int ret = wolfSSL_connect(c->ssl);

	if (ret != WOLFSSL_SUCCESS)
		return conn_result(c, ret);
	if (check_pins(c) < 0)
		return TLS_IO_ERROR;
	return TLS_IO_OK;
}

enum tls_io
tls_read(struct tls_conn *c, void *buf, size_t len, size_t *n)
{
	int ret = wolfSSL_read(c->ssl, buf, (int)(len > INT32_MAX ? INT32_MAX : len));

	if (ret > 0) {
		*n = (size_t)ret;
		return TLS_IO_OK;
	}
	*n = 0;
	if (wolfSSL_get_error(c->ssl, ret) == SOCKET_PEER_CLOSED_E) {
		if (!c->peer_reset)
			return TLS_IO_CLOSED;  /* many servers close without close_notify */
		/* wolfSSL reports a reset as a close; a reset ends no body */
		c->failed_tls = 0;
		snprintf(c->err, sizeof(c->err), "connection reset by server");
		return TLS_IO_ERROR;
	}
	return conn_result(c, ret);
}

int
tls_closed_cleanly(const struct tls_conn *c)
{
	return c->close_notify;
}

enum tls_io
tls_write(struct tls_conn *c, const void *buf, size_t len, size_t *n)
{
	int ret = wolfSSL_write(c->ssl, buf, (int)(len > INT32_MAX ? INT32_MAX : len));

	if (ret > 0) {
		*n = (size_t)ret;
		return TLS_IO_OK;
	}
	*n = 0;
	return conn_result(c, ret);
}

int
tls_pending(struct tls_conn *c)
{
	return wolfSSL_pending(c->ssl) + (int)c->ra_len;
}

int
tls_read_drained(struct tls_conn *c)
{
	/* wolfSSL asks for no more than the record it is reading, and
	 * returns data only once a record is complete: then nothing is left
	 * but what it decrypted and did not hand out yet (pending) */
	return c->sock_drained && c->ra_len == 0 && wolfSSL_pending(c->ssl) == 0;
}

void
tls_shutdown(struct tls_conn *c)
{
	(void)wolfSSL_shutdown(c->ssl);
}

const char *
tls_conn_error(const struct tls_conn *c)
{
	return c->err[0] ? c->err : "TLS error";
}

int
tls_conn_failed_tls(const struct tls_conn *c)
{
	return c->failed_tls;
}

void
tls_conn_save_session(struct tls_conn *c)
{
	struct tls_ctx *t = c->ctx;
	WOLFSSL_SESSION *s;

	/* once per connection is enough (its ticket came with its first
	 * response), unless the context dropped what it had */
	if (c->session_saved && __atomic_load_n(&t->session, __ATOMIC_RELAXED) != NULL)
		return;         /* the common case: no lock */
	pthread_mutex_lock(&t->lock);
	if ((s = wolfSSL_get1_session(c->ssl)) != NULL) {
		ctx_drop_session(t);
		__atomic_store_n(&t->session, s, __ATOMIC_RELAXED);
		c->session_saved = 1;
	}
	pthread_mutex_unlock(&t->lock);
}

int
tls_conn_offered_session(const struct tls_conn *c)
{
	return c->offered_session;
}

int
tls_conn_resumed(const struct tls_conn *c)
{
	return wolfSSL_session_reused(c->ssl);
}

const char *
tls_conn_version(const struct tls_conn *c)
{
	return wolfSSL_get_version(c->ssl);
}
