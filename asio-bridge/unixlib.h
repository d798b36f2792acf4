/* SPDX-License-Identifier: MIT */
/*
 * The calls the driver's PE half makes into its unix half
 * (__wine_unix_call), and their parameters. The one definition: C includes
 * it, the unix half binds it with bindgen. Built for x86_64 and i386, by
 * mingw for the PE half and by gcc/rustc for the unix half: on i386 the two
 * disagree on where a uint64_t goes in a struct (8- or 4-aligned), so every
 * field has a fixed width, padding is explicit, and addresses travel as
 * uint64_t. The layout is then the same on every build, pinned below.
 *
 * The PE half reads the shared memory's header and cycle record; the unix
 * half does the rest: the socket, the mapping, futex waits, the FIFOs
 * between graph cycles and host buffers, and real-time scheduling.
 */
#ifndef ASIO_BRIDGE_UNIXLIB_H
#define ASIO_BRIDGE_UNIXLIB_H

#include <stdint.h>
#include "../include/asio-bridge.h"

enum asio_bridge_unix_call {
	ASIO_BRIDGE_UNIX_ATTACH,
	ASIO_BRIDGE_UNIX_DETACH,
	ASIO_BRIDGE_UNIX_REQUEST,
	ASIO_BRIDGE_UNIX_LATENCIES,
	ASIO_BRIDGE_UNIX_PREPARE,
	ASIO_BRIDGE_UNIX_PROCESS,
	ASIO_BRIDGE_UNIX_SET_REALTIME,
	ASIO_BRIDGE_UNIX_CLOCK,
	ASIO_BRIDGE_UNIX_CALL_COUNT,
};

#define ASIO_BRIDGE_ERROR_LEN 124u /* getErrorMessage's buffer */

struct asio_bridge_attach_params {
	uint64_t node;       /* in: const char *, the bridge node's name */
	uint64_t client;     /* in: const char *, what the node tells others, e.g. "Reaper.exe" */
	uint32_t hello_flags; /* in: enum asio_bridge_hello_flags */
	uint32_t padding;
	uint64_t session;    /* out: handle for the other calls */
	uint64_t shm;        /* out: struct asio_bridge_shm *, the mapping, validated by the unix half */
	char error[ASIO_BRIDGE_ERROR_LEN]; /* out: why not, for a musician */
	uint32_t padding2;
};

struct asio_bridge_detach_params {
	uint64_t session;
};

/* Asks the node to force the graph's quantum and rate (0: release). */
struct asio_bridge_request_params {
	uint64_t session;
	uint32_t quantum;
	uint32_t rate;
	int32_t result;       /* out: 0 or an errno */
	uint32_t padding;
};

/* What getLatencies reports for host buffers of `frames` before they run:
 * input = what PipeWire reports upstream; output = the node's and the
 * FIFO's delay plus what PipeWire reports downstream. */
struct asio_bridge_latencies_params {
	uint64_t session;
	uint32_t frames;      /* in: host buffer size */
	uint32_t input;       /* out */
	uint32_t output;      /* out */
	uint32_t padding;
};

/* Host buffers for the callback thread: one block the PE half allocated,
 * laid out [half][inputs, then outputs][frames] floats. NULL releases. */
struct asio_bridge_prepare_params {
	uint64_t session;
	uint64_t buffers;     /* float * */
	uint32_t frames;
	uint32_t padding;
};

enum asio_bridge_process_result {
	ASIO_BRIDGE_PROCESS_BLOCK = 0,    /* host half `half` holds input: process it */
	ASIO_BRIDGE_PROCESS_TIMEOUT = 1,  /* no graph cycle within the timeout */
	ASIO_BRIDGE_PROCESS_DETACHED = 2, /* the node is gone */
};

/* The callback thread's one call: takes the output of the half it returned
 * last (if any), runs graph cycles through the FIFOs until a host buffer of
 * input is complete, and returns it. Waits at most timeout_ms. */
struct asio_bridge_process_params {
	uint64_t session;     /* in; only the callback thread calls this */
	uint32_t timeout_ms;  /* in: never wait longer */
	uint32_t result;      /* out: enum asio_bridge_process_result */
	uint32_t half;        /* out: the host half to process */
	uint32_t frames;      /* out: the graph's quantum */
	uint32_t rate;        /* out: the graph's rate */
	uint32_t late_cycles; /* out: cycles the node played silence for, since attach */
	uint32_t input_latency;  /* out: what getLatencies should report now */
	uint32_t output_latency;
	uint64_t nsec;        /* out: graph time of the cycle that completed the buffer */
	/* Where the time goes, CLOCK_MONOTONIC ns, of the wait that brought
	 * the cycle that completed the buffer: */
	uint64_t publish_nsec; /* out: the node's, just before its futex wake */
	uint64_t wait_nsec;    /* out: the wait began (after publish_nsec: the
	                        * cycle was there already, the host was late) */
	uint64_t wake_nsec;    /* out: the wait returned with that cycle */
};

/* CLOCK_MONOTONIC now, which PE code cannot read itself (Wine's
 * QueryPerformanceCounter counts CLOCK_MONOTONIC_RAW): to set the PE
 * side's moments against the node's and the unix half's. */
struct asio_bridge_clock_params {
	uint64_t nsec;        /* out */
};

/* Raises the calling thread to SCHED_FIFO at `priority` (<= 0: leaves it
 * alone) and reports the scheduling it has afterwards, so the driver can
 * tell the host what its callback thread really got. */
struct asio_bridge_realtime_params {
	int32_t priority;     /* in: SCHED_FIFO priority for the calling thread */
	int32_t result;       /* out: 0 or an errno (EPERM where not permitted) */
	int32_t policy;       /* out: the thread's Linux policy now (SCHED_OTHER 0, SCHED_FIFO 1, SCHED_RR 2) */
	int32_t got_priority; /* out: its priority now */
};

#ifndef __cplusplus
#include <stddef.h>
#define ASIO_BRIDGE_UNIX_LAYOUT(type, size) _Static_assert(sizeof(type) == (size), #type)
ASIO_BRIDGE_UNIX_LAYOUT(struct asio_bridge_attach_params, 168);
_Static_assert(offsetof(struct asio_bridge_attach_params, session) == 24, "attach session");
_Static_assert(offsetof(struct asio_bridge_attach_params, error) == 40, "attach error");
ASIO_BRIDGE_UNIX_LAYOUT(struct asio_bridge_detach_params, 8);
ASIO_BRIDGE_UNIX_LAYOUT(struct asio_bridge_request_params, 24);
ASIO_BRIDGE_UNIX_LAYOUT(struct asio_bridge_latencies_params, 24);
ASIO_BRIDGE_UNIX_LAYOUT(struct asio_bridge_prepare_params, 24);
ASIO_BRIDGE_UNIX_LAYOUT(struct asio_bridge_process_params, 72);
_Static_assert(offsetof(struct asio_bridge_process_params, nsec) == 40, "process nsec");
_Static_assert(offsetof(struct asio_bridge_process_params, wake_nsec) == 64, "process wake_nsec");
ASIO_BRIDGE_UNIX_LAYOUT(struct asio_bridge_clock_params, 8);
ASIO_BRIDGE_UNIX_LAYOUT(struct asio_bridge_realtime_params, 16);
#endif

#endif /* ASIO_BRIDGE_UNIXLIB_H */
