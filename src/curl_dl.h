/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libcurl, loaded when Vault is first used rather than linked. libcurl
 * brings OpenSSL, GnuTLS, Kerberos, LDAP, libssh2 and more with it: linked,
 * they cost every mtlsd 3.5 MiB of resident memory and their start-up
 * code, although only a configuration with a vault: section needs them.
 *
 * Include this instead of <curl/curl.h>: the curl_* calls below go through
 * pointers that curl_dl_load() fills with dlsym.
 */
#ifndef MTLSD_CURL_DL_H
#define MTLSD_CURL_DL_H

#include <stddef.h>

#define CURL_DISABLE_TYPECHECK 1        /* its macros would hide ours */
#include <curl/curl.h>

struct curl_dl {
	CURLcode (*global_init)(long);
	void (*global_cleanup)(void);
	CURL *(*easy_init)(void);
	void (*easy_cleanup)(CURL *);
	CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
	const char *(*easy_strerror)(CURLcode);
	CURLM *(*multi_init)(void);
	CURLMcode (*multi_cleanup)(CURLM *);
	CURLMcode (*multi_setopt)(CURLM *, CURLMoption, ...);
	CURLMcode (*multi_add_handle)(CURLM *, CURL *);
	CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
	CURLMcode (*multi_assign)(CURLM *, curl_socket_t, void *);
	CURLMcode (*multi_socket_action)(CURLM *, curl_socket_t, int, int *);
	CURLMsg *(*multi_info_read)(CURLM *, int *);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
	void (*slist_free_all)(struct curl_slist *);
};

extern struct curl_dl curl_dl;

/* Load libcurl.so.4 once; 0, or -1 with the reason in err. */
int curl_dl_load(char *err, size_t errlen);

#define curl_global_init        (curl_dl.global_init)
#define curl_global_cleanup     (curl_dl.global_cleanup)
#define curl_easy_init          (curl_dl.easy_init)
#define curl_easy_cleanup       (curl_dl.easy_cleanup)
#undef curl_easy_setopt       /* curl.h defines these as macros too */
#define curl_easy_setopt        (curl_dl.easy_setopt)
#undef curl_easy_getinfo
#define curl_easy_getinfo       (curl_dl.easy_getinfo)
#define curl_easy_strerror      (curl_dl.easy_strerror)
#define curl_multi_init         (curl_dl.multi_init)
#define curl_multi_cleanup      (curl_dl.multi_cleanup)
#undef curl_multi_setopt
#define curl_multi_setopt       (curl_dl.multi_setopt)
#define curl_multi_add_handle   (curl_dl.multi_add_handle)
#define curl_multi_remove_handle (curl_dl.multi_remove_handle)
#define curl_multi_assign       (curl_dl.multi_assign)
#define curl_multi_socket_action (curl_dl.multi_socket_action)
#define curl_multi_info_read    (curl_dl.multi_info_read)
#define curl_slist_append       (curl_dl.slist_append)
#define curl_slist_free_all     (curl_dl.slist_free_all)

#endif
