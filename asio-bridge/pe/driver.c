/* SPDX-License-Identifier: MIT */
/*
 * PipeWire ASIO Bridge: the PE half of the Wine ASIO driver.
 *
 * A COM object implementing IASIO. The host's ASIO buffers are the
 * driver's own, of the size the host chose; createBuffers asks the bridge
 * node to run the graph at that quantum, and where the graph runs another
 * (forced by someone else, or clamped) the unix half's FIFOs adapt. A
 * callback thread (a Wine thread) gets each host buffer from the unix half
 * and calls the host. See unixlib.h for what the unix half does and
 * include/asio-bridge.h for the protocol.
 *
 * Entries: the plain one, HKLM\Software\ASIO\PipeWire ASIO Bridge with
 * CLSID_PipeWireAsioBridge, attaches to the node its settings name. Each
 * named one, HKLM\Software\ASIO\PipeWire ASIO Bridge (<node>), made by
 * `asio-bridge-register --node <node>`, has a CLSID of its own (see there
 * for how it is derived from the node name) served by this same DLL, and a
 * value Node naming the node it always attaches to.
 *
 * Settings, per entry, read at init():
 *   HKCU\Software\ASIO\<entry>, e.g. ...\PipeWire ASIO Bridge (asio-bridge-b)
 *     Node                REG_SZ     the plain entry only: bridge node to attach
 *                                    to (default "asio-bridge")
 *     RealtimePriority    REG_DWORD  SCHED_FIFO priority of the callback thread,
 *                                    0 = leave it alone (default 70, below
 *                                    PipeWire's data loop)
 *     PreferredBufferSize REG_DWORD  getBufferSize's preferred size (default
 *                                    256), brought into the bridge's limits;
 *                                    0 = the graph's current quantum
 *   Environment variables ASIO_BRIDGE_NODE (the plain entry only),
 *   ASIO_BRIDGE_RT_PRIORITY and ASIO_BRIDGE_BUFFER_SIZE override the registry.
 */
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#include <objbase.h>
#include <stdio.h>
#include <string.h>

#include "asio.h"
#include "panel.h"
#include "../unixlib.h"

#define DRIVER_NAME "PipeWire ASIO Bridge"
#define DRIVER_VERSION 1
#define CLSID_STRING "{30BDA4F2-FA0B-4E4E-9E6E-A34A232013F2}"
#define ENTRY_LEN (sizeof(DRIVER_NAME " ()") + ASIO_BRIDGE_NAME_LEN) /* a key under Software\ASIO */
#define WAIT_MS 100      /* the callback thread re-checks `stopping` this often */
#define STOP_TIMEOUT_MS 2000
#define QUANTUM_SWITCH_MS 1000 /* how long createBuffers waits for the graph */
#define RATE_SWITCH_MS 2000    /* how long setSampleRate waits for the graph */

static const GUID CLSID_PipeWireAsioBridge =
	{ 0x30bda4f2, 0xfa0b, 0x4e4e, { 0x9e, 0x6e, 0xa3, 0x4a, 0x23, 0x20, 0x13, 0xf2 } };

static HINSTANCE module_instance;
static LONG object_count;

/* ---- the unix half ---------------------------------------------------- */

typedef LONG NTSTATUS;
typedef NTSTATUS (WINAPI *unix_call_dispatcher)(UINT64 handle, unsigned int code, void *args);
/* ntdll's; Wine answers information class 1000 (MemoryWineUnixFuncs) with
 * the module's unix-call handle. */
NTSTATUS WINAPI NtQueryVirtualMemory(HANDLE process, const void *address, int info_class,
		void *buffer, SIZE_T length, SIZE_T *result_length);
#define MEMORY_WINE_UNIX_FUNCS 1000
static unix_call_dispatcher dispatcher;
static UINT64 unix_handle;

/* Finds the unix half the portable way (Wine 8 to 11): the dispatcher is a
 * pointer variable exported by ntdll, the handle comes from
 * NtQueryVirtualMemory(MemoryWineUnixFuncs). */
static BOOL unix_init(void)
{
	void **slot;
	if (dispatcher)
		return TRUE;
	slot = (void **)GetProcAddress(GetModuleHandleA("ntdll.dll"), "__wine_unix_call_dispatcher");
	if (!slot || !*slot)
		return FALSE;
	if (NtQueryVirtualMemory(GetCurrentProcess(), module_instance, MEMORY_WINE_UNIX_FUNCS,
				&unix_handle, sizeof(unix_handle), NULL))
		return FALSE;
	dispatcher = (unix_call_dispatcher)*slot;
	return TRUE;
}

static NTSTATUS unix_call(enum asio_bridge_unix_call code, void *args)
{
	return dispatcher(unix_handle, code, args);
}

/* ---- the driver object ------------------------------------------------ */

/*
 * Lifetime and threads. The host may call from any thread, and from inside
 * its own callback. Calls from outside the callback are serialised by
 * `lock`; the callback thread never takes it, so a call that waits for the
 * thread to leave the host's callback never waits for itself. From inside
 * the callback, stop() and disposeBuffers() only mark what is wanted
 * (`stopping`, `dispose_pending`) and return at once; the thread ends when
 * the callback returns and the next call from outside reclaims it (waits
 * for it, closes it, frees what was disposed).
 *
 * The memory is kept by `holds`: one for the COM side until the host's
 * last Release, one for a callback thread from its creation until it
 * exits. Whoever drops the last frees the driver, so a last Release from
 * inside the callback (or one that gives up waiting for a host stuck in
 * its callback) leaves the freeing to the thread as it exits. The thread
 * also keeps the DLL loaded until it has exited.
 */
struct driver {
	IASIO iface;
	LONG refs;                   /* the host's COM references */
	LONG holds;                  /* see above */
	CRITICAL_SECTION lock;       /* see above */

	GUID clsid;                  /* the entry's, which hosts also ask for as the IID */
	char entry[ENTRY_LEN];       /* its key under Software\ASIO */
	char entry_node[ASIO_BRIDGE_NAME_LEN]; /* the node a named entry names; "" for the plain one */

	uint64_t session;            /* 0 until init attached */
	struct asio_bridge_shm *shm; /* the node's shared memory */
	char error[ASIO_BRIDGE_ERROR_LEN];
	int rt_priority;
	uint32_t preferred_size;     /* the setting; 0: the graph's quantum */

	volatile uint32_t requested_rate; /* what setSampleRate asked the graph for */

	/* createBuffers .. disposeBuffers */
	BOOL buffers;
	int32_t buffer_size;
	float *memory;               /* the host's buffers, see asio_bridge_prepare_params */
	ASIOCallbacks *callbacks;
	BOOL time_info;
	BOOL active[2][ASIO_BRIDGE_MAX_CHANNELS]; /* [isInput][channel] */

	/* start .. reclaim; the callback thread owns the fields below while running */
	HANDLE thread;               /* known before the thread runs: it starts suspended */
	DWORD thread_id;
	volatile LONG stopping;
	volatile LONG dispose_pending; /* disposeBuffers from inside the callback */
	volatile LONG lost;          /* the node went away: only a new instance can attach */
	int32_t rt_result, rt_policy, rt_got_priority; /* what the callback thread got */
	uint64_t sample_position;    /* of the buffer being processed: exactly
	                              * buffer_size more each callback */
	uint64_t system_time;        /* ns, of the buffer being processed */
	uint64_t publish_nsec, wait_nsec, wake_nsec; /* of the buffer being processed, see kAsioBridgeGetCycleTimes */
	uint32_t late_seen, rate_seen;
	volatile int32_t input_latency, output_latency; /* what getLatencies reports while running */
	BOOL reset_sent;
	ASIOTime time;
};

static struct driver *impl(IASIO *iface)
{
	return CONTAINING_RECORD(iface, struct driver, iface);
}

static BOOL on_callback_thread(const struct driver *d)
{
	return d->thread_id && GetCurrentThreadId() == d->thread_id;
}

/* Takes the lock for a call from outside the callback; FALSE, and no lock,
 * on the callback thread. */
static BOOL enter(struct driver *d)
{
	if (on_callback_thread(d))
		return FALSE;
	EnterCriticalSection(&d->lock);
	return TRUE;
}

static void leave(struct driver *d, BOOL locked)
{
	if (locked)
		LeaveCriticalSection(&d->lock);
}

/* The host's view: buffers it created and has not disposed. */
static BOOL has_buffers(const struct driver *d)
{
	return d->buffers && !d->dispose_pending;
}

static uint32_t channels(const struct driver *d, BOOL input)
{
	return input ? d->shm->info.n_inputs : d->shm->info.n_outputs;
}

/* The graph's cycle record, as the node last published it. */
static struct asio_bridge_cycle current_cycle(const struct driver *d)
{
	struct asio_bridge_cycle c;
	/* A torn copy after 1000 tries means the node died mid-write: its
	 * values are only a hint here, and the next call reads again. */
	asio_bridge_read_cycle(&d->shm->cycle, &c, 1000);
	return c;
}

/* The quantum the graph runs, waiting up to a second for a first cycle. */
static uint32_t graph_quantum(const struct driver *d)
{
	int i;
	for (i = 0; i < 100 && current_cycle(d).frames == 0; i++)
		Sleep(10);
	return current_cycle(d).frames;
}

static void set_error(struct driver *d, const char *message)
{
	lstrcpynA(d->error, message, sizeof(d->error));
}

/* Asks the node to force the graph's quantum and rate (0: leave it). */
static void request_clock(struct driver *d, uint32_t quantum, uint32_t rate)
{
	struct asio_bridge_request_params p = { .session = d->session, .quantum = quantum, .rate = rate };
	unix_call(ASIO_BRIDGE_UNIX_REQUEST, &p);
}

/* Waits up to `ms` until the graph runs `quantum` (0: any) at `rate` (0: any). */
static BOOL graph_reaches(const struct driver *d, uint32_t quantum, uint32_t rate, DWORD ms)
{
	DWORD start = GetTickCount();
	for (;;) {
		struct asio_bridge_cycle c = current_cycle(d);
		if ((!quantum || c.frames == quantum) && (!rate || c.rate == rate))
			return TRUE;
		if (GetTickCount() - start >= ms)
			return FALSE;
		Sleep(10);
	}
}

static BOOL rate_allowed(const struct driver *d, uint32_t rate)
{
	uint32_t i;
	for (i = 0; i < d->shm->info.n_rates && i < ASIO_BRIDGE_MAX_RATES; i++)
		if (d->shm->info.rates[i] == rate)
			return TRUE;
	return FALSE;
}

static BOOL size_allowed(const struct driver *d, int32_t size)
{
	const struct asio_bridge_info *info = &d->shm->info;
	if (size < (int32_t)info->min_quantum || size > (int32_t)info->max_quantum)
		return FALSE;
	return !(info->flags & ASIO_BRIDGE_INFO_POWER_OF_TWO) || !(size & (size - 1));
}

/* getLatencies for host buffers of `frames` while the callback thread is stopped. */
static void predict_latencies(struct driver *d, uint32_t frames, int32_t *input, int32_t *output)
{
	struct asio_bridge_latencies_params p = { .session = d->session, .frames = frames };
	unix_call(ASIO_BRIDGE_UNIX_LATENCIES, &p);
	*input = p.input;
	*output = p.output;
}

/* An entry's settings: the registry under its key, then the environment. */
struct settings {
	char node[ASIO_BRIDGE_NAME_LEN];
	int rt_priority;
	uint32_t preferred_size;
	BOOL autoconnect;            /* let the bridge be linked to the default devices */
};

static void read_settings(const struct driver *d, struct settings *s)
{
	char path[sizeof("Software\\ASIO\\") + ENTRY_LEN], env[ASIO_BRIDGE_NAME_LEN];
	char *node = s->node;
	DWORD node_size = sizeof(s->node), size;
	struct panel_settings saved;

	snprintf(path, sizeof(path), "Software\\ASIO\\%s", d->entry);
	panel_read_settings(path, &saved);
	/* A named entry's node is its name: never another's. */
	lstrcpynA(node, d->entry_node[0] ? d->entry_node : saved.node, node_size);
	s->rt_priority = saved.rt_priority;
	s->preferred_size = saved.preferred_size;
	s->autoconnect = saved.autoconnect;
	size = GetEnvironmentVariableA("ASIO_BRIDGE_NODE", env, sizeof(env));
	if (!d->entry_node[0] && size > 0 && size < sizeof(env))
		lstrcpynA(node, env, node_size);
	size = GetEnvironmentVariableA("ASIO_BRIDGE_RT_PRIORITY", env, sizeof(env));
	if (size > 0 && size < sizeof(env))
		s->rt_priority = atoi(env);
	size = GetEnvironmentVariableA("ASIO_BRIDGE_BUFFER_SIZE", env, sizeof(env));
	if (size > 0 && size < sizeof(env))
		s->preferred_size = (uint32_t)strtoul(env, NULL, 10);
	size = GetEnvironmentVariableA("ASIO_BRIDGE_AUTOCONNECT", env, sizeof(env));
	if (size > 0 && size < sizeof(env))
		s->autoconnect = atoi(env) != 0;
}

/* The preferred buffer size: the setting, or the graph's `quantum` for 0,
 * brought into [min, max] and, where the bridge allows only powers of two,
 * down to one. */
static int32_t preferred_size(const struct driver *d, uint32_t quantum)
{
	const struct asio_bridge_info *info = &d->shm->info;
	uint32_t size = d->preferred_size ? d->preferred_size : quantum;
	if (size > info->max_quantum)
		size = info->max_quantum;
	if (info->flags & ASIO_BRIDGE_INFO_POWER_OF_TWO)
		while (size & (size - 1))
			size &= size - 1;
	if (size < info->min_quantum)
		size = info->min_quantum;
	return (int32_t)size;
}

/* ---- the callback thread ---------------------------------------------- */

static int32_t host_message(struct driver *d, int32_t selector, int32_t value)
{
	if (!d->callbacks->asioMessage)
		return 0;
	return d->callbacks->asioMessage(selector, value, NULL, NULL);
}

static BOOL host_supports(struct driver *d, int32_t selector)
{
	return host_message(d, kAsioSelectorSupported, selector) == 1;
}

/* Asks the host to re-open the driver, once per start. */
static void request_reset(struct driver *d)
{
	if (!d->reset_sent && host_supports(d, kAsioResetRequest))
		host_message(d, kAsioResetRequest, 0);
	d->reset_sent = TRUE;
}

/* Tells the host what changed since the last buffer, the ASIO way.
 *
 * A quantum the graph runs other than the host's buffer size (someone else
 * holds it, or it is clamped) needs nothing from the host: the FIFOs keep
 * its size, and what they add is reported as latency. The host is never
 * asked to change its size or re-open for that: RtAudio treats a reset as
 * the end of the stream, and a host that follows a size it did not choose
 * is no better off. A rate the host did not ask for is different: the
 * FIFOs cannot resample, so the host must re-open at the graph's rate. */
static void notify_changes(struct driver *d, const struct asio_bridge_process_params *p)
{
	BOOL latencies = p->input_latency != (uint32_t)d->input_latency
			|| p->output_latency != (uint32_t)d->output_latency;

	d->input_latency = p->input_latency;
	d->output_latency = p->output_latency;
	if (d->system_time == 0) {
		d->late_seen = p->late_cycles;
		d->rate_seen = p->rate;
	}
	if (d->system_time != 0 && p->late_cycles != d->late_seen) {
		/* The value (hosts ignore it) says how many cycles were late. */
		int32_t late = (int32_t)(p->late_cycles - d->late_seen);
		d->late_seen = p->late_cycles;
		if (host_supports(d, kAsioOverload))
			host_message(d, kAsioOverload, late);
	}
	if (p->rate != d->rate_seen) {
		d->rate_seen = p->rate;
		/* The reset first: a host that re-opens for it has it pending
		 * when sampleRateDidChange comes, and re-opens once. */
		if (p->rate != d->requested_rate)
			request_reset(d);
		d->callbacks->sampleRateDidChange(p->rate);
	}
	if (latencies && d->system_time != 0 && host_supports(d, kAsioLatenciesChanged))
		host_message(d, kAsioLatenciesChanged, 0);
}

static void drop_hold(struct driver *d);

/* The real-time loop: gets each host buffer from the unix half (with a
 * deadline) and calls the host. No allocation, no lock, no logging. */
static DWORD WINAPI callback_thread(void *arg)
{
	struct driver *d = arg;
	struct asio_bridge_realtime_params rt = { .priority = d->rt_priority };
	struct asio_bridge_process_params p = { .session = d->session, .timeout_ms = WAIT_MS };

	/* Also with priority 0: learns what scheduling the thread has. */
	unix_call(ASIO_BRIDGE_UNIX_SET_REALTIME, &rt);
	d->rt_result = rt.result;
	d->rt_policy = rt.policy;
	d->rt_got_priority = rt.got_priority;
	while (!d->stopping) {
		if (unix_call(ASIO_BRIDGE_UNIX_PROCESS, &p) || p.result == ASIO_BRIDGE_PROCESS_DETACHED) {
			/* Once per loss: this instance never attaches again. */
			d->lost = TRUE;
			request_reset(d);
			break;
		}
		if (p.result != ASIO_BRIDGE_PROCESS_BLOCK || d->stopping)
			continue;
		notify_changes(d, &p);
		/* Advanced before the callback, so getSamplePosition pairs this
		 * buffer's position with this buffer's time. */
		if (d->system_time != 0)
			d->sample_position += d->buffer_size;
		d->system_time = p.nsec;
		d->publish_nsec = p.publish_nsec;
		d->wait_nsec = p.wait_nsec;
		d->wake_nsec = p.wake_nsec;
		if (d->time_info) {
			AsioTimeInfo *t = &d->time.timeInfo;
			t->speed = 1.0;
			t->systemTime.hi = (uint32_t)(p.nsec >> 32);
			t->systemTime.lo = (uint32_t)p.nsec;
			t->samplePosition.hi = (uint32_t)(d->sample_position >> 32);
			t->samplePosition.lo = (uint32_t)d->sample_position;
			t->sampleRate = p.rate;
			t->flags = kSystemTimeValid | kSamplePositionValid | kSampleRateValid;
			d->callbacks->bufferSwitchTimeInfo(&d->time, (int32_t)p.half, FALSE);
		} else {
			d->callbacks->bufferSwitch((int32_t)p.half, FALSE);
		}
	}
	/* Out of the host's callback for good: may free the driver (the last
	 * Release came meanwhile), and this DLL once the thread is gone. */
	drop_hold(d);
	FreeLibraryAndExitThread(module_instance, 0);
	return 0;
}

/* ---- IASIO ------------------------------------------------------------ */

static long ASIO_UNKNOWN_CALL drv_QueryInterface(IASIO *iface, const void *riid, void **out)
{
	if (!out)
		return E_POINTER;
	if (IsEqualGUID(riid, &IID_IUnknown) || IsEqualGUID(riid, &impl(iface)->clsid)) {
		*out = iface;
		iface->lpVtbl->AddRef(iface);
		return S_OK;
	}
	*out = NULL;
	return E_NOINTERFACE;
}

static unsigned long ASIO_UNKNOWN_CALL drv_AddRef(IASIO *iface)
{
	return InterlockedIncrement(&impl(iface)->refs);
}

/* Releases the host's buffers; no callback thread uses them. */
static void free_buffers(struct driver *d)
{
	struct asio_bridge_prepare_params prepare = { .session = d->session };
	unix_call(ASIO_BRIDGE_UNIX_PREPARE, &prepare);
	HeapFree(GetProcessHeap(), 0, d->memory);
	d->memory = NULL;
	request_clock(d, 0, d->requested_rate);
	d->buffers = FALSE;
	d->dispose_pending = FALSE;
	d->callbacks = NULL;
	memset(d->active, 0, sizeof(d->active));
}

/* With the lock held: ends the callback thread if it was asked to stop,
 * has ended by itself, or `stop`; waits until it has left the host's
 * callback and exited, closes it and frees buffers disposed from inside
 * the callback. FALSE: the host is stuck in its callback. */
static BOOL reclaim(struct driver *d, BOOL stop)
{
	if (d->thread) {
		if (!stop && !d->stopping && WaitForSingleObject(d->thread, 0) != WAIT_OBJECT_0)
			return TRUE;
		d->stopping = TRUE;
		if (WaitForSingleObject(d->thread, STOP_TIMEOUT_MS) != WAIT_OBJECT_0) {
			/* No callback can follow, but the thread cannot be
			 * reclaimed yet either. */
			set_error(d, "the host did not return from its audio callback");
			return FALSE;
		}
		CloseHandle(d->thread);
		d->thread = NULL;
		d->thread_id = 0;
	}
	if (d->dispose_pending)
		free_buffers(d);
	return TRUE;
}

/* The last of the COM side and the callback thread frees the driver. */
static void drop_hold(struct driver *d)
{
	if (InterlockedDecrement(&d->holds))
		return;
	if (d->thread)
		CloseHandle(d->thread); /* exited, or this very thread exiting */
	if (d->buffers)
		free_buffers(d);
	if (d->session) {
		struct asio_bridge_detach_params p = { .session = d->session };
		unix_call(ASIO_BRIDGE_UNIX_DETACH, &p);
	}
	DeleteCriticalSection(&d->lock);
	HeapFree(GetProcessHeap(), 0, d);
	InterlockedDecrement(&object_count);
}

static unsigned long ASIO_UNKNOWN_CALL drv_Release(IASIO *iface)
{
	struct driver *d = impl(iface);
	LONG refs = InterlockedDecrement(&d->refs);
	if (refs == 0) {
		if (on_callback_thread(d)) {
			/* The thread frees the driver once the callback returns. */
			d->stopping = TRUE;
		} else {
			/* No callback runs once this returns, unless the host is
			 * stuck in one: then the thread frees the driver later. */
			EnterCriticalSection(&d->lock);
			reclaim(d, TRUE);
			LeaveCriticalSection(&d->lock);
		}
		drop_hold(d);
	}
	return refs;
}

static ASIOBool do_init(IASIO *iface, void *sys_handle)
{
	struct driver *d = impl(iface);
	struct asio_bridge_attach_params p = { 0 };
	char node[ASIO_BRIDGE_NAME_LEN], exe[MAX_PATH], *base;
	struct settings settings;

	(void)sys_handle;
	if (d->session)
		return TRUE;
	if (!unix_init()) {
		set_error(d, "the driver's Linux half is missing: run the program with WINEDLLPATH "
				"set to the bridge's Wine directory, or reinstall the bridge");
		return FALSE;
	}
	read_settings(d, &settings);
	lstrcpynA(node, settings.node, sizeof(node));
	d->rt_priority = settings.rt_priority;
	d->preferred_size = settings.preferred_size;
	GetModuleFileNameA(NULL, exe, sizeof(exe));
	base = strrchr(exe, '\\');
	p.node = (uintptr_t)node;
	p.client = (uintptr_t)(base ? base + 1 : exe);
	p.hello_flags = settings.autoconnect ? 0 : ASIO_BRIDGE_HELLO_NO_AUTOCONNECT;
	if (unix_call(ASIO_BRIDGE_UNIX_ATTACH, &p)) {
		set_error(d, p.error);
		return FALSE;
	}
	d->session = p.session;
	d->shm = (struct asio_bridge_shm *)(uintptr_t)p.shm;
	set_error(d, "no error");
	return TRUE;
}

/* At most 31 characters: the entry's name where it fits, and for a named
 * entry always the end of the node's name, which tells them apart. */
static void ASIO_METHOD_CALL drv_getDriverName(IASIO *iface, char *name)
{
	const struct driver *d = impl(iface);
	const char *node = d->entry_node;
	size_t n = strlen(node);
	if (!name)
		return;
	if (!node[0])
		lstrcpynA(name, DRIVER_NAME, 32);
	else if (n <= 31 - strlen("PipeWire ASIO "))
		snprintf(name, 32, "PipeWire ASIO %s", node);
	else
		snprintf(name, 32, "PW ASIO ~%s", node + n - (31 - strlen("PW ASIO ~")));
}

static int32_t ASIO_METHOD_CALL drv_getDriverVersion(IASIO *iface)
{
	(void)iface;
	return DRIVER_VERSION;
}

static void ASIO_METHOD_CALL drv_getErrorMessage(IASIO *iface, char *string)
{
	struct driver *d = impl(iface);
	BOOL locked = enter(d);
	if (string)
		lstrcpynA(string, d->error, ASIO_BRIDGE_ERROR_LEN);
	leave(d, locked);
}

static ASIOError ASIO_METHOD_CALL drv_stop(IASIO *iface)
{
	struct driver *d = impl(iface);
	ASIOError res;
	if (on_callback_thread(d)) {
		/* From inside the host's own callback: no callback follows this
		 * one; the thread ends when it returns. */
		d->stopping = TRUE;
		return ASE_OK;
	}
	EnterCriticalSection(&d->lock);
	res = !d->session ? ASE_NotPresent : reclaim(d, TRUE) ? ASE_OK : ASE_HWMalfunction;
	LeaveCriticalSection(&d->lock);
	return res;
}

static ASIOError start(struct driver *d)
{
	HMODULE self;
	if (!d->session)
		return ASE_NotPresent;
	if (!reclaim(d, FALSE))
		return ASE_HWMalfunction;
	if (!has_buffers(d))
		return ASE_InvalidMode;
	if (d->thread)
		return ASE_OK;
	if (d->lost) {
		set_error(d, "the PipeWire bridge went away: the program must open the driver again");
		return ASE_HWMalfunction;
	}
	d->stopping = FALSE;
	d->sample_position = 0;
	d->system_time = 0;
	d->reset_sent = FALSE;
	{
		/* Fresh FIFOs, primed for the quantum the graph runs now. */
		struct asio_bridge_prepare_params prepare = { .session = d->session, .buffers = (uintptr_t)d->memory, .frames = d->buffer_size };
		int32_t in, out;
		if (unix_call(ASIO_BRIDGE_UNIX_PREPARE, &prepare))
			return ASE_HWMalfunction;
		predict_latencies(d, d->buffer_size, &in, &out);
		d->input_latency = in;
		d->output_latency = out;
	}
	/* The thread holds the driver and this DLL until it exits. It starts
	 * suspended, so its handle and id are known before it runs. */
	if (!GetModuleHandleExA(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS, (const char *)callback_thread, &self))
		return ASE_HWMalfunction;
	InterlockedIncrement(&d->holds);
	d->thread = CreateThread(NULL, 0, callback_thread, d, CREATE_SUSPENDED, &d->thread_id);
	if (!d->thread) {
		d->thread_id = 0;
		InterlockedDecrement(&d->holds);
		FreeLibrary(self);
		return ASE_HWMalfunction;
	}
	ResumeThread(d->thread);
	return ASE_OK;
}

static ASIOError ASIO_METHOD_CALL drv_start(IASIO *iface)
{
	struct driver *d = impl(iface);
	ASIOError res;
	if (on_callback_thread(d))
		return ASE_InvalidMode; /* restarting from inside the callback */
	EnterCriticalSection(&d->lock);
	res = start(d);
	LeaveCriticalSection(&d->lock);
	return res;
}

static ASIOError do_getChannels(IASIO *iface, int32_t *inputs, int32_t *outputs)
{
	struct driver *d = impl(iface);
	if (!d->session)
		return ASE_NotPresent;
	if (!inputs || !outputs)
		return ASE_InvalidParameter;
	*inputs = channels(d, TRUE);
	*outputs = channels(d, FALSE);
	return ASE_OK;
}

static ASIOError do_getLatencies(IASIO *iface, int32_t *input, int32_t *output)
{
	struct driver *d = impl(iface);
	if (!d->session)
		return ASE_NotPresent;
	if (!input || !output)
		return ASE_InvalidParameter;
	if (d->thread) {
		*input = d->input_latency;
		*output = d->output_latency;
	} else {
		predict_latencies(d, has_buffers(d) ? (uint32_t)d->buffer_size : graph_quantum(d), input, output);
	}
	return ASE_OK;
}

static ASIOError do_getBufferSize(IASIO *iface, int32_t *min, int32_t *max, int32_t *preferred, int32_t *granularity)
{
	struct driver *d = impl(iface);
	uint32_t quantum;
	if (!d->session)
		return ASE_NotPresent;
	if (!min || !max || !preferred || !granularity)
		return ASE_InvalidParameter;
	if (!(quantum = graph_quantum(d)))
		return ASE_NoClock;
	*min = d->shm->info.min_quantum;
	*max = d->shm->info.max_quantum;
	*preferred = preferred_size(d, quantum);
	*granularity = d->shm->info.flags & ASIO_BRIDGE_INFO_POWER_OF_TWO ? -1 : 1;
	return ASE_OK;
}

static ASIOError do_canSampleRate(IASIO *iface, ASIOSampleRate rate)
{
	struct driver *d = impl(iface);
	if (!d->session)
		return ASE_NotPresent;
	if (rate == current_cycle(d).rate || (rate == (uint32_t)rate && rate_allowed(d, (uint32_t)rate)))
		return ASE_OK;
	return ASE_NoClock;
}

static ASIOError do_getSampleRate(IASIO *iface, ASIOSampleRate *rate)
{
	struct driver *d = impl(iface);
	if (!d->session)
		return ASE_NotPresent;
	if (!rate)
		return ASE_InvalidParameter;
	graph_quantum(d);
	*rate = current_cycle(d).rate;
	return *rate > 0 ? ASE_OK : ASE_NoClock;
}

static ASIOError do_setSampleRate(IASIO *iface, ASIOSampleRate rate)
{
	struct driver *d = impl(iface);
	char message[ASIO_BRIDGE_ERROR_LEN];
	uint32_t r, previous;
	if (!d->session)
		return ASE_NotPresent;
	/* 0 selects the external clock, which the graph always is. */
	if (rate == 0)
		return ASE_OK;
	r = (uint32_t)rate;
	if (r != rate || !rate_allowed(d, r)) {
		if (rate == current_cycle(d).rate)
			return ASE_OK;
		snprintf(message, sizeof(message), "%.0f Hz is not in the bridge's asio.rates", rate);
		set_error(d, message);
		return ASE_NoClock;
	}
	/* Known before the graph switches: a running callback thread takes the
	 * new rate for the host's own, and asks for no reset. */
	previous = d->requested_rate;
	d->requested_rate = r;
	request_clock(d, has_buffers(d) ? (uint32_t)d->buffer_size : 0, r);
	if (!graph_reaches(d, 0, r, RATE_SWITCH_MS)) {
		d->requested_rate = previous;
		request_clock(d, has_buffers(d) ? (uint32_t)d->buffer_size : 0, previous);
		snprintf(message, sizeof(message), "PipeWire did not switch to %u Hz: another program or the device holds the rate", r);
		set_error(d, message);
		return ASE_NoClock;
	}
	return ASE_OK;
}

static ASIOError do_getClockSources(IASIO *iface, ASIOClockSource *clocks, int32_t *count)
{
	struct driver *d = impl(iface);
	if (!d->session)
		return ASE_NotPresent;
	if (!clocks || !count || *count < 1)
		return ASE_InvalidParameter;
	memset(clocks, 0, sizeof(*clocks));
	clocks->associatedChannel = -1;
	clocks->associatedGroup = -1;
	clocks->isCurrentSource = TRUE;
	lstrcpynA(clocks->name, "PipeWire graph", sizeof(clocks->name));
	*count = 1;
	return ASE_OK;
}

static ASIOError do_setClockSource(IASIO *iface, int32_t reference)
{
	if (!impl(iface)->session)
		return ASE_NotPresent;
	return reference == 0 ? ASE_OK : ASE_InvalidParameter;
}

static ASIOError do_getSamplePosition(IASIO *iface, ASIOSamples *position, ASIOTimeStamp *stamp)
{
	struct driver *d = impl(iface);
	if (!d->session)
		return ASE_NotPresent;
	if (!position || !stamp)
		return ASE_InvalidParameter;
	if (!d->thread || d->system_time == 0)
		return ASE_SPNotAdvancing;
	position->hi = (uint32_t)(d->sample_position >> 32);
	position->lo = (uint32_t)d->sample_position;
	stamp->hi = (uint32_t)(d->system_time >> 32);
	stamp->lo = (uint32_t)d->system_time;
	return ASE_OK;
}

static ASIOError do_getChannelInfo(IASIO *iface, ASIOChannelInfo *info)
{
	struct driver *d = impl(iface);
	BOOL input;
	if (!d->session)
		return ASE_NotPresent;
	if (!info)
		return ASE_InvalidParameter;
	input = info->isInput != 0;
	if (info->channel < 0 || (uint32_t)info->channel >= channels(d, input))
		return ASE_InvalidParameter;
	info->isActive = has_buffers(d) && d->active[input][info->channel];
	info->channelGroup = 0;
	info->type = ASIOSTFloat32LSB;
	lstrcpynA(info->name, input ? d->shm->input_names[info->channel] : d->shm->output_names[info->channel],
			sizeof(info->name));
	return ASE_OK;
}

static ASIOError create_buffers(struct driver *d, ASIOBufferInfo *infos, int32_t count, int32_t size,
		ASIOCallbacks *callbacks)
{
	BOOL active[2][ASIO_BRIDGE_MAX_CHANNELS] = { { 0 } };
	size_t per_half;
	float *memory;
	int32_t i;

	if (!d->session)
		return ASE_NotPresent;
	if (!infos || !callbacks || !callbacks->bufferSwitch)
		return ASE_InvalidParameter;
	if (!reclaim(d, FALSE))
		return ASE_HWMalfunction;
	if (d->buffers)
		return ASE_InvalidMode;
	if (!size_allowed(d, size))
		return ASE_InvalidMode;
	if (count <= 0 || (uint32_t)count > channels(d, TRUE) + channels(d, FALSE))
		return ASE_InvalidParameter;
	for (i = 0; i < count; i++) {
		BOOL input = infos[i].isInput != 0;
		int32_t ch = infos[i].channelNum;
		if (ch < 0 || (uint32_t)ch >= channels(d, input) || active[input][ch])
			return ASE_InvalidParameter;
		active[input][ch] = TRUE;
	}
	per_half = channels(d, TRUE) + channels(d, FALSE);
	memory = HeapAlloc(GetProcessHeap(), 0, 2 * per_half * (size_t)size * sizeof(float));
	if (!memory)
		return ASE_NoMemory;
	/* Written here, so the callback never faults a page of it in. The
	 * unix half gets the buffers at start(), with fresh FIFOs. */
	memset(memory, 0, 2 * per_half * (size_t)size * sizeof(float));
	for (i = 0; i < count; i++) {
		BOOL input = infos[i].isInput != 0;
		size_t index = (input ? 0 : channels(d, TRUE)) + infos[i].channelNum;
		infos[i].buffers[0] = memory + index * size;
		infos[i].buffers[1] = memory + (per_half + index) * size;
	}
	/* The graph follows the host's buffer size while it has buffers; if it
	 * cannot (another program forces a quantum), the FIFOs adapt. */
	request_clock(d, size, d->requested_rate);
	graph_reaches(d, size, 0, QUANTUM_SWITCH_MS);
	d->memory = memory;
	memcpy(d->active, active, sizeof(active));
	d->callbacks = callbacks;
	d->buffer_size = size;
	d->time_info = callbacks->bufferSwitchTimeInfo && host_supports(d, kAsioSupportsTimeInfo)
			&& host_message(d, kAsioSupportsTimeInfo, 0) == 1;
	d->buffers = TRUE;
	return ASE_OK;
}

static ASIOError ASIO_METHOD_CALL drv_createBuffers(IASIO *iface, ASIOBufferInfo *infos, int32_t count, int32_t size,
		ASIOCallbacks *callbacks)
{
	struct driver *d = impl(iface);
	ASIOError res;
	if (on_callback_thread(d))
		return ASE_InvalidMode; /* this callback's buffers still exist */
	EnterCriticalSection(&d->lock);
	res = create_buffers(d, infos, count, size, callbacks);
	LeaveCriticalSection(&d->lock);
	return res;
}

static ASIOError ASIO_METHOD_CALL drv_disposeBuffers(IASIO *iface)
{
	struct driver *d = impl(iface);
	ASIOError res = ASE_OK;
	if (on_callback_thread(d)) {
		if (!has_buffers(d))
			return ASE_InvalidMode;
		/* This very callback uses them: they go, and the thread ends,
		 * when it returns. */
		d->dispose_pending = TRUE;
		d->stopping = TRUE;
		return ASE_OK;
	}
	EnterCriticalSection(&d->lock);
	if (!d->session)
		res = ASE_NotPresent;
	else if (!has_buffers(d))
		res = ASE_InvalidMode;
	else if (!reclaim(d, TRUE))
		res = ASE_HWMalfunction;
	else if (d->buffers)
		free_buffers(d);
	LeaveCriticalSection(&d->lock);
	return res;
}

/* Shows what the driver sees and its settings in a window of its own
 * (panel.c), so the host never waits. */
static ASIOError do_controlPanel(IASIO *iface)
{
	struct driver *d = impl(iface);
	struct panel_state state = { 0 };
	struct settings settings;

	read_settings(d, &settings);
	lstrcpynA(state.node, settings.node, sizeof(state.node));
	state.rt_requested = d->session ? d->rt_priority : settings.rt_priority;
	snprintf(state.settings_key, sizeof(state.settings_key), "Software\\ASIO\\%s", d->entry);
	if (d->session) {
		struct asio_bridge_cycle c;
		int32_t in = 0, out = 0;
		do_getLatencies(iface, &in, &out);
		c = current_cycle(d);
		state.reachable = TRUE;
		lstrcpynA(state.node, d->shm->info.node_name, sizeof(state.node));
		state.buffer_size = has_buffers(d) ? (uint32_t)d->buffer_size : 0;
		state.quantum = c.frames;
		state.rate = c.rate;
		state.input_latency = (uint32_t)in;
		state.output_latency = (uint32_t)out;
		state.late_cycles = c.late_cycles;
		/* What the callback thread got, once it has asked. */
		state.rt_known = d->thread != NULL && d->system_time != 0;
		state.rt_result = d->rt_result;
		state.rt_policy = d->rt_policy;
		state.rt_priority = d->rt_got_priority;
	} else {
		lstrcpynA(state.error, d->error, sizeof(state.error));
	}
	return panel_open(&state);
}

static ASIOError ASIO_METHOD_CALL drv_future(IASIO *iface, int32_t selector, void *opt)
{
	struct driver *d = impl(iface);
	ASIOIoFormat *format = opt;
	ASIOBridgeSchedule *schedule = opt;
	ASIOBridgeCycleTimes *times = opt;
	struct asio_bridge_clock_params clock;
	switch (selector) {
	case kAsioBridgeGetCycleTimes:
		/* The callback thread's own fields: read without the lock. */
		if (!times)
			return ASE_InvalidParameter;
		if (!on_callback_thread(d) || unix_call(ASIO_BRIDGE_UNIX_CLOCK, &clock))
			return ASE_NotPresent;
		times->graph_nsec = d->system_time;
		times->publish_nsec = d->publish_nsec;
		times->wait_nsec = d->wait_nsec;
		times->wake_nsec = d->wake_nsec;
		times->now_nsec = clock.nsec;
		return ASE_SUCCESS;
	case kAsioBridgeGetSchedule:
		if (!schedule)
			return ASE_InvalidParameter;
		if (on_callback_thread(d)) {
			struct asio_bridge_realtime_params rt = { .priority = 0 };
			unix_call(ASIO_BRIDGE_UNIX_SET_REALTIME, &rt);
			schedule->policy = rt.policy;
			schedule->priority = rt.got_priority;
		} else {
			BOOL locked = enter(d), running = d->thread != NULL;
			schedule->policy = d->rt_policy;
			schedule->priority = d->rt_got_priority;
			leave(d, locked);
			if (!running)
				return ASE_NotPresent;
		}
		schedule->error = d->rt_result;
		return ASE_SUCCESS;
	case kAsioCanTimeInfo:
	case kAsioCanReportOverload:
		return ASE_SUCCESS;
	case kAsioGetIoFormat:
		if (!format)
			return ASE_InvalidParameter;
		format->FormatType = kASIOFormatPCM;
		return ASE_SUCCESS;
	case kAsioSetIoFormat:
	case kAsioCanDoIoFormat:
		if (!format)
			return ASE_InvalidParameter;
		return format->FormatType == kASIOFormatPCM ? ASE_SUCCESS : ASE_NotPresent;
	default:
		return ASE_NotPresent;
	}
}

static ASIOError ASIO_METHOD_CALL drv_outputReady(IASIO *iface)
{
	/* The pipelined design plays the output one cycle later regardless. */
	(void)iface;
	return ASE_NotPresent;
}

/* The host's calls from outside the callback are serialised. */
#define LOCKED(type, name, params, args) \
	static type ASIO_METHOD_CALL drv_##name params \
	{ \
		struct driver *d = impl(iface); \
		BOOL locked = enter(d); \
		type res = do_##name args; \
		leave(d, locked); \
		return res; \
	}
LOCKED(ASIOBool, init, (IASIO *iface, void *sys_handle), (iface, sys_handle))
LOCKED(ASIOError, getChannels, (IASIO *iface, int32_t *inputs, int32_t *outputs), (iface, inputs, outputs))
LOCKED(ASIOError, getLatencies, (IASIO *iface, int32_t *input, int32_t *output), (iface, input, output))
LOCKED(ASIOError, getBufferSize, (IASIO *iface, int32_t *min, int32_t *max, int32_t *preferred, int32_t *granularity),
		(iface, min, max, preferred, granularity))
LOCKED(ASIOError, canSampleRate, (IASIO *iface, ASIOSampleRate rate), (iface, rate))
LOCKED(ASIOError, getSampleRate, (IASIO *iface, ASIOSampleRate *rate), (iface, rate))
LOCKED(ASIOError, setSampleRate, (IASIO *iface, ASIOSampleRate rate), (iface, rate))
LOCKED(ASIOError, getClockSources, (IASIO *iface, ASIOClockSource *clocks, int32_t *count), (iface, clocks, count))
LOCKED(ASIOError, setClockSource, (IASIO *iface, int32_t reference), (iface, reference))
LOCKED(ASIOError, getSamplePosition, (IASIO *iface, ASIOSamples *position, ASIOTimeStamp *stamp), (iface, position, stamp))
LOCKED(ASIOError, getChannelInfo, (IASIO *iface, ASIOChannelInfo *info), (iface, info))
LOCKED(ASIOError, controlPanel, (IASIO *iface), (iface))

static const IASIOVtbl driver_vtbl = {
	drv_QueryInterface, drv_AddRef, drv_Release,
	drv_init, drv_getDriverName, drv_getDriverVersion, drv_getErrorMessage,
	drv_start, drv_stop, drv_getChannels, drv_getLatencies, drv_getBufferSize,
	drv_canSampleRate, drv_getSampleRate, drv_setSampleRate,
	drv_getClockSources, drv_setClockSource, drv_getSamplePosition, drv_getChannelInfo,
	drv_createBuffers, drv_disposeBuffers, drv_controlPanel, drv_future, drv_outputReady,
};

/* ---- class factory and registration ------------------------------------ */

/* One per DllGetClassObject: the entry whose CLSID the host asked for. */
struct factory {
	IClassFactory iface;
	LONG refs;
	GUID clsid;
	char entry[ENTRY_LEN];
	char node[ASIO_BRIDGE_NAME_LEN];
};

static struct factory *factory_impl(IClassFactory *iface)
{
	return CONTAINING_RECORD(iface, struct factory, iface);
}

static HRESULT WINAPI cf_QueryInterface(IClassFactory *iface, REFIID riid, void **out)
{
	if (!out)
		return E_POINTER;
	if (IsEqualGUID(riid, &IID_IUnknown) || IsEqualGUID(riid, &IID_IClassFactory)) {
		*out = iface;
		iface->lpVtbl->AddRef(iface);
		return S_OK;
	}
	*out = NULL;
	return E_NOINTERFACE;
}

static ULONG WINAPI cf_AddRef(IClassFactory *iface)
{
	return InterlockedIncrement(&factory_impl(iface)->refs);
}

static ULONG WINAPI cf_Release(IClassFactory *iface)
{
	struct factory *f = factory_impl(iface);
	LONG refs = InterlockedDecrement(&f->refs);
	if (refs == 0) {
		HeapFree(GetProcessHeap(), 0, f);
		InterlockedDecrement(&object_count);
	}
	return refs;
}

static HRESULT WINAPI cf_CreateInstance(IClassFactory *iface, IUnknown *outer, REFIID riid, void **out)
{
	const struct factory *f = factory_impl(iface);
	struct driver *d;
	HRESULT hr;
	if (!out)
		return E_POINTER;
	*out = NULL;
	if (outer)
		return CLASS_E_NOAGGREGATION;
	if (!(d = HeapAlloc(GetProcessHeap(), HEAP_ZERO_MEMORY, sizeof(*d))))
		return E_OUTOFMEMORY;
	d->iface.lpVtbl = &driver_vtbl;
	d->refs = 1;
	d->holds = 1;
	d->clsid = f->clsid;
	lstrcpynA(d->entry, f->entry, sizeof(d->entry));
	lstrcpynA(d->entry_node, f->node, sizeof(d->entry_node));
	InitializeCriticalSection(&d->lock);
	set_error(d, "init() has not been called");
	InterlockedIncrement(&object_count);
	hr = drv_QueryInterface(&d->iface, riid, out);
	drv_Release(&d->iface);
	return hr;
}

static HRESULT WINAPI cf_LockServer(IClassFactory *iface, BOOL lock)
{
	(void)iface;
	lock ? InterlockedIncrement(&object_count) : InterlockedDecrement(&object_count);
	return S_OK;
}

static IClassFactoryVtbl factory_vtbl = {
	cf_QueryInterface, cf_AddRef, cf_Release, cf_CreateInstance, cf_LockServer,
};

static void guid_string(REFCLSID g, char out[39])
{
	snprintf(out, 39, "{%08lX-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X}", (unsigned long)g->Data1,
			g->Data2, g->Data3, g->Data4[0], g->Data4[1], g->Data4[2], g->Data4[3],
			g->Data4[4], g->Data4[5], g->Data4[6], g->Data4[7]);
}

/* The named entry registered with `clsid`: a key HKLM\Software\ASIO\
 * PipeWire ASIO Bridge* whose CLSID is it and whose Node names a node. */
static BOOL find_entry(REFCLSID clsid, struct factory *f)
{
	char want[39], name[256], value[39];
	DWORD i, size, type;
	HKEY asio, key;
	LONG res;
	BOOL found = FALSE;

	guid_string(clsid, want);
	if (RegOpenKeyExA(HKEY_LOCAL_MACHINE, "Software\\ASIO", 0, KEY_READ, &asio))
		return FALSE;
	/* Other drivers' keys may have longer names: skipped, not the end. */
	for (i = 0; !found && (res = RegEnumKeyA(asio, i, name, sizeof(name))) != ERROR_NO_MORE_ITEMS; i++) {
		if (res || strlen(name) >= ENTRY_LEN || strncmp(name, DRIVER_NAME, strlen(DRIVER_NAME))
		    || RegOpenKeyExA(asio, name, 0, KEY_READ, &key))
			continue;
		size = sizeof(value);
		if (!RegQueryValueExA(key, "CLSID", NULL, &type, (BYTE *)value, &size) && type == REG_SZ
		    && size == sizeof(value) && !lstrcmpiA(value, want)) {
			size = sizeof(f->node);
			found = !RegQueryValueExA(key, "Node", NULL, &type, (BYTE *)f->node, &size) && type == REG_SZ
					&& size > 1 && size <= sizeof(f->node) && !f->node[size - 1];
			lstrcpynA(f->entry, name, sizeof(f->entry));
		}
		RegCloseKey(key);
	}
	RegCloseKey(asio);
	return found;
}

HRESULT WINAPI DllGetClassObject(REFCLSID clsid, REFIID riid, void **out)
{
	struct factory *f;
	HRESULT hr;
	if (!out)
		return E_POINTER;
	*out = NULL;
	if (!(f = HeapAlloc(GetProcessHeap(), HEAP_ZERO_MEMORY, sizeof(*f))))
		return E_OUTOFMEMORY;
	f->iface.lpVtbl = &factory_vtbl;
	f->refs = 1;
	f->clsid = *clsid;
	InterlockedIncrement(&object_count);
	if (IsEqualGUID(clsid, &CLSID_PipeWireAsioBridge))
		lstrcpynA(f->entry, DRIVER_NAME, sizeof(f->entry));
	else if (!find_entry(clsid, f)) {
		cf_Release(&f->iface);
		return CLASS_E_CLASSNOTAVAILABLE;
	}
	hr = cf_QueryInterface(&f->iface, riid, out);
	cf_Release(&f->iface);
	return hr;
}

HRESULT WINAPI DllCanUnloadNow(void)
{
	return object_count == 0 ? S_OK : S_FALSE;
}

static LONG set_string(HKEY root, const char *path, const char *name, const char *value)
{
	HKEY key;
	LONG res = RegCreateKeyExA(root, path, 0, NULL, 0, KEY_WRITE, NULL, &key, NULL);
	if (res)
		return res;
	res = RegSetValueExA(key, name, 0, REG_SZ, (const BYTE *)value, strlen(value) + 1);
	RegCloseKey(key);
	return res;
}

#define CLSID_KEY "CLSID\\" CLSID_STRING
#define ASIO_KEY "Software\\ASIO\\" DRIVER_NAME

HRESULT WINAPI DllRegisterServer(void)
{
	char path[MAX_PATH];
	if (!GetModuleFileNameA(module_instance, path, sizeof(path)))
		return E_FAIL;
	if (set_string(HKEY_CLASSES_ROOT, CLSID_KEY, NULL, DRIVER_NAME)
	    || set_string(HKEY_CLASSES_ROOT, CLSID_KEY "\\InprocServer32", NULL, path)
	    || set_string(HKEY_CLASSES_ROOT, CLSID_KEY "\\InprocServer32", "ThreadingModel", "Both")
	    || set_string(HKEY_LOCAL_MACHINE, ASIO_KEY, "CLSID", CLSID_STRING)
	    || set_string(HKEY_LOCAL_MACHINE, ASIO_KEY, "Description", DRIVER_NAME))
		return E_FAIL;
	return S_OK;
}

HRESULT WINAPI DllUnregisterServer(void)
{
	RegDeleteTreeA(HKEY_CLASSES_ROOT, CLSID_KEY);
	RegDeleteKeyA(HKEY_CLASSES_ROOT, CLSID_KEY);
	RegDeleteTreeA(HKEY_LOCAL_MACHINE, ASIO_KEY);
	RegDeleteKeyA(HKEY_LOCAL_MACHINE, ASIO_KEY);
	return S_OK;
}

BOOL WINAPI DllMain(HINSTANCE instance, DWORD reason, void *reserved)
{
	(void)reserved;
	if (reason == DLL_PROCESS_ATTACH) {
		module_instance = instance;
		DisableThreadLibraryCalls(instance);
	}
	return TRUE;
}
