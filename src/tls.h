/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MTLSD_TLS_H
#define MTLSD_TLS_H
#endif
