/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MTLSD_PROXY_H
#define MTLSD_PROXY_H
#endif
