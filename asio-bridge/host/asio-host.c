/* SPDX-License-Identifier: MIT */
/*
 * asio-host: the project's ASIO host, a Windows console program run under
 * Wine by the tests and the demo. It finds and loads an ASIO driver exactly
 * like a DAW does (HKLM\Software\ASIO, CoCreateInstance) and prints what it
 * saw as key=value lines.
 */
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#include <objbase.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../pe/asio.h"

static const char usage[] =
	"usage: asio-host [--driver NAME] COMMAND [OPTIONS]\n"
	"\n"
	"Loads an ASIO driver the way a DAW does and reports as key=value lines.\n"
	"  --driver NAME   the driver's name under HKLM\\Software\\ASIO\n"
	"                  (default: PipeWire ASIO Bridge)\n"
	"Commands:\n"
	"  info            driver name, channels, buffer sizes, rate, latencies\n"
	"  run             play and record through all channels\n"
	"     --seconds S  how long (default 5)\n"
	"     --buffer N   buffer size (default: the driver's preferred)\n"
	"     --rate HZ    sample rate (default: the driver's current)\n"
	"     --tone HZ    sine on the outputs (default 440; 0 = silence)\n"
	"     --loopback   output 1 carries a sample counter; input 1 is checked\n"
	"                  for it bit-exactly and its delay is measured; silence\n"
	"                  counts as dropouts, the stream resuming later after\n"
	"                  silence as a latency shift, anything else as mismatches\n"
	"     --burn PCT   busy-spin in each callback until PCT % of the buffer's\n"
	"                  period has passed since the callback was entered, as a\n"
	"                  DAW using that much of each period would (default 0)\n"
	"     --late-wake PCT  count wake-ups (the node's publish to the callback's\n"
	"                  entry) longer than PCT % of the period (default 10)\n"
	"                  With this driver, run also reports where each buffer's\n"
	"                  time went, p50/p99/max in us: step_daemon (the graph\n"
	"                  cycle's clock time to the node's publish: the daemon's\n"
	"                  part), step_futex (the publish to the driver's wait\n"
	"                  returning), step_dispatch\n"
	"                  (that to the callback's entry), step_callback (entry to\n"
	"                  output ready, where a DAW calls outputReady) and wake\n"
	"                  (publish to entry); how many cycles were published\n"
	"                  before the driver began waiting (the host was late),\n"
	"                  and how many the daemon published more than a period\n"
	"                  after their clock time (a device would have had an xrun)\n"
	"     --no-timeinfo  refuse time info, so the driver uses bufferSwitch\n"
	"     --no-size-change  do not support kAsioBufferSizeChange, like older hosts\n"
	"                  When the driver asks for a new buffer size the host\n"
	"                  re-opens its buffers at the driver's preferred size; on\n"
	"                  kAsioResetRequest it releases the driver and creates,\n"
	"                  inits (retrying until the bridge is back), and starts a\n"
	"                  new instance, from the main thread, as a DAW does. The\n"
	"                  loopback check starts over either way.\n"
	"     --on-reset HOW  reopen (default, as above), fatal (close the stream\n"
	"                  and end the run, as RtAudio does) or ignore (as\n"
	"                  PortAudio does)\n"
	"                  On kAsioLatenciesChanged the host asks getLatencies\n"
	"                  again; the phase lines report the latest.\n"
	"  sweep           run --loopback for each buffer size at each rate\n"
	"     --buffers LIST  comma-separated sizes (default 32,64,128,256,512,1024)\n"
	"     --rates LIST    comma-separated rates (default 44100,48000,96000)\n"
	"     --seconds S     per cell (default 1)\n"
	"  conformance     call every IASIO method in and out of order and check\n"
	"                  the return codes\n"
	"  hammer          for --seconds S, rounds of: --threads N (default 4)\n"
	"                  threads calling createBuffers, start, stop,\n"
	"                  disposeBuffers, AddRef/Release at random while the\n"
	"                  callback stops and disposes from inside; each round's\n"
	"                  last Release comes while running, from inside the\n"
	"                  callback, or after a stop from inside it.\n"
	"                  Its buffer size is the graph's quantum (the driver's\n"
	"                  ASIO_BRIDGE_BUFFER_SIZE=0) unless that is set.\n"
	"Exit status: 0 all checks passed, 1 a check failed, 2 no driver or init\n"
	"failed, 3 the driver hung.\n";

#define COUNTER_PERIOD 8388607u
#define COUNTER_SCALE 8388608.0f

static IASIO *asio;
static int32_t n_in, n_out, buffer_size;
static double sample_rate;
static ASIOBufferInfo infos[128];

/* What the callbacks record; they allocate nothing and call nothing slow. */
static struct {
	volatile LONG callbacks;
	int32_t last_index;
	uint64_t expected_position;
	LONG index_errors, position_errors, flag_errors;
	BOOL time_info_offered, used_time_info;
	BOOL size_change_refused; /* play a host without kAsioBufferSizeChange */
	BOOL loopback;
	double tone_hz, phase;
	uint64_t out_samples, in_samples;
	BOOL locked;
	uint64_t offset, locked_samples, mismatches, first_mismatch, first_index_error;
	uint64_t phase_start;   /* out_samples when the buffers were last opened */
	uint64_t dropouts, silent_run, shifts;
	volatile LONG reopen;   /* the driver asked for a reset or a new size */
	BOOL stop_in_callback;  /* conformance: call stop() from the callback */
	LONG stop_in_callback_result;
	double stop_in_callback_ms;
	/* Cycles the driver reports late (kAsioOverload, its value the number
	 * of cycles) cost silence where they come back through the loop. Every
	 * sample is checked; what is lost until those cycles are through the
	 * loop counts as xrun loss (late_cycles says how much may be), anything
	 * lost elsewhere as dropouts or mismatches: the bridge's own loss. */
	LONG xruns, late_cycles;
	uint64_t xrun_until, xrun_lost;
	int32_t latency_in, latency_out; /* the driver's latencies, for the window */
	BOOL schedule_asked;    /* once per open: the callback thread's scheduling */
	ASIOBridgeSchedule schedule;
	ASIOError schedule_result;
	volatile LONG reset_pending; /* kAsioResetRequest: re-open a new instance */
	float peak[64];
	LONG resets, size_changes, latency_changes, overloads, rate_changes;
	LARGE_INTEGER last_tick;
	double *intervals;
	size_t n_intervals, max_intervals;
	/* Where each buffer's time went (kAsioBridgeGetCycleTimes), ns, one
	 * entry per callback, allocated by run before the stream starts. */
	double burn_pct, late_wake_pct;
	LARGE_INTEGER entry_tick;  /* QueryPerformanceCounter at the callback's entry */
	BOOL times_valid;          /* the driver filled `entry` for this callback */
	ASIOBridgeCycleTimes entry;
	uint32_t *step_daemon, *step_futex, *step_dispatch, *step_callback, *wake;
	size_t n_times, max_times;
	uint64_t late_wakes, published_before_wait, daemon_late;
	uint64_t clock_read_ns;    /* the cheapest of a few back-to-back reads */
} rec;

static float counter(uint64_t n)
{
	return (float)((n % COUNTER_PERIOD) + 1) / COUNTER_SCALE;
}

/* Whether v (k = v * COUNTER_SCALE) is a counter value of this phase. */
static BOOL phase_counter(float v, float k)
{
	return v > 0 && k == floorf(k) && k <= COUNTER_PERIOD && (uint64_t)k - 1 >= rec.phase_start;
}

/* `late` cycles went wrong from here: they are through the loop once the
 * round trip and those cycles (at most the output latency each) have come
 * back in. */
static void xrun(LONG late)
{
	/* A late cycle costs up to a graph quantum, which may exceed both the
	 * output latency and the buffer (same-cycle, buffer below the
	 * quantum): once locked, the loop's own quantum tells it. */
	uint64_t loop = rec.locked && rec.offset > (uint64_t)rec.latency_in + rec.latency_out
			? rec.offset - rec.latency_in - rec.latency_out : 0;
	uint64_t cycle = (uint64_t)(rec.latency_out > buffer_size ? rec.latency_out : buffer_size);
	if (loop > cycle)
		cycle = loop;
	uint64_t until = rec.in_samples + (rec.locked ? rec.offset : 0) + (uint64_t)(late + 2) * cycle;
	rec.xruns++;
	rec.late_cycles += late;
	if (until > rec.xrun_until)
		rec.xrun_until = until;
}

static uint32_t clamp_ns(uint64_t later, uint64_t earlier)
{
	int64_t d = (int64_t)(later - earlier);
	return d < 0 ? 0 : d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

/* The first thing each callback does: the moments before it, in the
 * driver's clock, and its own entry in QueryPerformanceCounter's. */
static void enter_callback(void)
{
	rec.times_valid = asio->lpVtbl->future(asio, kAsioBridgeGetCycleTimes, &rec.entry) == ASE_SUCCESS;
	QueryPerformanceCounter(&rec.entry_tick);
}

/* Spins until --burn of the period has passed since the entry, then
 * records where this buffer's time went: the output is ready. */
static void leave_callback(const LARGE_INTEGER *freq)
{
	ASIOBridgeCycleTimes ready;
	LARGE_INTEGER now;
	uint32_t wake, daemon;
	double period_ns;

	if (rec.burn_pct > 0) {
		LONGLONG until = rec.entry_tick.QuadPart
				+ (LONGLONG)(rec.burn_pct / 100 * buffer_size / sample_rate * freq->QuadPart);
		do
			QueryPerformanceCounter(&now);
		while (now.QuadPart < until);
	}
	if (!rec.times_valid || rec.n_times >= rec.max_times
	    || asio->lpVtbl->future(asio, kAsioBridgeGetCycleTimes, &ready) != ASE_SUCCESS)
		return;
	if (!rec.clock_read_ns) {
		/* Once: what one read costs, included in step_callback. */
		ASIOBridgeCycleTimes a, b;
		int k;
		rec.clock_read_ns = UINT64_MAX;
		for (k = 0; k < 8; k++) {
			asio->lpVtbl->future(asio, kAsioBridgeGetCycleTimes, &a);
			asio->lpVtbl->future(asio, kAsioBridgeGetCycleTimes, &b);
			if (b.now_nsec - a.now_nsec < rec.clock_read_ns)
				rec.clock_read_ns = b.now_nsec - a.now_nsec;
		}
	}
	period_ns = (double)buffer_size / sample_rate * 1e9;
	daemon = clamp_ns(rec.entry.publish_nsec, rec.entry.graph_nsec);
	wake = clamp_ns(rec.entry.now_nsec, rec.entry.publish_nsec);
	rec.step_daemon[rec.n_times] = daemon;
	rec.step_futex[rec.n_times] = clamp_ns(rec.entry.wake_nsec, rec.entry.publish_nsec);
	rec.step_dispatch[rec.n_times] = clamp_ns(rec.entry.now_nsec, rec.entry.wake_nsec);
	rec.step_callback[rec.n_times] = clamp_ns(ready.now_nsec, rec.entry.now_nsec);
	rec.wake[rec.n_times] = wake;
	rec.n_times++;
	if ((int64_t)(rec.entry.wait_nsec - rec.entry.publish_nsec) > 0)
		rec.published_before_wait++;
	if (daemon > period_ns)
		rec.daemon_late++;
	if (wake > rec.late_wake_pct / 100 * period_ns)
		rec.late_wakes++;
}

static void process(int32_t index)
{
	int32_t i, s;
	LARGE_INTEGER now, freq;

	now = rec.entry_tick;
	QueryPerformanceFrequency(&freq);
	if (rec.last_tick.QuadPart && rec.n_intervals < rec.max_intervals)
		rec.intervals[rec.n_intervals++] = (double)(now.QuadPart - rec.last_tick.QuadPart) * 1e6 / freq.QuadPart;
	rec.last_tick = now;
	if (rec.callbacks > 0 && index != 1 - rec.last_index) {
		if (rec.index_errors++ == 0)
			rec.first_index_error = rec.in_samples;
		xrun(1);
	}
	rec.last_index = index;

	for (i = 0; i < n_in + n_out; i++) {
		float *buf = infos[i].buffers[index];
		int32_t ch = infos[i].channelNum;
		if (infos[i].isInput) {
			for (s = 0; s < buffer_size; s++) {
				float v = fabsf(buf[s]);
				if (ch < 64 && v > rec.peak[ch])
					rec.peak[ch] = v;
			}
			if (rec.loopback && ch == 0) {
				for (s = 0; s < buffer_size; s++) {
					uint64_t m = rec.in_samples + s;
					float v = buf[s], k = v * COUNTER_SCALE;
					if (!rec.locked) {
						/* Only this phase's counter: audio still in
						 * flight from before a re-open is not. */
						if (phase_counter(v, k)) {
							rec.offset = (m % COUNTER_PERIOD + COUNTER_PERIOD - ((uint64_t)k - 1)) % COUNTER_PERIOD;
							rec.locked = TRUE;
							rec.locked_samples++;
						}
					} else {
						float want = counter((m % COUNTER_PERIOD + COUNTER_PERIOD - rec.offset) % COUNTER_PERIOD);
						uint64_t offset = (m % COUNTER_PERIOD + COUNTER_PERIOD - ((uint64_t)k - 1)) % COUNTER_PERIOD;
						if (memcmp(&v, &want, sizeof(v)) == 0) {
							rec.locked_samples++;
							rec.silent_run = 0;
						} else if (m < rec.xrun_until) {
							rec.xrun_lost++;
						} else if (v == 0.0f) {
							rec.dropouts++;
							rec.silent_run++;
						} else if (phase_counter(v, k) && offset > rec.offset && offset - rec.offset <= rec.silent_run) {
							/* The stream went on after silence, later:
							 * the latency grew, nothing was lost. */
							rec.offset = offset;
							rec.shifts++;
							rec.locked_samples++;
							rec.silent_run = 0;
						} else if (rec.mismatches++ == 0) {
							rec.first_mismatch = m;
						}
					}
				}
			}
		} else if (rec.loopback && ch == 0) {
			for (s = 0; s < buffer_size; s++)
				buf[s] = counter(rec.out_samples + s);
		} else {
			double step = 2 * 3.141592653589793 * rec.tone_hz / sample_rate;
			for (s = 0; s < buffer_size; s++)
				buf[s] = rec.tone_hz > 0 ? (float)(0.1 * sin(rec.phase + step * s)) : 0.0f;
		}
	}
	if (rec.tone_hz > 0)
		rec.phase = fmod(rec.phase + 2 * 3.141592653589793 * rec.tone_hz / sample_rate * buffer_size, 2 * 3.141592653589793);
	rec.in_samples += buffer_size;
	rec.out_samples += buffer_size;
	if (!rec.schedule_asked) {
		rec.schedule_asked = TRUE;
		rec.schedule_result = asio->lpVtbl->future(asio, kAsioBridgeGetSchedule, &rec.schedule);
	}
	leave_callback(&freq);
	InterlockedIncrement(&rec.callbacks);
	if (rec.stop_in_callback) {
		LARGE_INTEGER t0, t1;
		rec.stop_in_callback = FALSE;
		QueryPerformanceCounter(&t0);
		rec.stop_in_callback_result = asio->lpVtbl->stop(asio);
		QueryPerformanceCounter(&t1);
		rec.stop_in_callback_ms = (double)(t1.QuadPart - t0.QuadPart) * 1000.0 / freq.QuadPart;
	}
}

static void cb_bufferSwitch(int32_t index, ASIOBool direct)
{
	ASIOSamples pos;
	ASIOTimeStamp stamp;
	(void)direct;
	enter_callback();
	if (asio->lpVtbl->getSamplePosition(asio, &pos, &stamp) != ASE_OK
	    || (((uint64_t)pos.hi << 32) | pos.lo) != rec.expected_position)
		rec.position_errors++;
	rec.expected_position += buffer_size;
	process(index);
}

static ASIOTime *cb_bufferSwitchTimeInfo(ASIOTime *t, int32_t index, ASIOBool direct)
{
	const uint32_t want = kSystemTimeValid | kSamplePositionValid | kSampleRateValid;
	(void)direct;
	enter_callback();
	rec.used_time_info = TRUE;
	if ((t->timeInfo.flags & want) != want)
		rec.flag_errors++;
	if ((((uint64_t)t->timeInfo.samplePosition.hi << 32) | t->timeInfo.samplePosition.lo) != rec.expected_position)
		rec.position_errors++;
	rec.expected_position += buffer_size;
	process(index);
	return t;
}

static void cb_sampleRateDidChange(ASIOSampleRate rate)
{
	(void)rate;
	InterlockedIncrement(&rec.rate_changes);
	InterlockedExchange(&rec.reopen, 1);
}

static int32_t cb_asioMessage(int32_t selector, int32_t value, void *message, double *opt)
{
	(void)message, (void)opt;
	switch (selector) {
	case kAsioSelectorSupported:
		switch (value) {
		case kAsioBufferSizeChange:
			return !rec.size_change_refused;
		case kAsioEngineVersion: case kAsioResetRequest:
		case kAsioResyncRequest: case kAsioLatenciesChanged: case kAsioOverload:
			return 1;
		case kAsioSupportsTimeInfo:
			return rec.time_info_offered;
		}
		return 0;
	case kAsioEngineVersion: return 2;
	case kAsioSupportsTimeInfo: return rec.time_info_offered;
	case kAsioResetRequest:
		/* As a DAW does: the main thread re-opens, never the callback. */
		InterlockedIncrement(&rec.resets);
		InterlockedExchange(&rec.reset_pending, 1);
		return 1;
	case kAsioBufferSizeChange:
		if (rec.size_change_refused)
			return 0;
		InterlockedIncrement(&rec.size_changes);
		InterlockedExchange(&rec.reopen, 1);
		return 1;
	case kAsioResyncRequest: return 1;
	case kAsioLatenciesChanged: InterlockedIncrement(&rec.latency_changes); return 1;
	case kAsioOverload: InterlockedIncrement(&rec.overloads); xrun(value > 0 ? value : 1); return 1;
	}
	return 0;
}

static ASIOCallbacks callbacks = { cb_bufferSwitch, cb_sampleRateDidChange, cb_asioMessage, cb_bufferSwitchTimeInfo };

/* ---- loading the driver ------------------------------------------------ */

static void list_drivers(void)
{
	HKEY key;
	char name[256];
	DWORD i;
	if (RegOpenKeyExA(HKEY_LOCAL_MACHINE, "Software\\ASIO", 0, KEY_READ, &key))
		return;
	for (i = 0; !RegEnumKeyA(key, i, name, sizeof(name)); i++)
		fprintf(stderr, "installed ASIO driver: %s\n", name);
	RegCloseKey(key);
}

static BOOL quiet; /* re-opening: no driver_found or init lines */

static IASIO *load_driver(const char *driver)
{
	char path[512], clsid_str[64];
	WCHAR wide[64];
	DWORD size = sizeof(clsid_str);
	CLSID clsid;
	IASIO *obj = NULL;

	snprintf(path, sizeof(path), "Software\\ASIO\\%s", driver);
	if (RegGetValueA(HKEY_LOCAL_MACHINE, path, "CLSID", RRF_RT_REG_SZ, NULL, clsid_str, &size)) {
		printf("driver_found=0\n");
		fprintf(stderr, "no ASIO driver named '%s' is registered\n", driver);
		list_drivers();
		return NULL;
	}
	MultiByteToWideChar(CP_ACP, 0, clsid_str, -1, wide, 64);
	if (CLSIDFromString(wide, &clsid) || CoCreateInstance(&clsid, NULL, CLSCTX_INPROC_SERVER, &clsid, (void **)&obj)) {
		printf("driver_found=0\n");
		fprintf(stderr, "'%s' is registered as %s but cannot be created\n", driver, clsid_str);
		return NULL;
	}
	if (!quiet)
		printf("driver_found=1\n");
	return obj;
}

static BOOL init_driver(void)
{
	char error[124] = "";
	if (asio->lpVtbl->init(asio, GetDesktopWindow())) {
		printf("init=1\n");
		return TRUE;
	}
	asio->lpVtbl->getErrorMessage(asio, error);
	printf("init=0\nerror=%s\n", error);
	return FALSE;
}

/* ---- info -------------------------------------------------------------- */

static int cmd_info(void)
{
	char name[32] = "";
	int32_t min, max, pref, gran, lin, lout, n_clocks = 4, i;
	ASIOClockSource clocks[4];
	static const double rates[] = { 44100, 48000, 96000 };

	asio->lpVtbl->getDriverName(asio, name);
	printf("driver_name=%s\ndriver_version=%d\n", name, (int)asio->lpVtbl->getDriverVersion(asio));
	if (!init_driver())
		return 2;
	asio->lpVtbl->getChannels(asio, &n_in, &n_out);
	printf("inputs=%d\noutputs=%d\n", (int)n_in, (int)n_out);
	if (asio->lpVtbl->getBufferSize(asio, &min, &max, &pref, &gran) == ASE_OK)
		printf("buffer_min=%d\nbuffer_max=%d\nbuffer_preferred=%d\nbuffer_granularity=%d\n",
				(int)min, (int)max, (int)pref, (int)gran);
	asio->lpVtbl->getSampleRate(asio, &sample_rate);
	printf("sample_rate=%.0f\n", sample_rate);
	for (i = 0; i < 3; i++)
		printf("can_rate_%.0f=%d\n", rates[i], asio->lpVtbl->canSampleRate(asio, rates[i]) == ASE_OK);
	if (asio->lpVtbl->getLatencies(asio, &lin, &lout) == ASE_OK)
		printf("input_latency=%d\noutput_latency=%d\n", (int)lin, (int)lout);
	if (asio->lpVtbl->getClockSources(asio, clocks, &n_clocks) == ASE_OK)
		printf("clock_sources=%d\nclock_source_0=%s\n", (int)n_clocks, clocks[0].name);
	for (i = 0; i < n_in + n_out; i++) {
		ASIOChannelInfo ci = { .channel = i < n_in ? i : i - n_in, .isInput = i < n_in };
		if (asio->lpVtbl->getChannelInfo(asio, &ci) == ASE_OK)
			printf("channel_%s_%d=%s,group=%d,type=%d\n", ci.isInput ? "in" : "out", (int)ci.channel,
					ci.name, (int)ci.channelGroup, (int)ci.type);
	}
	return 0;
}

/* ---- run --------------------------------------------------------------- */

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static int compare_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* name_p50_us, name_p99_us, name_max_us of `n` ns figures (sorts them). */
static void print_figures(const char *name, uint32_t *ns, size_t n)
{
	qsort(ns, n, sizeof(*ns), compare_u32);
	printf("%s_p50_us=%.1f\n%s_p99_us=%.1f\n%s_max_us=%.1f\n", name, ns[n / 2] / 1e3,
			name, ns[(size_t)(n * 0.99)] / 1e3, name, ns[n - 1] / 1e3);
}

/* Creates buffers of `size` for every channel and starts; the loopback
 * check starts over. Returns the first failing call's error. */
static ASIOError open_buffers(int32_t size, int32_t *lin, int32_t *lout)
{
	ASIOError err;
	int32_t i;
	buffer_size = size;
	for (i = 0; i < n_in + n_out && i < 128; i++) {
		infos[i].isInput = i < n_in;
		infos[i].channelNum = i < n_in ? i : i - n_in;
	}
	rec.locked = FALSE;
	rec.silent_run = 0;
	rec.phase_start = rec.out_samples;
	rec.expected_position = 0;
	rec.callbacks = 0;
	rec.xrun_until = 0;
	rec.schedule_asked = FALSE;
	InterlockedExchange(&rec.reopen, 0);
	if ((err = asio->lpVtbl->createBuffers(asio, infos, n_in + n_out, size, &callbacks)) != ASE_OK)
		return err;
	asio->lpVtbl->getLatencies(asio, lin, lout);
	rec.latency_in = *lin;
	rec.latency_out = *lout;
	asio->lpVtbl->getSampleRate(asio, &sample_rate);
	return asio->lpVtbl->start(asio);
}

static void close_buffers(void)
{
	asio->lpVtbl->stop(asio);
	asio->lpVtbl->disposeBuffers(asio);
}

static ASIOError set_rate(double rate)
{
	ASIOError err = asio->lpVtbl->setSampleRate(asio, rate);
	char error[124] = "";
	if (err != ASE_OK) {
		asio->lpVtbl->getErrorMessage(asio, error);
		printf("set_rate=%d\nerror=%s\n", (int)err, error);
	}
	asio->lpVtbl->getSampleRate(asio, &sample_rate);
	return err;
}

/* One line per stretch between (re-)opens, and the loopback totals. */
static uint64_t total_mismatches, total_dropouts, total_shifts;

static void end_phase(LONG phase, int32_t lin, int32_t lout)
{
	if (rec.loopback)
		printf("phase_%ld=buffer:%d rate:%.0f in:%d out:%d measured:%lld dropouts:%llu shifts:%llu mismatches:%llu\n",
				phase, (int)buffer_size, sample_rate, (int)lin, (int)lout, rec.locked ? (long long)rec.offset : -1LL,
				(unsigned long long)rec.dropouts, (unsigned long long)rec.shifts, (unsigned long long)rec.mismatches);
	total_mismatches += rec.mismatches;
	total_dropouts += rec.dropouts;
	total_shifts += rec.shifts;
	rec.mismatches = rec.dropouts = rec.shifts = 0;
}

static const char *policy_name(int32_t policy)
{
	switch (policy) {
	case 0: return "SCHED_OTHER";
	case 1: return "SCHED_FIFO";
	case 2: return "SCHED_RR";
	case 3: return "SCHED_BATCH";
	case 5: return "SCHED_IDLE";
	}
	return "unknown";
}

enum on_reset { RESET_REOPEN, RESET_FATAL, RESET_IGNORE };

/* What a DAW does on kAsioResetRequest: releases the driver, creates a new
 * instance and opens it again, retrying init until the bridge is back or
 * `deadline` (a GetTickCount value) passes. */
static BOOL reopen_driver(const char *driver, DWORD deadline, LONG *init_failures, char *error)
{
	asio->lpVtbl->Release(asio);
	asio = NULL;
	quiet = TRUE;
	for (;;) {
		if (!(asio = load_driver(driver)))
			return FALSE;
		if (asio->lpVtbl->init(asio, GetDesktopWindow()))
			return TRUE;
		asio->lpVtbl->getErrorMessage(asio, error);
		(*init_failures)++;
		asio->lpVtbl->Release(asio);
		asio = NULL;
		if ((LONG)(GetTickCount() - deadline) >= 0)
			return FALSE;
		Sleep(50);
	}
}

static int cmd_run(const char *driver, double seconds, int32_t buffer, double rate, BOOL timeinfo, enum on_reset on_reset)
{
	int32_t min, max, pref, gran, lin = -1, lout = -1, i;
	LONG reopens = 0, resets_handled = 0, init_failures = 0, total_callbacks = 0, latency_changes_seen = 0;
	ASIOError err;
	double expected;
	DWORD start, end, reset_tick = 0;
	BOOL ok, awaiting = FALSE, failed = FALSE, closed = FALSE;
	char error[124] = "";

	if (!init_driver())
		return 2;
	asio->lpVtbl->getChannels(asio, &n_in, &n_out);
	if (rate > 0 && set_rate(rate) != ASE_OK)
		return 1;
	asio->lpVtbl->getBufferSize(asio, &min, &max, &pref, &gran);
	asio->lpVtbl->getSampleRate(asio, &sample_rate);
	rec.time_info_offered = timeinfo;
	rec.max_intervals = (size_t)(seconds * 192000 / (min > 0 ? min : 32)) + 1024;
	rec.intervals = calloc(rec.max_intervals, sizeof(double));
	rec.max_times = rec.max_intervals;
	rec.step_daemon = calloc(rec.max_times, sizeof(uint32_t));
	rec.step_futex = calloc(rec.max_times, sizeof(uint32_t));
	rec.step_dispatch = calloc(rec.max_times, sizeof(uint32_t));
	rec.step_callback = calloc(rec.max_times, sizeof(uint32_t));
	rec.wake = calloc(rec.max_times, sizeof(uint32_t));
	if (!rec.intervals || !rec.step_daemon || !rec.step_futex || !rec.step_dispatch || !rec.step_callback || !rec.wake)
		return 1;
	if ((err = open_buffers(buffer > 0 ? buffer : pref, &lin, &lout)) != ASE_OK) {
		printf("open=%d\n", (int)err);
		return 1;
	}
	start = GetTickCount();
	end = start + (DWORD)(seconds * 1000);
	while ((LONG)(GetTickCount() - end) < 0) {
		BOOL reset;
		Sleep(10);
		if (awaiting && rec.callbacks > 0) {
			/* Printed as it happens: the tests time it. */
			printf("reset_%ld_resumed_ms=%lu\n", resets_handled, (unsigned long)(GetTickCount() - reset_tick));
			awaiting = FALSE;
		}
		if (rec.latency_changes != latency_changes_seen) {
			/* As a DAW does on kAsioLatenciesChanged: asks again. */
			latency_changes_seen = rec.latency_changes;
			asio->lpVtbl->getLatencies(asio, &lin, &lout);
			rec.latency_in = lin;
			rec.latency_out = lout;
		}
		if (!rec.reopen && !(rec.reset_pending && on_reset != RESET_IGNORE))
			continue;
		/* No callback after this: whatever the driver said in the last
		 * one has arrived, so a reset and a new rate told together make
		 * one re-open. */
		close_buffers();
		reset = rec.reset_pending && on_reset != RESET_IGNORE;
		total_callbacks += rec.callbacks;
		end_phase(reopens, lin, lout);
		if (reset) {
			InterlockedExchange(&rec.reset_pending, 0);
			printf("reset_%ld_at_ms=%lu\n", resets_handled + 1, (unsigned long)(GetTickCount() - start));
			if (on_reset == RESET_FATAL) {
				/* As RtAudio does: the stream is over. */
				asio->lpVtbl->Release(asio);
				asio = NULL;
				closed = TRUE;
				break;
			}
			reset_tick = GetTickCount();
			resets_handled++;
			reopens++;
			if (!reopen_driver(driver, end, &init_failures, error)) {
				printf("reopen=init failed\nerror=%s\n", error);
				failed = TRUE;
				break;
			}
			asio->lpVtbl->getChannels(asio, &n_in, &n_out);
			asio->lpVtbl->getBufferSize(asio, &min, &max, &pref, &gran);
			if ((err = open_buffers(pref, &lin, &lout)) != ASE_OK) {
				printf("reopen=%d\n", (int)err);
				failed = TRUE;
				break;
			}
			latency_changes_seen = rec.latency_changes;
			awaiting = TRUE;
			continue;
		}
		/* What a DAW does on kAsioBufferSizeChange or a new rate. */
		asio->lpVtbl->getBufferSize(asio, &min, &max, &pref, &gran);
		reopens++;
		if ((err = open_buffers(pref, &lin, &lout)) != ASE_OK) {
			printf("reopen=%d\n", (int)err);
			return 1;
		}
		latency_changes_seen = rec.latency_changes;
	}
	if (!closed && !failed) {
		close_buffers();
		total_callbacks += rec.callbacks;
		end_phase(reopens, lin, lout);
	}

	expected = seconds * sample_rate / buffer_size;
	qsort(rec.intervals, rec.n_intervals, sizeof(double), compare_double);
	printf("buffer_size=%d\nsample_rate=%.0f\ninput_latency=%d\noutput_latency=%d\n",
			(int)buffer_size, sample_rate, (int)lin, (int)lout);
	printf("callbacks=%ld\ntotal_callbacks=%ld\nexpected_callbacks=%.0f\nreopens=%ld\n",
			rec.callbacks, total_callbacks, expected, reopens);
	printf("resets_handled=%ld\nreopen_init_failures=%ld\nclosed_on_reset=%d\n", resets_handled, init_failures, closed);
	if (init_failures)
		printf("reopen_init_error=%s\n", error);
	printf("index_errors=%ld\nposition_errors=%ld\nflag_errors=%ld\nused_time_info=%d\n",
			rec.index_errors, rec.position_errors, rec.flag_errors, rec.used_time_info);
	if (rec.index_errors)
		printf("first_index_error_ms=%.1f\n", rec.first_index_error * 1000.0 / sample_rate);
	printf("reset_requests=%ld\nbuffer_size_changes=%ld\nrate_changes=%ld\nlatency_changes=%ld\noverloads=%ld\nlate_cycles=%ld\n",
			rec.resets, rec.size_changes, rec.rate_changes, rec.latency_changes, rec.overloads, rec.late_cycles);
	if (rec.schedule_asked)
		printf("callback_schedule=%s\ncallback_policy=%s\ncallback_priority=%d\ncallback_rt_error=%d\n",
				rec.schedule_result == ASE_SUCCESS ? "reported" : "unknown",
				rec.schedule_result == ASE_SUCCESS ? policy_name(rec.schedule.policy) : "unknown",
				(int)rec.schedule.priority, (int)rec.schedule.error);
	if (rec.n_intervals)
		printf("interval_p50_us=%.0f\ninterval_p99_us=%.0f\ninterval_max_us=%.0f\n",
				rec.intervals[rec.n_intervals / 2], rec.intervals[(size_t)(rec.n_intervals * 0.99)],
				rec.intervals[rec.n_intervals - 1]);
	if (rec.n_times) {
		printf("burn_pct=%.1f\nlate_wake_pct=%.1f\nlate_wakes=%llu\ntimed_callbacks=%llu\nclock_read_ns=%llu\n",
				rec.burn_pct, rec.late_wake_pct, (unsigned long long)rec.late_wakes,
				(unsigned long long)rec.n_times, (unsigned long long)rec.clock_read_ns);
		printf("published_before_wait=%llu\ndaemon_late_cycles=%llu\n",
				(unsigned long long)rec.published_before_wait, (unsigned long long)rec.daemon_late);
		print_figures("step_daemon", rec.step_daemon, rec.n_times);
		print_figures("step_futex", rec.step_futex, rec.n_times);
		print_figures("step_dispatch", rec.step_dispatch, rec.n_times);
		print_figures("step_callback", rec.step_callback, rec.n_times);
		print_figures("wake", rec.wake, rec.n_times);
	}
	for (i = 0; i < n_in && i < 64; i++)
		printf("input_peak_%d=%.4f\n", (int)i, rec.peak[i]);
	/* No callbacks at all, or none since the last (re-)open, is a failure;
	 * without re-opens, nearly every cycle must have called back. */
	ok = !failed && rec.position_errors == 0 && rec.flag_errors == 0 && total_callbacks > 0
			&& (closed || rec.callbacks > 0) && (reopens || closed || rec.callbacks >= 0.9 * expected);
	if (rec.loopback) {
		printf("loopback_offset=%lld\nloopback_mismatches=%llu\nloopback_locked_samples=%llu\n",
				rec.locked ? (long long)rec.offset : -1LL, (unsigned long long)total_mismatches,
				(unsigned long long)rec.locked_samples);
		if (total_mismatches)
			printf("loopback_first_mismatch_ms=%.1f\n", rec.first_mismatch * 1000.0 / sample_rate);
		printf("loopback_dropouts=%llu\nloopback_latency_shifts=%llu\n",
				(unsigned long long)total_dropouts, (unsigned long long)total_shifts);
		printf("xruns=%ld\nxrun_lost_samples=%llu\n", rec.xruns, (unsigned long long)rec.xrun_lost);
		ok = ok && rec.locked && total_mismatches == 0;
	}
	return ok ? 0 : 1;
}

/* Parses "a,b,c" into at most `max` numbers; returns how many. */
static int parse_list(const char *text, double *out, int max)
{
	int n = 0;
	char *end;
	while (*text && n < max) {
		out[n++] = strtod(text, &end);
		if (end == text)
			return 0;
		text = *end == ',' ? end + 1 : end;
	}
	return n;
}

/* One loopback run per buffer size and rate: one line per cell. */
static int cmd_sweep(const char *buffers, const char *rates, double seconds)
{
	double sizes[16], hz[8];
	int n_sizes = parse_list(buffers, sizes, 16), n_rates = parse_list(rates, hz, 8), r, b, failed = 0;

	if (!n_sizes || !n_rates) {
		fprintf(stderr, "asio-host: --buffers and --rates take comma-separated numbers\n");
		return 2;
	}
	if (!init_driver())
		return 2;
	asio->lpVtbl->getChannels(asio, &n_in, &n_out);
	rec.loopback = TRUE;
	rec.time_info_offered = TRUE;
	for (r = 0; r < n_rates; r++) {
		if (set_rate(hz[r]) != ASE_OK) {
			printf("cell_%.0f=rate refused\n", hz[r]);
			failed++;
			continue;
		}
		for (b = 0; b < n_sizes; b++) {
			int32_t lin = -1, lout = -1;
			ASIOError err;
			rec.mismatches = rec.dropouts = rec.shifts = 0;
			rec.xruns = rec.overloads = 0;
			if ((err = open_buffers((int32_t)sizes[b], &lin, &lout)) != ASE_OK) {
				printf("cell_%.0f_%.0f=open failed %d\n", hz[r], sizes[b], (int)err);
				failed++;
				close_buffers();
				continue;
			}
			Sleep((DWORD)(seconds * 1000));
			close_buffers();
			printf("cell_%.0f_%.0f=rate:%.0f buffer:%d in:%d out:%d measured:%lld mismatches:%llu dropouts:%llu shifts:%llu xruns:%ld callbacks:%ld\n",
					hz[r], sizes[b], sample_rate, (int)buffer_size, (int)lin, (int)lout,
					rec.locked ? (long long)rec.offset : -1LL, (unsigned long long)rec.mismatches,
					(unsigned long long)rec.dropouts, (unsigned long long)rec.shifts, rec.xruns, rec.callbacks);
			failed += !rec.locked || rec.mismatches || rec.dropouts || rec.shifts;
		}
	}
	printf("sweep_failures=%d\n", failed);
	return failed ? 1 : 0;
}

/* ---- hammer ------------------------------------------------------------ */

/* Several threads call the lifetime methods of one instance at random while
 * its callback stops, disposes and finally releases it from inside; each
 * round ends with the last Release from a different place. Any crash, hang,
 * unexpected result, callback after the last Release or instance left
 * behind fails. */
static struct {
	IASIO *drv;                 /* this round's instance */
	int32_t size;
	volatile LONG stop_workers, ops, unexpected;
	volatile LONG callbacks, acts, stops_in_callback, disposes_in_callback, releases_in_callback;
	volatile LONG release_in_callback; /* the next callback drops the last reference */
	volatile LONG stop_next;    /* the next callback stops */
	volatile LONG ending;       /* the round's end: no stop or dispose at random */
	volatile LONG released;     /* the last Release has returned */
	volatile LONG after_release; /* callbacks after it */
	volatile float sink;
	char first_unexpected[128];
} ham;

static void unexpected(const char *what, ASIOError got)
{
	if (InterlockedIncrement(&ham.unexpected) == 1)
		snprintf(ham.first_unexpected, sizeof(ham.first_unexpected), "%s returned %d", what, (int)got);
}

static void expect(const char *what, ASIOError got, ASIOError want, ASIOError also)
{
	if (got != want && got != also)
		unexpected(what, got);
}

static void hammer_switch(int32_t index, ASIOBool direct)
{
	IASIO *drv = ham.drv;
	LONG n = InterlockedIncrement(&ham.callbacks);
	int32_t i, s;
	float sum = 0;
	(void)direct;
	if (ham.released)
		InterlockedIncrement(&ham.after_release);
	/* Touches every buffer, as a DAW does. */
	for (i = 0; i < n_in + n_out; i++) {
		float *buf = infos[i].buffers[index];
		for (s = 0; s < ham.size; s++) {
			if (infos[i].isInput)
				sum += buf[s];
			else
				buf[s] = 0.001f * (float)s;
		}
	}
	ham.sink = sum;
	if (InterlockedExchange(&ham.release_in_callback, 0)) {
		InterlockedIncrement(&ham.releases_in_callback);
		drv->lpVtbl->Release(drv);
		InterlockedExchange(&ham.released, 1);
		return;
	}
	if (InterlockedExchange(&ham.stop_next, 0)) {
		InterlockedIncrement(&ham.stops_in_callback);
		expect("stop in the callback", drv->lpVtbl->stop(drv), ASE_OK, ASE_OK);
	} else if (ham.ending) {
		return;
	} else if ((n = InterlockedIncrement(&ham.acts)) % 6 == 0) {
		InterlockedIncrement(&ham.disposes_in_callback);
		expect("disposeBuffers in the callback", drv->lpVtbl->disposeBuffers(drv), ASE_OK, ASE_InvalidMode);
	} else if (n % 3 == 0) {
		InterlockedIncrement(&ham.stops_in_callback);
		expect("stop in the callback", drv->lpVtbl->stop(drv), ASE_OK, ASE_OK);
	}
}

static ASIOTime *hammer_switch_time(ASIOTime *t, int32_t index, ASIOBool direct)
{
	hammer_switch(index, direct);
	return t;
}

static void hammer_rate(ASIOSampleRate rate)
{
	(void)rate;
}

static int32_t hammer_message(int32_t selector, int32_t value, void *message, double *opt)
{
	(void)value, (void)message, (void)opt;
	return selector == kAsioEngineVersion ? 2 : 0;
}

static ASIOCallbacks hammer_callbacks = { hammer_switch, hammer_rate, hammer_message, hammer_switch_time };

static DWORD WINAPI hammer_worker(void *arg)
{
	IASIO *drv = ham.drv;
	unsigned seed = 2654435761u * (unsigned)(uintptr_t)arg + GetTickCount();
	ASIOSamples pos;
	ASIOTimeStamp stamp;
	int32_t a, b;

	drv->lpVtbl->AddRef(drv);
	while (!ham.stop_workers) {
		ASIOChannelInfo ci = { .channel = 0, .isInput = n_in > 0 };
		seed = seed * 1103515245u + 12345u;
		switch ((seed >> 16) % 8) {
		case 0:
			expect("createBuffers", drv->lpVtbl->createBuffers(drv, infos, n_in + n_out, ham.size, &hammer_callbacks),
					ASE_OK, ASE_InvalidMode);
			break;
		case 1:
			expect("start", drv->lpVtbl->start(drv), ASE_OK, ASE_InvalidMode);
			break;
		case 2:
			expect("stop", drv->lpVtbl->stop(drv), ASE_OK, ASE_OK);
			break;
		case 3:
			expect("disposeBuffers", drv->lpVtbl->disposeBuffers(drv), ASE_OK, ASE_InvalidMode);
			break;
		case 4:
			expect("getLatencies", drv->lpVtbl->getLatencies(drv, &a, &b), ASE_OK, ASE_OK);
			break;
		case 5:
			expect("getSamplePosition", drv->lpVtbl->getSamplePosition(drv, &pos, &stamp), ASE_OK, ASE_SPNotAdvancing);
			break;
		case 6:
			expect("getChannelInfo", drv->lpVtbl->getChannelInfo(drv, &ci), ASE_OK, ASE_OK);
			break;
		default:
			drv->lpVtbl->AddRef(drv);
			drv->lpVtbl->Release(drv);
			break;
		}
		InterlockedIncrement(&ham.ops);
		if ((seed >> 8) % 4 == 0)
			Sleep(1);
	}
	drv->lpVtbl->Release(drv);
	return 0;
}

/* Buffers and a running callback, whatever the workers left behind. */
static void hammer_run(IASIO *drv)
{
	expect("createBuffers", drv->lpVtbl->createBuffers(drv, infos, n_in + n_out, ham.size, &hammer_callbacks),
			ASE_OK, ASE_InvalidMode);
	expect("start", drv->lpVtbl->start(drv), ASE_OK, ASE_OK);
}

static int cmd_hammer(const char *driver, double seconds, int n_threads)
{
	typedef HRESULT (WINAPI *can_unload_fn)(void);
	HANDLE threads[16];
	can_unload_fn can_unload;
	LONG rounds = 0, ends[3] = { 0 };
	DWORD start = GetTickCount(), t0;
	int32_t min, max, pref, gran, i;
	BOOL left = FALSE;

	if (n_threads < 1 || n_threads > 16)
		n_threads = 4;
	/* Many rounds, each with many callbacks: the hammer takes the graph's
	 * own quantum (the driver's PreferredBufferSize 0), which createBuffers
	 * never waits for, unless told otherwise. */
	if (!GetEnvironmentVariableA("ASIO_BRIDGE_BUFFER_SIZE", NULL, 0))
		SetEnvironmentVariableA("ASIO_BRIDGE_BUFFER_SIZE", "0");
	quiet = TRUE;
	while (GetTickCount() - start < (DWORD)(seconds * 1000)) {
		LONG before, end = rounds % 3;
		if (!asio && !(asio = load_driver(driver)))
			return 2;
		if (!asio->lpVtbl->init(asio, GetDesktopWindow())) {
			init_driver();
			return 2;
		}
		asio->lpVtbl->getChannels(asio, &n_in, &n_out);
		asio->lpVtbl->getBufferSize(asio, &min, &max, &pref, &gran);
		for (i = 0; i < n_in + n_out && i < 128; i++) {
			infos[i].isInput = i < n_in;
			infos[i].channelNum = i < n_in ? i : i - n_in;
		}
		ham.drv = asio;
		ham.size = pref;
		ham.released = FALSE;
		ham.stop_workers = FALSE;
		ham.ending = FALSE;
		for (i = 0; i < n_threads; i++)
			threads[i] = CreateThread(NULL, 0, hammer_worker, (void *)(uintptr_t)(i + 1), 0, NULL);
		Sleep(600);
		InterlockedExchange(&ham.stop_workers, 1);
		if (WaitForMultipleObjects(n_threads, threads, TRUE, 10000) != WAIT_OBJECT_0) {
			printf("hammer_hang=workers\n");
			return 3;
		}
		for (i = 0; i < n_threads; i++)
			CloseHandle(threads[i]);
		/* The last Release: while running, from inside the callback, or
		 * with the callback stopped from inside it. */
		InterlockedExchange(&ham.ending, 1);
		hammer_run(asio);
		Sleep(30);
		if (end == 1) {
			InterlockedExchange(&ham.release_in_callback, 1);
			for (t0 = GetTickCount(); !ham.released && GetTickCount() - t0 < 3000;)
				Sleep(1);
			if (!ham.released) {
				printf("hammer_hang=release in callback\n");
				return 3;
			}
		} else {
			if (end == 2)
				InterlockedExchange(&ham.stop_next, 1);
			Sleep(20);
			if (asio->lpVtbl->Release(asio) != 0)
				unexpected("the last Release", 1);
			InterlockedExchange(&ham.released, 1);
		}
		asio = NULL;
		before = ham.callbacks;
		Sleep(50);
		if (ham.callbacks != before)
			unexpected("a callback after the last Release", 0);
		/* The driver's blocks come from the process heap: one written
		 * after it was freed (filled and checked under WINEDEBUG=warn+heap)
		 * fails here. */
		if (!HeapValidate(GetProcessHeap(), 0, NULL))
			unexpected("HeapValidate after the round", 0);
		ends[end]++;
		rounds++;
	}
	/* Every instance freed, the last ones by their callback threads. */
	can_unload = (can_unload_fn)(void (*)(void))GetProcAddress(GetModuleHandleA("asiobridge.dll"), "DllCanUnloadNow");
	for (t0 = GetTickCount(); can_unload && can_unload() != S_OK && GetTickCount() - t0 < 2000;)
		Sleep(10);
	left = can_unload && can_unload() != S_OK;
	if (!HeapValidate(GetProcessHeap(), 0, NULL))
		unexpected("HeapValidate at the end", 0);
	printf("hammer_rounds=%ld\nhammer_threads=%d\nhammer_ops=%ld\nhammer_callbacks=%ld\n", rounds, n_threads, ham.ops, ham.callbacks);
	printf("hammer_release_while_running=%ld\nhammer_release_in_callback=%ld\nhammer_release_after_stop_in_callback=%ld\n",
			ends[0], ends[1], ends[2]);
	printf("hammer_stops_in_callback=%ld\nhammer_disposes_in_callback=%ld\n", ham.stops_in_callback, ham.disposes_in_callback);
	printf("hammer_callbacks_after_release=%ld\nhammer_instances_left=%d\nhammer_unexpected=%ld\n",
			ham.after_release, left, ham.unexpected);
	if (ham.unexpected)
		printf("hammer_first_unexpected=%s\n", ham.first_unexpected);
	return ham.unexpected || ham.after_release || left || !can_unload || rounds < 3 ? 1 : 0;
}

/* ---- conformance ------------------------------------------------------- */

static int failures;

static void check(const char *name, long got, long want, long also)
{
	if (got == want || got == also) {
		printf("check_%s=ok\n", name);
	} else {
		printf("check_%s=FAIL(got %ld want %ld)\n", name, got, want);
		failures++;
	}
}
#define CHECK(name, got, want) check(name, (long)(got), (long)(want), (long)(want))

static DWORD WINAPI watchdog(void *arg)
{
	(void)arg;
	Sleep(30000);
	printf("conformance_hang=1\n");
	fflush(stdout);
	ExitProcess(3);
	return 0;
}

static LONG callbacks_after(DWORD ms)
{
	LONG before = rec.callbacks;
	Sleep(ms);
	return rec.callbacks - before;
}

static int cmd_conformance(void)
{
	const IASIOVtbl *v = asio->lpVtbl;
	int32_t a = 0, b = 0, c = 0, d = 0, i;
	double rate = 0;
	ASIOSamples pos;
	ASIOTimeStamp stamp;
	ASIOClockSource clocks[4];
	ASIOChannelInfo ci = { 0 };
	ASIOBufferInfo two[2], bad;
	char name[32], error[124];
	DWORD t0;

	CloseHandle(CreateThread(NULL, 0, watchdog, NULL, 0, NULL));
	rec.time_info_offered = TRUE;

	v->getDriverName(asio, name);
	v->getErrorMessage(asio, error);
	CHECK("driver_version", v->getDriverVersion(asio) > 0, 1);
	CHECK("channels_before_init", v->getChannels(asio, &a, &b), ASE_NotPresent);
	CHECK("buffer_size_before_init", v->getBufferSize(asio, &a, &b, &c, &d), ASE_NotPresent);
	CHECK("create_before_init", v->createBuffers(asio, infos, 1, 256, &callbacks), ASE_NotPresent);
	CHECK("start_before_init", v->start(asio), ASE_NotPresent);
	CHECK("stop_before_init", v->stop(asio), ASE_NotPresent);
	CHECK("latencies_before_init", v->getLatencies(asio, &a, &b), ASE_NotPresent);
	CHECK("rate_before_init", v->getSampleRate(asio, &rate), ASE_NotPresent);
	CHECK("channel_info_before_init", v->getChannelInfo(asio, &ci), ASE_NotPresent);
	CHECK("position_before_init", v->getSamplePosition(asio, &pos, &stamp), ASE_NotPresent);

	CHECK("init", v->init(asio, GetDesktopWindow()), 1);
	CHECK("init_again", v->init(asio, GetDesktopWindow()), 1);

	CHECK("channels_null", v->getChannels(asio, NULL, &b), ASE_InvalidParameter);
	CHECK("latencies_null", v->getLatencies(asio, &a, NULL), ASE_InvalidParameter);
	CHECK("buffer_size_null", v->getBufferSize(asio, NULL, &b, &c, &d), ASE_InvalidParameter);
	CHECK("rate_null", v->getSampleRate(asio, NULL), ASE_InvalidParameter);
	CHECK("clocks_null", v->getClockSources(asio, NULL, &a), ASE_InvalidParameter);
	CHECK("channel_info_null", v->getChannelInfo(asio, NULL), ASE_InvalidParameter);
	CHECK("position_null", v->getSamplePosition(asio, NULL, &stamp), ASE_InvalidParameter);
	CHECK("create_null_infos", v->createBuffers(asio, NULL, 1, 256, &callbacks), ASE_InvalidParameter);
	CHECK("create_null_callbacks", v->createBuffers(asio, infos, 1, 256, NULL), ASE_InvalidParameter);

	CHECK("channels", v->getChannels(asio, &n_in, &n_out), ASE_OK);
	ci.channel = -1;
	ci.isInput = TRUE;
	CHECK("channel_info_negative", v->getChannelInfo(asio, &ci), ASE_InvalidParameter);
	ci.channel = n_in;
	CHECK("channel_info_past_end", v->getChannelInfo(asio, &ci), ASE_InvalidParameter);
	for (i = 0; i < n_in + n_out; i++) {
		ASIOChannelInfo info = { .channel = i < n_in ? i : i - n_in, .isInput = i < n_in };
		CHECK("channel_info", v->getChannelInfo(asio, &info), ASE_OK);
		CHECK("channel_type", info.type, ASIOSTFloat32LSB);
		CHECK("channel_name", info.name[0] != 0, 1);
	}
	CHECK("buffer_size", v->getBufferSize(asio, &a, &b, &c, &d), ASE_OK);
	CHECK("buffer_size_order", a <= c && c <= b, 1);
	buffer_size = c;
	CHECK("rate", v->getSampleRate(asio, &sample_rate), ASE_OK);
	CHECK("rate_positive", sample_rate > 0, 1);
	CHECK("can_rate_current", v->canSampleRate(asio, sample_rate), ASE_OK);
	CHECK("can_rate_odd", v->canSampleRate(asio, 12345.0), ASE_NoClock);
	CHECK("set_rate_current", v->setSampleRate(asio, sample_rate), ASE_OK);
	CHECK("set_rate_odd", v->setSampleRate(asio, 12345.0), ASE_NoClock);
	a = 4;
	CHECK("clocks", v->getClockSources(asio, clocks, &a), ASE_OK);
	CHECK("clocks_count", a >= 1 && clocks[0].isCurrentSource, 1);
	CHECK("set_clock_0", v->setClockSource(asio, 0), ASE_OK);
	CHECK("set_clock_99", v->setClockSource(asio, 99), ASE_InvalidParameter);

	CHECK("start_without_buffers", v->start(asio), ASE_InvalidMode);
	CHECK("dispose_without_buffers", v->disposeBuffers(asio), ASE_InvalidMode);
	CHECK("position_before_start", v->getSamplePosition(asio, &pos, &stamp), ASE_SPNotAdvancing);

	for (i = 0; i < n_in + n_out; i++) {
		infos[i].isInput = i < n_in;
		infos[i].channelNum = i < n_in ? i : i - n_in;
	}
	CHECK("create_size_0", v->createBuffers(asio, infos, n_in + n_out, 0, &callbacks), ASE_InvalidMode);
	CHECK("create_size_below_min", v->createBuffers(asio, infos, n_in + n_out, a - 1, &callbacks), ASE_InvalidMode);
	CHECK("create_size_above_max", v->createBuffers(asio, infos, n_in + n_out, b + 1, &callbacks), ASE_InvalidMode);
	if (d == -1)
		CHECK("create_size_not_power_of_two", v->createBuffers(asio, infos, n_in + n_out, 3 * a, &callbacks), ASE_InvalidMode);
	CHECK("create_size_huge", v->createBuffers(asio, infos, n_in + n_out, 1000000, &callbacks), ASE_InvalidMode);
	CHECK("create_no_channels", v->createBuffers(asio, infos, 0, buffer_size, &callbacks), ASE_InvalidParameter);
	bad.isInput = TRUE;
	bad.channelNum = n_in;
	CHECK("create_bad_channel", v->createBuffers(asio, &bad, 1, buffer_size, &callbacks), ASE_InvalidParameter);
	two[0].isInput = two[1].isInput = FALSE;
	two[0].channelNum = two[1].channelNum = 0;
	CHECK("create_duplicate", v->createBuffers(asio, two, 2, buffer_size, &callbacks), ASE_InvalidParameter);
	CHECK("create_too_many", v->createBuffers(asio, infos, n_in + n_out + 1, buffer_size, &callbacks), ASE_InvalidParameter);
	CHECK("create", v->createBuffers(asio, infos, n_in + n_out, buffer_size, &callbacks), ASE_OK);
	for (i = 0; i < n_in + n_out; i++) {
		CHECK("buffer_pointers", infos[i].buffers[0] && infos[i].buffers[1] && infos[i].buffers[0] != infos[i].buffers[1], 1);
	}
	CHECK("create_again", v->createBuffers(asio, infos, n_in + n_out, buffer_size, &callbacks), ASE_InvalidMode);
	CHECK("latencies", v->getLatencies(asio, &a, &b), ASE_OK);
	CHECK("latencies_sane", a >= 0 && b >= buffer_size, 1);

	CHECK("start", v->start(asio), ASE_OK);
	CHECK("start_again", v->start(asio), ASE_OK);
	CHECK("callbacks_arrive", callbacks_after(1000) > 0, 1);
	CHECK("position", v->getSamplePosition(asio, &pos, &stamp), ASE_OK);
	check("output_ready", v->outputReady(asio), ASE_OK, ASE_NotPresent);
	CHECK("future_time_info", v->future(asio, kAsioCanTimeInfo, NULL), ASE_SUCCESS);
	CHECK("future_overload", v->future(asio, kAsioCanReportOverload, NULL), ASE_SUCCESS);
	check("future_unknown", v->future(asio, 0x7777, NULL), ASE_NotPresent, ASE_InvalidParameter);
	CHECK("dispose_while_running", v->disposeBuffers(asio), ASE_OK);
	CHECK("no_callback_after_dispose", callbacks_after(200), 0);
	CHECK("stop", v->stop(asio), ASE_OK);
	CHECK("stop_again", v->stop(asio), ASE_OK);

	CHECK("create_after_dispose", v->createBuffers(asio, infos, n_in + n_out, buffer_size, &callbacks), ASE_OK);
	CHECK("restart", v->start(asio), ASE_OK);
	CHECK("callbacks_after_restart", callbacks_after(500) > 0, 1);
	CHECK("stop_running", v->stop(asio), ASE_OK);
	CHECK("no_callback_after_stop", callbacks_after(200), 0);
	CHECK("dispose", v->disposeBuffers(asio), ASE_OK);

	CHECK("create_for_stop_in_callback", v->createBuffers(asio, infos, n_in + n_out, buffer_size, &callbacks), ASE_OK);
	rec.stop_in_callback_result = -1;
	rec.stop_in_callback = TRUE;
	CHECK("start_for_stop_in_callback", v->start(asio), ASE_OK);
	Sleep(500);
	CHECK("stop_in_callback", rec.stop_in_callback_result, ASE_OK);
	CHECK("stop_in_callback_returns_at_once", rec.stop_in_callback_ms < 50, 1);
	CHECK("no_callback_after_stop_in_callback", callbacks_after(200), 0);
	CHECK("start_after_stop_in_callback", v->start(asio), ASE_OK);
	CHECK("callbacks_after_stop_in_callback", callbacks_after(300) > 0, 1);
	CHECK("dispose_after_stop_in_callback", v->disposeBuffers(asio), ASE_OK);

	t0 = GetTickCount();
	check("control_panel", v->controlPanel(asio), ASE_OK, ASE_NotPresent);
	CHECK("control_panel_returns", GetTickCount() - t0 < 2000, 1);

	CHECK("release", v->Release(asio), 0);
	asio = NULL;
	printf("conformance_failures=%d\n", failures);
	return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *driver = "PipeWire ASIO Bridge", *cmd = NULL;
	double seconds = 5, rate = 0;
	const char *buffers = "32,64,128,256,512,1024", *rates = "44100,48000,96000";
	BOOL seconds_given = FALSE;
	int32_t buffer = 0;
	int threads = 4;
	BOOL timeinfo = TRUE;
	enum on_reset on_reset = RESET_REOPEN;
	int i, res;

	rec.tone_hz = 440;
	rec.late_wake_pct = 10;
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--driver") && i + 1 < argc) driver = argv[++i];
		else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]), seconds_given = TRUE;
		else if (!strcmp(argv[i], "--rate") && i + 1 < argc) rate = atof(argv[++i]);
		else if (!strcmp(argv[i], "--buffers") && i + 1 < argc) buffers = argv[++i];
		else if (!strcmp(argv[i], "--rates") && i + 1 < argc) rates = argv[++i];
		else if (!strcmp(argv[i], "--buffer") && i + 1 < argc) buffer = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--tone") && i + 1 < argc) rec.tone_hz = atof(argv[++i]);
		else if (!strcmp(argv[i], "--loopback")) rec.loopback = TRUE;
		else if (!strcmp(argv[i], "--burn") && i + 1 < argc) rec.burn_pct = atof(argv[++i]);
		else if (!strcmp(argv[i], "--late-wake") && i + 1 < argc) rec.late_wake_pct = atof(argv[++i]);
		else if (!strcmp(argv[i], "--no-timeinfo")) timeinfo = FALSE;
		else if (!strcmp(argv[i], "--no-size-change")) rec.size_change_refused = TRUE;
		else if (!strcmp(argv[i], "--on-reset") && i + 1 < argc) {
			const char *how = argv[++i];
			if (!strcmp(how, "reopen")) on_reset = RESET_REOPEN;
			else if (!strcmp(how, "fatal")) on_reset = RESET_FATAL;
			else if (!strcmp(how, "ignore")) on_reset = RESET_IGNORE;
			else { fprintf(stderr, "asio-host: --on-reset takes reopen, fatal or ignore\n"); return 2; }
		}
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { fputs(usage, stdout); return 0; }
		else if (!cmd && argv[i][0] != '-') cmd = argv[i];
		else { fprintf(stderr, "asio-host: unknown argument '%s'\n\n%s", argv[i], usage); return 2; }
	}
	if (!cmd || (strcmp(cmd, "info") && strcmp(cmd, "run") && strcmp(cmd, "sweep") && strcmp(cmd, "conformance")
			&& strcmp(cmd, "hammer"))) {
		fputs(usage, stderr);
		return 2;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	CoInitialize(NULL);
	if (!(asio = load_driver(driver)))
		return 2;
	if (!strcmp(cmd, "info"))
		res = cmd_info();
	else if (!strcmp(cmd, "run"))
		res = cmd_run(driver, seconds, buffer, rate, timeinfo, on_reset);
	else if (!strcmp(cmd, "sweep"))
		res = cmd_sweep(buffers, rates, seconds_given ? seconds : 1);
	else if (!strcmp(cmd, "hammer"))
		res = cmd_hammer(driver, seconds, threads);
	else
		res = cmd_conformance();
	if (asio)
		asio->lpVtbl->Release(asio);
	CoUninitialize();
	return res;
}
