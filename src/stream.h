/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MTLSD_STREAM_H
#define MTLSD_STREAM_H
#endif
