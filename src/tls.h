/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Upstream TLS (client side) on non-blocking sockets. The only module besides
 * x509.c that sees wolfSSL: the rest of mtlsd uses these opaque types.
 */
#ifndef MTLSD_TLS_H
#define MTLSD_TLS_H

#include <stddef.h>

struct mapping;
struct cert_material;
struct tls_ctx;         /* one per (mapping, client certificate) */
struct tls_conn;        /* one per upstream connection */

enum tls_io {
	TLS_IO_OK = 0,
	TLS_IO_WANT_READ,
	TLS_IO_WANT_WRITE,
	TLS_IO_CLOSED,          /* close_notify, or EOF (tls_closed_cleanly) */
	TLS_IO_ERROR,           /* see tls_conn_error() */
};

int tls_global_init(void);
/* "aes-gcm" or "chacha20-poly1305": the bulk cipher offered first */
const char *tls_cipher_preference(void);
void tls_global_cleanup(void);

/* Context verifying the server against the mapping's trust (system bundle
 * when no ca_file), presenting cm's chain and key. NULL + err on failure. */
struct tls_ctx *tls_ctx_new(const struct mapping *m, const struct cert_material *cm,
    char *err, size_t errlen);
/* Reference counted: a context outlives the generation that made it while a
 * later generation or a connection still uses it. tls_ctx_free unrefs. */
void tls_ctx_ref(struct tls_ctx *ctx);
void tls_ctx_free(struct tls_ctx *ctx);

/* New connection over connected fd (not owned). SNI and name check use the
 * mapping's server_name; a session saved in ctx is offered for resumption. */
struct tls_conn *tls_conn_new(struct tls_ctx *ctx, int fd);
void tls_conn_free(struct tls_conn *c);
enum tls_io tls_handshake(struct tls_conn *c);
enum tls_io tls_read(struct tls_conn *c, void *buf, size_t len, size_t *n);
enum tls_io tls_write(struct tls_conn *c, const void *buf, size_t len, size_t *n);
/* Bytes buffered inside the TLS layer (readable without socket I/O). */
int tls_pending(struct tls_conn *c);
/* After a tls_read that returned data: 1 when the next one would only find
 * the socket empty (nothing buffered, the socket had no more). */
int tls_read_drained(struct tls_conn *c);
/* After TLS_IO_CLOSED: 1 when the server sent close_notify, 0 when it
 * only closed TCP (which ends no close-delimited body: RFC 9112 9.8). */
int tls_closed_cleanly(const struct tls_conn *c);
/* Best effort close_notify (never blocks). */
void tls_shutdown(struct tls_conn *c);
/* One-line reason of the last failure, e.g. "server certificate verification
 * failed: unknown issuer" or "server rejected our certificate (alert
 * bad_certificate)". */
const char *tls_conn_error(const struct tls_conn *c);
/* Was the last failure the peer rejecting us / verification (vs I/O)? */
int tls_conn_failed_tls(const struct tls_conn *c);
/* Keep this connection's session in its ctx for the next connection. */
void tls_conn_save_session(struct tls_conn *c);
int tls_conn_resumed(const struct tls_conn *c);
/* Did this connection offer a saved session? (A server that lost its ticket
 * keys makes wolfSSL 5.5's TLS 1.3 client fail the fallback handshake, so the
 * caller retries once without the session.) */
int tls_conn_offered_session(const struct tls_conn *c);
const char *tls_conn_version(const struct tls_conn *c);
/* Drop the saved session (certificate change). */
void tls_ctx_forget_session(struct tls_ctx *ctx);

#endif
