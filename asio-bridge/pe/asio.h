/* SPDX-License-Identifier: MIT */
/*
 * The IASIO interface and its types, declared from the ASIO ABI as hosts
 * use it: a COM object whose vtable follows IUnknown with the methods below.
 * `long` is 32-bit. On x64 every call has the one Microsoft convention; on
 * i386 the IUnknown methods are stdcall and IASIO's own are thiscall (hosts
 * call them as C++ virtual methods), while the host's callbacks stay cdecl.
 */
#ifndef ASIO_BRIDGE_ASIO_H
#define ASIO_BRIDGE_ASIO_H

#include <stdint.h>
#include <stddef.h>

/* The ABI's 32-bit `long`. C++ hosts built on the SDK's names (see
 * ../sdk/asio.h) spell it `long`, and C++ does not convert `long *` to
 * `int32_t *` or between function pointer types, so they set this to
 * `long` (32-bit on Windows x64) before including this file. */
#ifndef ASIO_LONG
#define ASIO_LONG int32_t
#endif

#ifdef __cplusplus
#define ASIO_STATIC_ASSERT(c, m) static_assert(c, m)
#else
#define ASIO_STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif

ASIO_STATIC_ASSERT(sizeof(ASIO_LONG) == 4, "ASIO's long is 32-bit");

#ifdef __i386__
#define ASIO_UNKNOWN_CALL __attribute__((stdcall))
#define ASIO_METHOD_CALL __attribute__((thiscall))
#else
#define ASIO_UNKNOWN_CALL
#define ASIO_METHOD_CALL
#endif

typedef ASIO_LONG ASIOBool;
typedef ASIO_LONG ASIOError;
typedef ASIO_LONG ASIOSampleType;
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

enum { ASIOFalse = 0, ASIOTrue = 1 };

enum {
	ASIOSTInt16MSB = 0,
	ASIOSTInt24MSB = 1,
	ASIOSTInt32MSB = 2,
	ASIOSTFloat32MSB = 3,
	ASIOSTFloat64MSB = 4,
	ASIOSTInt32MSB16 = 8,
	ASIOSTInt32MSB18 = 9,
	ASIOSTInt32MSB20 = 10,
	ASIOSTInt32MSB24 = 11,
	ASIOSTInt16LSB = 16,
	ASIOSTInt24LSB = 17,
	ASIOSTInt32LSB = 18,
	ASIOSTFloat32LSB = 19,
	ASIOSTFloat64LSB = 20,
	ASIOSTInt32LSB16 = 24,
	ASIOSTInt32LSB18 = 25,
	ASIOSTInt32LSB20 = 26,
	ASIOSTInt32LSB24 = 27,
};

enum {
	kAsioSelectorSupported = 1,
	kAsioEngineVersion = 2,
	kAsioResetRequest = 3,
	kAsioBufferSizeChange = 4,
	kAsioResyncRequest = 5,
	kAsioLatenciesChanged = 6,
	kAsioSupportsTimeInfo = 7,
	kAsioSupportsTimeCode = 8,
	kAsioMMCCommand = 9,
	kAsioSupportsInputMonitor = 10,
	kAsioSupportsInputGain = 11,
	kAsioSupportsInputMeter = 12,
	kAsioSupportsOutputGain = 13,
	kAsioSupportsOutputMeter = 14,
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
	ASIO_LONG channelNum;
	void *buffers[2];
} ASIOBufferInfo;

typedef struct {
	ASIO_LONG channel;
	ASIOBool isInput;
	ASIOBool isActive;
	ASIO_LONG channelGroup;
	ASIOSampleType type;
	char name[32];
} ASIOChannelInfo;

typedef struct {
	ASIO_LONG index;
	ASIO_LONG associatedChannel;
	ASIO_LONG associatedGroup;
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
	void (*bufferSwitch)(ASIO_LONG index, ASIOBool directProcess);
	void (*sampleRateDidChange)(ASIOSampleRate rate);
	ASIO_LONG (*asioMessage)(ASIO_LONG selector, ASIO_LONG value, void *message, double *opt);
	ASIOTime *(*bufferSwitchTimeInfo)(ASIOTime *params, ASIO_LONG index, ASIOBool directProcess);
} ASIOCallbacks;

ASIO_STATIC_ASSERT(sizeof(ASIOBufferInfo) == 8 + 2 * sizeof(void *), "ASIOBufferInfo");
ASIO_STATIC_ASSERT(sizeof(ASIOChannelInfo) == 52, "ASIOChannelInfo");
ASIO_STATIC_ASSERT(sizeof(ASIOClockSource) == 48, "ASIOClockSource");
ASIO_STATIC_ASSERT(sizeof(AsioTimeInfo) == 48, "AsioTimeInfo");
ASIO_STATIC_ASSERT(offsetof(AsioTimeInfo, samplePosition) == 16, "samplePosition");
ASIO_STATIC_ASSERT(offsetof(AsioTimeInfo, flags) == 32, "flags");
ASIO_STATIC_ASSERT(offsetof(ASIOTime, timeInfo) == 16, "timeInfo");
ASIO_STATIC_ASSERT(offsetof(ASIOTime, timeCode) == 64, "timeCode");

typedef struct IASIO IASIO;
typedef struct IASIOVtbl {
	long (ASIO_UNKNOWN_CALL *QueryInterface)(IASIO *, const void *riid, void **out);
	unsigned long (ASIO_UNKNOWN_CALL *AddRef)(IASIO *);
	unsigned long (ASIO_UNKNOWN_CALL *Release)(IASIO *);
	ASIOBool (ASIO_METHOD_CALL *init)(IASIO *, void *sysHandle);
	void (ASIO_METHOD_CALL *getDriverName)(IASIO *, char *name);
	ASIO_LONG (ASIO_METHOD_CALL *getDriverVersion)(IASIO *);
	void (ASIO_METHOD_CALL *getErrorMessage)(IASIO *, char *string);
	ASIOError (ASIO_METHOD_CALL *start)(IASIO *);
	ASIOError (ASIO_METHOD_CALL *stop)(IASIO *);
	ASIOError (ASIO_METHOD_CALL *getChannels)(IASIO *, ASIO_LONG *inputs, ASIO_LONG *outputs);
	ASIOError (ASIO_METHOD_CALL *getLatencies)(IASIO *, ASIO_LONG *input, ASIO_LONG *output);
	ASIOError (ASIO_METHOD_CALL *getBufferSize)(IASIO *, ASIO_LONG *min, ASIO_LONG *max, ASIO_LONG *preferred, ASIO_LONG *granularity);
	ASIOError (ASIO_METHOD_CALL *canSampleRate)(IASIO *, ASIOSampleRate rate);
	ASIOError (ASIO_METHOD_CALL *getSampleRate)(IASIO *, ASIOSampleRate *rate);
	ASIOError (ASIO_METHOD_CALL *setSampleRate)(IASIO *, ASIOSampleRate rate);
	ASIOError (ASIO_METHOD_CALL *getClockSources)(IASIO *, ASIOClockSource *clocks, ASIO_LONG *count);
	ASIOError (ASIO_METHOD_CALL *setClockSource)(IASIO *, ASIO_LONG reference);
	ASIOError (ASIO_METHOD_CALL *getSamplePosition)(IASIO *, ASIOSamples *position, ASIOTimeStamp *stamp);
	ASIOError (ASIO_METHOD_CALL *getChannelInfo)(IASIO *, ASIOChannelInfo *info);
	ASIOError (ASIO_METHOD_CALL *createBuffers)(IASIO *, ASIOBufferInfo *infos, ASIO_LONG count, ASIO_LONG size, ASIOCallbacks *callbacks);
	ASIOError (ASIO_METHOD_CALL *disposeBuffers)(IASIO *);
	ASIOError (ASIO_METHOD_CALL *controlPanel)(IASIO *);
	ASIOError (ASIO_METHOD_CALL *future)(IASIO *, ASIO_LONG selector, void *opt);
	ASIOError (ASIO_METHOD_CALL *outputReady)(IASIO *);
} IASIOVtbl;

struct IASIO {
	const IASIOVtbl *lpVtbl;
};

#endif /* ASIO_BRIDGE_ASIO_H */
