/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MTLSD_RUNTIME_H
#define MTLSD_RUNTIME_H
#endif
