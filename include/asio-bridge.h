/* SPDX-License-Identifier: MIT */
/*
 * PipeWire ASIO Bridge: the shared-memory and socket ABI.
 *
 * This header is the one definition of everything the bridge node (inside the
 * PipeWire daemon) and its client (the Wine-side ASIO driver, or the native
 * reference client) exchange. Rust binds it with bindgen; C includes it.
 *
 * Attach:
 *   The node listens on a SOCK_SEQPACKET socket at
 *   $XDG_RUNTIME_DIR/asio-bridge/<node.name> (directory mode 0700, peers
 *   must have the daemon's uid). The client sends `asio_bridge_hello`; the
 *   node answers `asio_bridge_welcome` with a sealed memfd (SCM_RIGHTS) or
 *   `asio_bridge_refuse`. The connection stays open while the client is
 *   attached: closing it (or dying) detaches.
 *
 * While attached, the client may send `asio_bridge_request` to ask for a
 * graph quantum and rate; the node forces them on the graph until the client
 * asks for 0 or detaches, and the client sees the result in `cycle`.
 *
 * Each graph cycle k, pipelined mode (the default):
 *   1. the node copies its input ports into input half h = k mod 2;
 *   2. if the client completed cycle k-1 (`done_seq`), the node copies output
 *      half 1-h to its output ports, else it outputs silence and counts a
 *      late cycle;
 *   3. the node publishes `cycle` and increments `seq` (a futex word) and
 *      wakes the client, which processes half h and then stores `done_seq`.
 *
 * Same-cycle mode (ASIO_BRIDGE_INFO_SAME_CYCLE): the node copies its inputs
 * into half h, publishes and wakes the client, then waits on `done_seq` (a
 * futex word the client wakes) until half the quantum has passed. If the
 * client completed cycle k by then, output half h goes out in this cycle;
 * otherwise the cycle plays silence and counts as late.
 */
#ifndef ASIO_BRIDGE_H
#define ASIO_BRIDGE_H

#include <stdint.h>

#define ASIO_BRIDGE_MAGIC 0x42495341u /* "ASIB" as little-endian bytes */
#define ASIO_BRIDGE_VERSION 4u

#define ASIO_BRIDGE_SOCKET_DIR "asio-bridge" /* under $XDG_RUNTIME_DIR */
#define ASIO_BRIDGE_DEFAULT_NODE "asio-bridge"

#define ASIO_BRIDGE_CACHE_LINE 64u
#define ASIO_BRIDGE_MAX_CHANNELS 64u  /* per direction */
#define ASIO_BRIDGE_NAME_LEN 64u      /* node and client names, NUL included */
#define ASIO_BRIDGE_CHANNEL_NAME_LEN 32u /* ASIOChannelInfo.name is 32 bytes */
#define ASIO_BRIDGE_MESSAGE_LEN 256u
#define ASIO_BRIDGE_HALVES 2u
#define ASIO_BRIDGE_MAX_RATES 8u

#define ASIO_BRIDGE_ALIGNED __attribute__((aligned(ASIO_BRIDGE_CACHE_LINE)))

/* Written once by the node before the memfd is handed out. */
struct asio_bridge_info {
	uint32_t magic;
	uint32_t version;
	uint32_t size;           /* bytes of the whole mapping */
	uint32_t n_inputs;       /* channels the client receives (node ports in_*) */
	uint32_t n_outputs;      /* channels the client sends (node ports out_*) */
	uint32_t max_frames;     /* capacity of one channel buffer (clock.quantum-limit) */
	uint32_t channel_stride; /* bytes from one channel buffer to the next, multiple of 64 */
	uint32_t audio_offset;   /* offset of the first audio buffer, multiple of 64 */
	char node_name[ASIO_BRIDGE_NAME_LEN];
	/* What the client may ask for with asio_bridge_request. PipeWire does
	 * not tell plugins its clock settings; these come from the node's
	 * properties (asio.min-quantum, asio.max-quantum, asio.rates). */
	uint32_t min_quantum;
	uint32_t max_quantum;    /* <= max_frames */
	uint32_t flags;          /* enum asio_bridge_info_flags */
	uint32_t n_rates;
	uint32_t rates[ASIO_BRIDGE_MAX_RATES];
} ASIO_BRIDGE_ALIGNED;

enum asio_bridge_info_flags {
	ASIO_BRIDGE_INFO_SAME_CYCLE = 1u << 0,   /* see "Same-cycle mode" above */
	ASIO_BRIDGE_INFO_POWER_OF_TWO = 1u << 1, /* the graph rounds quanta down to a power of two */
};

/* Written by the node each cycle, read by the client, under a seqlock.
 *
 * `seq` counts published cycles and is the futex word the client waits on.
 * It is 0 until the first cycle after attach, then goes up by one per cycle
 * and wraps from 0xffffffff to 0 like any other step (0 is not skipped):
 * compare seqs only for equality, or by the sign of their difference as an
 * int32_t, never with < or >. The half of cycle `seq` is `seq & 1`. Before
 * the first cycle, `frames`, `rate` and `output_delay` already hold the
 * graph's current quantum and rate (0 if the node has not run yet).
 *
 * `lock` makes the record one value: the node makes it odd (relaxed store,
 * then a release fence), stores every other field including `seq` with
 * relaxed atomic stores, then makes it even again with a release store, and
 * wakes futex waiters on `seq`. A reader loads `lock` (acquire), loads the
 * fields (relaxed atomic loads), issues an acquire fence and loads `lock`
 * again (relaxed); the copy is whole only if both loads saw the same even
 * value, otherwise it reads again. `asio_bridge_read_cycle` below does this
 * for C. A node that dies mid-write leaves `lock` odd: readers must bound
 * their retries. */
struct asio_bridge_cycle {
	uint32_t seq;
	uint32_t half;         /* the half the client processes for this cycle: seq & 1 */
	uint32_t frames;       /* quantum of this cycle (clock.duration) */
	uint32_t rate;         /* sample rate (clock.rate.denom) */
	uint64_t position;     /* graph clock position in samples */
	uint64_t nsec;         /* graph clock time of this cycle, CLOCK_MONOTONIC ns */
	uint64_t publish_nsec; /* CLOCK_MONOTONIC ns just before the wake-up */
	uint32_t late_cycles;  /* cycles since attach whose output the client had not
	                        * completed in time: the node played silence instead */
	uint32_t output_delay; /* frames the node adds between the client's output and
	                        * the out_* ports: one quantum when pipelined, else 0 */
	uint32_t upstream_latency;   /* frames PipeWire reports before the in_* ports */
	uint32_t downstream_latency; /* frames PipeWire reports after the out_* ports */
	uint32_t lock;         /* seqlock word, odd while the node writes (see above) */
} ASIO_BRIDGE_ALIGNED;

/* Written by the client, read by the node, each word a single-writer atomic:
 * the client stores `out_frames` (relaxed) and then `done_seq` (release);
 * the node loads `done_seq` (acquire) and then `out_frames` (relaxed), and
 * clamps it. In same-cycle mode `done_seq` is also a futex word the client
 * wakes. */
struct asio_bridge_client {
	uint32_t done_seq;     /* seq of the last cycle whose output half is complete */
	uint32_t out_frames;   /* frames valid in that half, written before done_seq: the
	                        * node plays at most a quantum of them, then silence */
	uint32_t padding[14];
} ASIO_BRIDGE_ALIGNED;

/* The start of the mapping. `info` and the channel names are written by the
 * node before the memfd is sent and never again (the socket hand-over
 * orders them before the client's first read). Audio follows at info.audio_offset:
 *   for half in 0..2: n_inputs input buffers, then n_outputs output buffers,
 *   each max_frames float32 samples, channel_stride bytes apart. */
struct asio_bridge_shm {
	struct asio_bridge_info info;
	struct asio_bridge_cycle cycle;
	struct asio_bridge_client client;
	char input_names[ASIO_BRIDGE_MAX_CHANNELS][ASIO_BRIDGE_CHANNEL_NAME_LEN];
	char output_names[ASIO_BRIDGE_MAX_CHANNELS][ASIO_BRIDGE_CHANNEL_NAME_LEN];
} ASIO_BRIDGE_ALIGNED;

/* Socket messages. Every message starts with this header; a peer checks
 * `magic` and then `version` before it trusts anything else. */
enum asio_bridge_msg_type {
	ASIO_BRIDGE_MSG_HELLO = 1,   /* client -> node */
	ASIO_BRIDGE_MSG_WELCOME = 2, /* node -> client, carries the memfd */
	ASIO_BRIDGE_MSG_REFUSE = 3,  /* node -> client, then the node closes */
	ASIO_BRIDGE_MSG_REQUEST = 4, /* client -> node, while attached */
};

struct asio_bridge_msg_header {
	uint32_t magic;
	uint32_t version;
	uint32_t type; /* enum asio_bridge_msg_type */
	uint32_t size; /* bytes of the whole message, header included */
};

enum asio_bridge_hello_flags {
	/* Leave the bridge unlinked while this client holds it: the node shows
	 * node.autoconnect = false until the client leaves, and the autoconnect
	 * script removes the links it made. For a DAW whose user routes by hand. */
	ASIO_BRIDGE_HELLO_NO_AUTOCONNECT = 1u << 0,
};

struct asio_bridge_hello {
	struct asio_bridge_msg_header header;
	char client_name[ASIO_BRIDGE_NAME_LEN]; /* e.g. the DAW's .exe name */
	uint32_t flags;   /* enum asio_bridge_hello_flags; unknown bits are refused */
	uint32_t padding;
};

struct asio_bridge_welcome {
	struct asio_bridge_msg_header header;
	uint32_t shm_size; /* bytes to map from the memfd */
	uint32_t padding;
};

/* Asks the node to force the graph's quantum and rate while the client is
 * attached (PipeWire's node.force-quantum / node.force-rate). 0 releases.
 * Values outside the info limits are ignored with a warning in the log. */
struct asio_bridge_request {
	struct asio_bridge_msg_header header;
	uint32_t quantum;
	uint32_t rate;
};

enum asio_bridge_refusal {
	ASIO_BRIDGE_REFUSE_BUSY = 1,     /* another client holds the port */
	ASIO_BRIDGE_REFUSE_VERSION = 2,  /* the client speaks another protocol version */
	ASIO_BRIDGE_REFUSE_PROTOCOL = 3, /* malformed message */
	ASIO_BRIDGE_REFUSE_RESOURCES = 4,/* the node could not set up shared memory */
};

struct asio_bridge_refuse {
	struct asio_bridge_msg_header header;
	uint32_t reason;      /* enum asio_bridge_refusal */
	uint32_t holder_pid;  /* with BUSY: the pid of the client holding the port */
	char message[ASIO_BRIDGE_MESSAGE_LEN]; /* human-readable, NUL-terminated */
};

/* The seqlock read of `cycle` described above, for C clients: a whole copy
 * of one published record, or, if no stable copy was seen within `tries`
 * (at least 1) attempts (a node that died mid-write), the last attempt and 0. Returns 1
 * for a whole copy. Uses the GCC/Clang __atomic builtins. */
static inline int asio_bridge_read_cycle(const struct asio_bridge_cycle *shared,
					 struct asio_bridge_cycle *out, unsigned tries)
{
	struct asio_bridge_cycle *s = (struct asio_bridge_cycle *)shared;
	uint32_t before, after;
	do {
		before = __atomic_load_n(&s->lock, __ATOMIC_ACQUIRE);
		out->seq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
		out->half = __atomic_load_n(&s->half, __ATOMIC_RELAXED);
		out->frames = __atomic_load_n(&s->frames, __ATOMIC_RELAXED);
		out->rate = __atomic_load_n(&s->rate, __ATOMIC_RELAXED);
		out->position = __atomic_load_n(&s->position, __ATOMIC_RELAXED);
		out->nsec = __atomic_load_n(&s->nsec, __ATOMIC_RELAXED);
		out->publish_nsec = __atomic_load_n(&s->publish_nsec, __ATOMIC_RELAXED);
		out->late_cycles = __atomic_load_n(&s->late_cycles, __ATOMIC_RELAXED);
		out->output_delay = __atomic_load_n(&s->output_delay, __ATOMIC_RELAXED);
		out->upstream_latency = __atomic_load_n(&s->upstream_latency, __ATOMIC_RELAXED);
		out->downstream_latency = __atomic_load_n(&s->downstream_latency, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		after = __atomic_load_n(&s->lock, __ATOMIC_RELAXED);
		out->lock = after;
		if (!(before & 1) && before == after)
			return 1;
	} while (--tries);
	return 0;
}

#endif /* ASIO_BRIDGE_H */
