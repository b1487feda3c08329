/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libcurl loaded on first use (see curl_dl.h). */
#include "autoconf.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "curl_dl.h"
#include "util.h"

#define CURL_SONAME "libcurl.so.4"

struct curl_dl curl_dl;

static const struct {
	const char *name;
	size_t off;
} syms[] = {
#define SYM(field) { "curl_" #field, offsetof(struct curl_dl, field) }
	SYM(global_init), SYM(global_cleanup), SYM(easy_init), SYM(easy_cleanup),
	SYM(easy_setopt), SYM(easy_getinfo), SYM(easy_strerror), SYM(multi_init),
	SYM(multi_cleanup), SYM(multi_setopt), SYM(multi_add_handle),
	SYM(multi_remove_handle), SYM(multi_assign), SYM(multi_socket_action),
	SYM(multi_info_read), SYM(slist_append), SYM(slist_free_all),
#undef SYM
};

int
curl_dl_load(char *err, size_t errlen)
{
	static void *lib;
	struct curl_dl loaded;

	if (lib != NULL)
		return 0;
	void *h = dlopen(CURL_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		snprintf(err, errlen, "cannot load %s (Debian package libcurl4): %s",
		    CURL_SONAME, dlerror());
		return -1;
	}
	for (size_t i = 0; i < ARRAY_LEN(syms); i++) {
		void *p = dlsym(h, syms[i].name);
		if (p == NULL) {
			snprintf(err, errlen, "%s has no %s", CURL_SONAME, syms[i].name);
			dlclose(h);
			return -1;
		}
		/* POSIX: a function pointer may be stored through a void pointer */
		memcpy((char *)&loaded + syms[i].off, &p, sizeof(p));
	}
	curl_dl = loaded;
	lib = h;
	return 0;
}
