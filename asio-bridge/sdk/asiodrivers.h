/* SPDX-License-Identifier: MIT */
/*
 * The drivers a host may load, as the SDK's hosts find them: the keys under
 * HKLM\Software\ASIO, each with the CLSID of a COM object that implements
 * IASIO. One driver is loaded at a time; the ASIO* functions (asio.h) act
 * on it. The caller has initialized COM.
 */
#ifndef ASIO_BRIDGE_SDK_ASIODRIVERS_H
#define ASIO_BRIDGE_SDK_ASIODRIVERS_H

#include "asio.h"

class AsioDrivers {
public:
	AsioDrivers();
	~AsioDrivers();
	/* Unloads the current driver, then creates the one registered as
	 * `name`. */
	bool loadDriver(char *name);
	void removeCurrentDriver();
	/* Copies up to `max` registered names into `names` (each 32 bytes);
	 * returns how many it copied. */
	long getDriverNames(char **names, long max);
	bool getCurrentDriverName(char *name);
	long getCurrentDriverIndex();
	long asioGetNumDev();
	ASIOError asioGetDriverName(int index, char *name, int size);
};

/* The SDK's global instance and loader, for hosts that use them. */
extern AsioDrivers *asioDrivers;
bool loadAsioDriver(char *name);

#endif
