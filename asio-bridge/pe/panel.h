/* SPDX-License-Identifier: MIT */
/*
 * The driver's control panel (ASIOControlPanel): a native Win32 dialog
 * showing what the driver sees of the bridge and letting the user choose
 * the settings the driver reads at its next init().
 *
 * The driver fills a struct panel_state and calls panel_open(), which
 * copies it and shows the dialog on a thread of its own, so the host never
 * waits. The dialog only reads and writes the registry: it outlives the
 * driver instance if the host releases it (the thread keeps the DLL loaded).
 *
 * Control IDs are stable: tests (asio-bridge/host/panel-probe.c) find the
 * dialog by its title PANEL_TITLE and read and set the controls by ID.
 */
#ifndef ASIO_BRIDGE_PANEL_H
#define ASIO_BRIDGE_PANEL_H

#include <stdint.h>
#include "asio.h"

#define PANEL_TITLE "PipeWire ASIO Bridge"

/* What the driver sees, shown read-only. */
#define PANEL_ID_NODE            101 /* bridge node name */
#define PANEL_ID_REACHABLE       102 /* "yes", or "no: <why>" */
#define PANEL_ID_BUFFER          103 /* "<n> samples ..." or "none ..." */
#define PANEL_ID_RATE            104 /* "<n> Hz" */
#define PANEL_ID_INPUT_LATENCY   105 /* "<n> samples (<ms> ms)" */
#define PANEL_ID_OUTPUT_LATENCY  106
#define PANEL_ID_LATE_CYCLES     107 /* "<n>" */
#define PANEL_ID_REALTIME        108 /* "granted: ...", "not granted: ...", "not yet...", "off ..." */
#define PANEL_ID_SETTINGS_KEY    109 /* "HKCU\<settings_key>" */
/* The settings, saved by OK (IDOK) and dropped by Cancel (IDCANCEL). */
#define PANEL_ID_PREFERRED_SIZE  110 /* combo box: 32 .. 2048 */
#define PANEL_ID_NODE_SETTING    111 /* edit box */
#define PANEL_ID_AUTOCONNECT     112 /* check box */

/* Registry values under HKEY_CURRENT_USER\<settings_key>. */
#define PANEL_VALUE_PREFERRED_SIZE "PreferredBufferSize" /* REG_DWORD */
#define PANEL_VALUE_NODE "Node"                           /* REG_SZ */
#define PANEL_VALUE_AUTOCONNECT "Autoconnect"             /* REG_DWORD, 0 or 1 */
#define PANEL_VALUE_RT_PRIORITY "RealtimePriority"        /* REG_DWORD; the panel shows, never sets it */
#define PANEL_DEFAULT_PREFERRED_SIZE 256 /* a musician who picks ASIO wants low latency */
#define PANEL_DEFAULT_NODE "asio-bridge"
#define PANEL_DEFAULT_RT_PRIORITY 70

#define PANEL_NAME_LEN 64
#define PANEL_ERROR_LEN 128
#define PANEL_KEY_LEN 256

struct panel_state {
	char node[PANEL_NAME_LEN];      /* the bridge node the driver talks to, or would */
	int reachable;                  /* the driver is attached to it */
	char error[PANEL_ERROR_LEN];    /* why not, when not reachable */
	uint32_t buffer_size;           /* the host's buffer size; 0: no buffers */
	uint32_t quantum;               /* the graph's quantum now */
	uint32_t rate;                  /* the graph's rate now, Hz */
	uint32_t input_latency;         /* what getLatencies reports, samples */
	uint32_t output_latency;
	uint32_t late_cycles;           /* cycles the node played silence for, since attach */
	int rt_known;                   /* the callback thread has run: rt_* below are what it got */
	int rt_requested;               /* SCHED_FIFO priority asked for (0: leave it alone) */
	int rt_result;                  /* 0 or the errno of asking (EPERM: no permission) */
	int rt_policy;                  /* Linux policy it has: 0 other, 1 FIFO, 2 RR */
	int rt_priority;                /* its priority */
	char settings_key[PANEL_KEY_LEN]; /* under HKEY_CURRENT_USER, e.g. "Software\ASIO\PipeWire ASIO Bridge" */
};

/* An entry's settings as saved in the registry, or their defaults: the one
 * reader of them, for the panel and for the driver (which then applies
 * its environment overrides). */
struct panel_settings {
	char node[PANEL_NAME_LEN];
	int rt_priority;
	uint32_t preferred_size;
	int autoconnect;
};

void panel_read_settings(const char *settings_key, struct panel_settings *s);

/* Shows the panel for a copy of `state` and returns at once: ASE_OK, or
 * ASE_NoMemory / ASE_HWMalfunction if it could not. With a panel already
 * open, brings that one to the front instead. */
ASIOError panel_open(const struct panel_state *state);

#endif /* ASIO_BRIDGE_PANEL_H */
