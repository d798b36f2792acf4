/* SPDX-License-Identifier: MIT */
/*
 * The calls the driver's PE half makes into its unix half
 * (__wine_unix_call), and their parameters. The one definition: C includes
 * it, the unix half binds it with bindgen. 64-bit PE only, so pointers have
 * the same size on both sides.
 *
 * The PE half reads and writes the shared memory directly (buffers, the
 * cycle record, done_seq); the unix half does what PE code cannot: the
 * socket, the mapping, futex waits and real-time scheduling.
 */
#ifndef ASIO_BRIDGE_UNIXLIB_H
#define ASIO_BRIDGE_UNIXLIB_H

#include <stdint.h>
#include "../include/asio-bridge.h"

enum asio_bridge_unix_call {
	ASIO_BRIDGE_UNIX_ATTACH,
	ASIO_BRIDGE_UNIX_DETACH,
	ASIO_BRIDGE_UNIX_WAIT,
	ASIO_BRIDGE_UNIX_SET_REALTIME,
	ASIO_BRIDGE_UNIX_CALL_COUNT,
};

#define ASIO_BRIDGE_ERROR_LEN 124u /* getErrorMessage's buffer */

struct asio_bridge_attach_params {
	const char *node;    /* in: bridge node name */
	const char *client;  /* in: what the node tells others, e.g. "Reaper.exe" */
	uint64_t session;    /* out: handle for the other calls */
	struct asio_bridge_shm *shm; /* out: the mapping, validated by the unix half */
	char error[ASIO_BRIDGE_ERROR_LEN]; /* out: why not, for a musician */
};

struct asio_bridge_detach_params {
	uint64_t session;
};

enum asio_bridge_wait_result {
	ASIO_BRIDGE_WAIT_CYCLE = 0,
	ASIO_BRIDGE_WAIT_TIMEOUT = 1,
	ASIO_BRIDGE_WAIT_DETACHED = 2,
};

struct asio_bridge_wait_params {
	uint64_t session;     /* in; only the callback thread waits */
	uint32_t timeout_ms;  /* in: never wait longer */
	uint32_t result;      /* out: enum asio_bridge_wait_result */
	uint32_t seq;         /* out: the cycle to complete (write done_seq) */
	uint32_t half;
	uint32_t frames;
	uint32_t rate;
	uint64_t position;
	uint64_t nsec;
	uint32_t missed;      /* cycles published since the last wait and not seen */
	uint32_t late_cycles;
};

struct asio_bridge_realtime_params {
	int32_t priority;     /* in: SCHED_FIFO priority for the calling thread */
	int32_t result;       /* out: 0 or an errno (EPERM where not permitted) */
};

#endif /* ASIO_BRIDGE_UNIXLIB_H */
