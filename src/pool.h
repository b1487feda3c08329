/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MTLSD_POOL_H
#define MTLSD_POOL_H
#endif
