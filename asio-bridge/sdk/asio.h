/* SPDX-License-Identifier: MIT */
/*
 * The host side of ASIO under the names hosts written against Steinberg's
 * SDK use (RtAudio, PortAudio): the ASIO* functions, which act on the one
 * driver loaded through AsioDrivers (asiodrivers.h). Written from the ABI;
 * the types and constants are the project's own (../pe/asio.h), with `long`
 * where the SDK has it. C++ only, Windows only.
 */
#ifndef ASIO_BRIDGE_SDK_ASIO_H
#define ASIO_BRIDGE_SDK_ASIO_H

#include "asiosys.h"

#define ASIO_LONG long
#include "../pe/asio.h"

typedef struct ASIODriverInfo {
	long asioVersion;   /* in: the host's ASIO version (2) */
	long driverVersion; /* out */
	char name[32];      /* out */
	char errorMessage[124]; /* out: why init failed */
	void *sysRef;       /* in: the host's main window */
} ASIODriverInfo;

ASIOError ASIOInit(ASIODriverInfo *info);
ASIOError ASIOExit(void);
ASIOError ASIOStart(void);
ASIOError ASIOStop(void);
ASIOError ASIOGetChannels(long *inputs, long *outputs);
ASIOError ASIOGetLatencies(long *input, long *output);
ASIOError ASIOGetBufferSize(long *min, long *max, long *preferred, long *granularity);
ASIOError ASIOCanSampleRate(ASIOSampleRate rate);
ASIOError ASIOGetSampleRate(ASIOSampleRate *rate);
ASIOError ASIOSetSampleRate(ASIOSampleRate rate);
ASIOError ASIOGetClockSources(ASIOClockSource *clocks, long *count);
ASIOError ASIOSetClockSource(long reference);
ASIOError ASIOGetSamplePosition(ASIOSamples *position, ASIOTimeStamp *stamp);
ASIOError ASIOGetChannelInfo(ASIOChannelInfo *info);
ASIOError ASIOCreateBuffers(ASIOBufferInfo *infos, long count, long size, ASIOCallbacks *callbacks);
ASIOError ASIODisposeBuffers(void);
ASIOError ASIOControlPanel(void);
ASIOError ASIOFuture(long selector, void *opt);
ASIOError ASIOOutputReady(void);

#endif
