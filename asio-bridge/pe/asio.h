/* SPDX-License-Identifier: MIT */
/*
 * The IASIO interface and its types (x64), declared from the ASIO ABI as
 * hosts use it: a COM object whose vtable follows IUnknown with the methods
 * below, all in the Microsoft x64 calling convention. `long` is 32-bit.
 */
#ifndef ASIO_BRIDGE_ASIO_H
#define ASIO_BRIDGE_ASIO_H

#include <stdint.h>
#include <stddef.h>

typedef int32_t ASIOBool;
typedef int32_t ASIOError;
typedef int32_t ASIOSampleType;
typedef double ASIOSampleRate;

enum {
	ASE_OK = 0,
	ASE_SUCCESS = 0x3f4847a0,
	ASE_NotPresent = -1000,
	ASE_HWMalfunction = -999,
	ASE_InvalidParameter = -998,
	ASE_InvalidMode = -997,
	ASE_SPNotAdvancing = -996,
	ASE_NoClock = -995,
	ASE_NoMemory = -994,
};

enum { ASIOSTFloat32LSB = 19 };

enum {
	kAsioSelectorSupported = 1,
	kAsioEngineVersion = 2,
	kAsioResetRequest = 3,
	kAsioBufferSizeChange = 4,
	kAsioResyncRequest = 5,
	kAsioLatenciesChanged = 6,
	kAsioSupportsTimeInfo = 7,
	kAsioSupportsTimeCode = 8,
	kAsioOverload = 15,
};

enum {
	kAsioCanTimeInfo = 10,
	kAsioSetIoFormat = 0x23111961,
	kAsioGetIoFormat = 0x23111983,
	kAsioCanDoIoFormat = 0x23112004,
	kAsioCanReportOverload = 0x24042012,
};

enum { kASIOFormatPCM = 0 };

/* This driver's own future() selector: `opt` points to an
 * ASIOBridgeSchedule, filled with the Linux scheduling the callback thread
 * runs with (called from inside the callback: the calling thread's, as the
 * kernel reports it now). ASE_NotPresent while no callback thread runs. */
enum { kAsioBridgeGetSchedule = 0x50574153 };
typedef struct ASIOBridgeSchedule {
	int32_t policy;    /* SCHED_OTHER 0, SCHED_FIFO 1, SCHED_RR 2 */
	int32_t priority;
	int32_t error;     /* 0, or the errno raising it to real time gave */
} ASIOBridgeSchedule;

/* This driver's own future() selector, for benchmarks: `opt` points to an
 * ASIOBridgeCycleTimes, filled with where the time of the buffer being
 * processed went, CLOCK_MONOTONIC ns (the node's and Linux's clock, which
 * Windows programs cannot read: QueryPerformanceCounter is another).
 * Called again later in the same callback, only `now_nsec` changes. Only
 * from inside the callback; ASE_NotPresent elsewhere. */
enum { kAsioBridgeGetCycleTimes = 0x50574154 };
typedef struct ASIOBridgeCycleTimes {
	uint64_t graph_nsec;   /* the graph cycle's clock time (systemTime) */
	uint64_t publish_nsec; /* the node woke the driver for it */
	uint64_t wait_nsec;    /* the driver began waiting for it (after
	                        * publish_nsec: the host was still busy) */
	uint64_t wake_nsec;    /* the driver's wait returned with it */
	uint64_t now_nsec;     /* this call */
} ASIOBridgeCycleTimes;

enum {
	kSystemTimeValid = 1,
	kSamplePositionValid = 2,
	kSampleRateValid = 4,
	kSpeedValid = 8,
};

typedef struct { uint32_t hi, lo; } ASIOSamples;
typedef struct { uint32_t hi, lo; } ASIOTimeStamp;

typedef struct {
	ASIOBool isInput;
	int32_t channelNum;
	void *buffers[2];
} ASIOBufferInfo;

typedef struct {
	int32_t channel;
	ASIOBool isInput;
	ASIOBool isActive;
	int32_t channelGroup;
	ASIOSampleType type;
	char name[32];
} ASIOChannelInfo;

typedef struct {
	int32_t index;
	int32_t associatedChannel;
	int32_t associatedGroup;
	ASIOBool isCurrentSource;
	char name[32];
} ASIOClockSource;

typedef struct {
	double speed;
	ASIOTimeStamp systemTime;
	ASIOSamples samplePosition;
	ASIOSampleRate sampleRate;
	uint32_t flags;
	char reserved[12];
} AsioTimeInfo;

typedef struct {
	double speed;
	ASIOSamples timeCodeSamples;
	uint32_t flags;
	char future[64];
} ASIOTimeCode;

typedef struct {
	int32_t reserved[4];
	AsioTimeInfo timeInfo;
	ASIOTimeCode timeCode;
} ASIOTime;

typedef struct {
	int32_t FormatType;
	char future[512 - sizeof(int32_t)];
} ASIOIoFormat;

typedef struct {
	void (*bufferSwitch)(int32_t index, ASIOBool directProcess);
	void (*sampleRateDidChange)(ASIOSampleRate rate);
	int32_t (*asioMessage)(int32_t selector, int32_t value, void *message, double *opt);
	ASIOTime *(*bufferSwitchTimeInfo)(ASIOTime *params, int32_t index, ASIOBool directProcess);
} ASIOCallbacks;

_Static_assert(sizeof(ASIOBufferInfo) == 24, "ASIOBufferInfo");
_Static_assert(sizeof(ASIOChannelInfo) == 52, "ASIOChannelInfo");
_Static_assert(sizeof(ASIOClockSource) == 48, "ASIOClockSource");
_Static_assert(sizeof(AsioTimeInfo) == 48, "AsioTimeInfo");
_Static_assert(offsetof(AsioTimeInfo, samplePosition) == 16, "samplePosition");
_Static_assert(offsetof(AsioTimeInfo, flags) == 32, "flags");
_Static_assert(offsetof(ASIOTime, timeInfo) == 16, "timeInfo");
_Static_assert(offsetof(ASIOTime, timeCode) == 64, "timeCode");

typedef struct IASIO IASIO;
typedef struct IASIOVtbl {
	long (*QueryInterface)(IASIO *, const void *riid, void **out);
	unsigned long (*AddRef)(IASIO *);
	unsigned long (*Release)(IASIO *);
	ASIOBool (*init)(IASIO *, void *sysHandle);
	void (*getDriverName)(IASIO *, char *name);
	int32_t (*getDriverVersion)(IASIO *);
	void (*getErrorMessage)(IASIO *, char *string);
	ASIOError (*start)(IASIO *);
	ASIOError (*stop)(IASIO *);
	ASIOError (*getChannels)(IASIO *, int32_t *inputs, int32_t *outputs);
	ASIOError (*getLatencies)(IASIO *, int32_t *input, int32_t *output);
	ASIOError (*getBufferSize)(IASIO *, int32_t *min, int32_t *max, int32_t *preferred, int32_t *granularity);
	ASIOError (*canSampleRate)(IASIO *, ASIOSampleRate rate);
	ASIOError (*getSampleRate)(IASIO *, ASIOSampleRate *rate);
	ASIOError (*setSampleRate)(IASIO *, ASIOSampleRate rate);
	ASIOError (*getClockSources)(IASIO *, ASIOClockSource *clocks, int32_t *count);
	ASIOError (*setClockSource)(IASIO *, int32_t reference);
	ASIOError (*getSamplePosition)(IASIO *, ASIOSamples *position, ASIOTimeStamp *stamp);
	ASIOError (*getChannelInfo)(IASIO *, ASIOChannelInfo *info);
	ASIOError (*createBuffers)(IASIO *, ASIOBufferInfo *infos, int32_t count, int32_t size, ASIOCallbacks *callbacks);
	ASIOError (*disposeBuffers)(IASIO *);
	ASIOError (*controlPanel)(IASIO *);
	ASIOError (*future)(IASIO *, int32_t selector, void *opt);
	ASIOError (*outputReady)(IASIO *);
} IASIOVtbl;

struct IASIO {
	const IASIOVtbl *lpVtbl;
};

#endif /* ASIO_BRIDGE_ASIO_H */
