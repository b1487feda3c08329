/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MTLSD_X509_H
#define MTLSD_X509_H
#endif
