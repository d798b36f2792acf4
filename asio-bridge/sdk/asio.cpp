// SPDX-License-Identifier: MIT
//
// The SDK-style host functions over IASIO (see asio.h, asiodrivers.h):
// what a host built on the SDK's names needs to find, load and call a
// driver, and nothing more. The project's own test host does the same in C
// (../host/asio-host.c); this exists so third-party hosts build unchanged.

#include "asiodrivers.h"

#include <windows.h>
#include <objbase.h>
#include <string.h>

static const char ASIO_KEY[] = "Software\\ASIO";

// IASIO as the SDK's C++ hosts declare it: a COM interface of virtual
// methods, called in the compiler's own member convention (thiscall on
// i386). Declared here apart from the driver's C vtable (../pe/asio.h), so
// a calling convention the driver gets wrong fails these hosts.
struct AsioDriver : public IUnknown {
	virtual ASIOBool init(void *sysHandle) = 0;
	virtual void getDriverName(char *name) = 0;
	virtual long getDriverVersion() = 0;
	virtual void getErrorMessage(char *string) = 0;
	virtual ASIOError start() = 0;
	virtual ASIOError stop() = 0;
	virtual ASIOError getChannels(long *inputs, long *outputs) = 0;
	virtual ASIOError getLatencies(long *input, long *output) = 0;
	virtual ASIOError getBufferSize(long *min, long *max, long *preferred, long *granularity) = 0;
	virtual ASIOError canSampleRate(ASIOSampleRate rate) = 0;
	virtual ASIOError getSampleRate(ASIOSampleRate *rate) = 0;
	virtual ASIOError setSampleRate(ASIOSampleRate rate) = 0;
	virtual ASIOError getClockSources(ASIOClockSource *clocks, long *count) = 0;
	virtual ASIOError setClockSource(long reference) = 0;
	virtual ASIOError getSamplePosition(ASIOSamples *position, ASIOTimeStamp *stamp) = 0;
	virtual ASIOError getChannelInfo(ASIOChannelInfo *info) = 0;
	virtual ASIOError createBuffers(ASIOBufferInfo *infos, long count, long size, ASIOCallbacks *callbacks) = 0;
	virtual ASIOError disposeBuffers() = 0;
	virtual ASIOError controlPanel() = 0;
	virtual ASIOError future(long selector, void *opt) = 0;
	virtual ASIOError outputReady() = 0;
};

// The loaded driver, which every ASIO* function acts on.
static AsioDriver *driver;
static char driver_name[32];

AsioDrivers *asioDrivers;

bool loadAsioDriver(char *name)
{
	if (!asioDrivers)
		asioDrivers = new AsioDrivers();
	return asioDrivers->loadDriver(name);
}

AsioDrivers::AsioDrivers() {}

// Nothing to release: the host removes the driver while COM is still
// initialized; at exit, releasing it after CoUninitialize could call into
// an unloaded DLL.
AsioDrivers::~AsioDrivers() {}

// The name of the `index`th key under HKLM\Software\ASIO, cut to `size`.
static bool registered_name(long index, char *name, DWORD size)
{
	HKEY key;
	if (RegOpenKeyExA(HKEY_LOCAL_MACHINE, ASIO_KEY, 0, KEY_READ, &key))
		return false;
	char full[256];
	bool found = !RegEnumKeyA(key, (DWORD)index, full, sizeof(full));
	RegCloseKey(key);
	if (found)
		lstrcpynA(name, full, (int)size);
	return found;
}

long AsioDrivers::asioGetNumDev()
{
	char name[32];
	long count = 0;
	while (registered_name(count, name, sizeof(name)))
		count++;
	return count;
}

ASIOError AsioDrivers::asioGetDriverName(int index, char *name, int size)
{
	if (!name || size <= 0 || !registered_name(index, name, (DWORD)size))
		return ASE_NotPresent;
	return ASE_OK;
}

long AsioDrivers::getDriverNames(char **names, long max)
{
	long count = 0;
	while (count < max && registered_name(count, names[count], 32))
		count++;
	return count;
}

bool AsioDrivers::getCurrentDriverName(char *name)
{
	if (!driver)
		return false;
	lstrcpynA(name, driver_name, sizeof(driver_name));
	return true;
}

long AsioDrivers::getCurrentDriverIndex()
{
	char name[32];
	for (long i = 0; driver && registered_name(i, name, sizeof(name)); i++)
		if (!strcmp(name, driver_name))
			return i;
	return -1;
}

void AsioDrivers::removeCurrentDriver()
{
	if (driver)
		driver->Release();
	driver = nullptr;
	driver_name[0] = 0;
}

// As a DAW does: the entry's CLSID, created in-process with the CLSID as
// the interface id.
bool AsioDrivers::loadDriver(char *name)
{
	removeCurrentDriver();
	char path[sizeof(ASIO_KEY) + 256], clsid_text[64];
	DWORD type, size = sizeof(clsid_text);
	HKEY key;
	if (lstrlenA(name) >= 256)
		return false;
	wsprintfA(path, "%s\\%s", ASIO_KEY, name);
	if (RegOpenKeyExA(HKEY_LOCAL_MACHINE, path, 0, KEY_READ, &key))
		return false;
	LONG err = RegQueryValueExA(key, "CLSID", nullptr, &type, (BYTE *)clsid_text, &size);
	RegCloseKey(key);
	if (err || type != REG_SZ || size == 0)
		return false;
	clsid_text[sizeof(clsid_text) - 1] = 0;
	WCHAR wide[64];
	CLSID clsid;
	void *object = nullptr;
	if (!MultiByteToWideChar(CP_ACP, 0, clsid_text, -1, wide, 64) || CLSIDFromString(wide, &clsid)
	    || CoCreateInstance(clsid, nullptr, CLSCTX_INPROC_SERVER, clsid, &object) || !object)
		return false;
	driver = static_cast<AsioDriver *>(object);
	lstrcpynA(driver_name, name, sizeof(driver_name));
	return true;
}

ASIOError ASIOInit(ASIODriverInfo *info)
{
	if (!driver)
		return ASE_NotPresent;
	info->driverVersion = 0;
	info->name[0] = 0;
	info->errorMessage[0] = 0;
	if (!driver->init(info->sysRef)) {
		driver->getErrorMessage(info->errorMessage);
		return ASE_NotPresent;
	}
	info->driverVersion = driver->getDriverVersion();
	driver->getDriverName(info->name);
	return ASE_OK;
}

ASIOError ASIOExit(void)
{
	if (asioDrivers)
		asioDrivers->removeCurrentDriver();
	else if (driver)
		driver->Release();
	driver = nullptr;
	return ASE_OK;
}

// Every other function forwards to the loaded driver.
#define CALL(method, ...) (driver ? driver->method(__VA_ARGS__) : (ASIOError)ASE_NotPresent)

ASIOError ASIOStart(void) { return CALL(start); }
ASIOError ASIOStop(void) { return CALL(stop); }
ASIOError ASIOGetChannels(long *inputs, long *outputs) { return CALL(getChannels, inputs, outputs); }
ASIOError ASIOGetLatencies(long *input, long *output) { return CALL(getLatencies, input, output); }
ASIOError ASIOGetBufferSize(long *min, long *max, long *preferred, long *granularity)
{
	return CALL(getBufferSize, min, max, preferred, granularity);
}
ASIOError ASIOCanSampleRate(ASIOSampleRate rate) { return CALL(canSampleRate, rate); }
ASIOError ASIOGetSampleRate(ASIOSampleRate *rate) { return CALL(getSampleRate, rate); }
ASIOError ASIOSetSampleRate(ASIOSampleRate rate) { return CALL(setSampleRate, rate); }
ASIOError ASIOGetClockSources(ASIOClockSource *clocks, long *count) { return CALL(getClockSources, clocks, count); }
ASIOError ASIOSetClockSource(long reference) { return CALL(setClockSource, reference); }
ASIOError ASIOGetSamplePosition(ASIOSamples *position, ASIOTimeStamp *stamp) { return CALL(getSamplePosition, position, stamp); }
ASIOError ASIOGetChannelInfo(ASIOChannelInfo *info) { return CALL(getChannelInfo, info); }
ASIOError ASIOCreateBuffers(ASIOBufferInfo *infos, long count, long size, ASIOCallbacks *callbacks)
{
	return CALL(createBuffers, infos, count, size, callbacks);
}
ASIOError ASIODisposeBuffers(void) { return CALL(disposeBuffers); }
ASIOError ASIOControlPanel(void) { return CALL(controlPanel); }
ASIOError ASIOFuture(long selector, void *opt) { return CALL(future, selector, opt); }
ASIOError ASIOOutputReady(void) { return CALL(outputReady); }
