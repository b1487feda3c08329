/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MTLSD_LISTENER_H
#define MTLSD_LISTENER_H
#endif
