/* SPDX-License-Identifier: MIT */
/*
 * panel-probe: drives the driver's control panel like a user, for the
 * tests. A Windows console program run under Wine with an X display.
 *
 * Loads the driver the way a DAW does (HKLM\Software\ASIO, CoCreateInstance),
 * runs audio at 256 samples, opens the control panel and prints its
 * controls as key=value lines (panel.*). Then it prints screenshot=panel
 * and waits for a line on stdin (the test takes its screenshot meanwhile),
 * chooses a preferred buffer size of 512 and the node "studio-bridge",
 * presses OK and prints what the registry holds (saved.*). It opens the
 * panel again (reopened.*: the saved choices), changes them and presses
 * Cancel (cancel.*: the registry unchanged). Finally a new driver instance
 * inits, which now looks for "studio-bridge" and fails (next.*), and its
 * panel shows the bridge unreachable (unreachable.*; screenshot=panel-unreachable).
 *
 * Exit status: 0 done (the test checks the values), 1 a step failed,
 * 2 no driver or init failed.
 */
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#include <objbase.h>
#include <stdio.h>
#include <string.h>

#include "../pe/panel.h"

#define DRIVER "PipeWire ASIO Bridge"
#define BUFFER_SIZE 256
#define NEW_NODE "studio-bridge"

static volatile LONG callbacks;

static void cb_bufferSwitch(int32_t index, ASIOBool direct)
{
	(void)index;
	(void)direct;
	InterlockedIncrement(&callbacks);
}

static void cb_sampleRateDidChange(ASIOSampleRate rate)
{
	(void)rate;
}

static int32_t cb_asioMessage(int32_t selector, int32_t value, void *message, double *opt)
{
	(void)selector;
	(void)value;
	(void)message;
	(void)opt;
	return 0; /* supports nothing: the driver uses bufferSwitch */
}

static ASIOTime *cb_bufferSwitchTimeInfo(ASIOTime *t, int32_t index, ASIOBool direct)
{
	cb_bufferSwitch(index, direct);
	return t;
}

static ASIOCallbacks host_callbacks = {
	cb_bufferSwitch, cb_sampleRateDidChange, cb_asioMessage, cb_bufferSwitchTimeInfo,
};

static IASIO *load_driver(void)
{
	char clsid_str[64];
	WCHAR wide[64];
	DWORD size = sizeof(clsid_str);
	CLSID clsid;
	IASIO *obj = NULL;

	if (RegGetValueA(HKEY_LOCAL_MACHINE, "Software\\ASIO\\" DRIVER, "CLSID", RRF_RT_REG_SZ, NULL, clsid_str, &size)) {
		fprintf(stderr, "no ASIO driver named '%s' is registered\n", DRIVER);
		return NULL;
	}
	MultiByteToWideChar(CP_ACP, 0, clsid_str, -1, wide, 64);
	if (CLSIDFromString(wide, &clsid) || CoCreateInstance(&clsid, NULL, CLSCTX_INPROC_SERVER, &clsid, (void **)&obj)) {
		fprintf(stderr, "'%s' is registered as %s but cannot be created\n", DRIVER, clsid_str);
		return NULL;
	}
	return obj;
}

/* The panel's dialog, waiting up to five seconds for it. */
static HWND find_panel(void)
{
	HWND hwnd = NULL;
	int i;
	for (i = 0; i < 100 && !(hwnd = FindWindowA("#32770", PANEL_TITLE)); i++)
		Sleep(50);
	return hwnd;
}

static BOOL wait_closed(HWND hwnd)
{
	int i;
	for (i = 0; i < 100 && IsWindow(hwnd); i++)
		Sleep(50);
	return !IsWindow(hwnd);
}

static void print_control(HWND dialog, const char *prefix, const char *key, int id)
{
	char text[256] = "";
	GetDlgItemTextA(dialog, id, text, sizeof(text));
	printf("%s.%s=%s\n", prefix, key, text);
}

/* Prints every control the panel has, as the user sees it. */
static void dump(HWND dialog, const char *prefix)
{
	HWND combo = GetDlgItem(dialog, PANEL_ID_PREFERRED_SIZE);
	char item[32];
	LRESULT i, n;

	print_control(dialog, prefix, "node", PANEL_ID_NODE);
	print_control(dialog, prefix, "reachable", PANEL_ID_REACHABLE);
	print_control(dialog, prefix, "buffer", PANEL_ID_BUFFER);
	print_control(dialog, prefix, "rate", PANEL_ID_RATE);
	print_control(dialog, prefix, "input_latency", PANEL_ID_INPUT_LATENCY);
	print_control(dialog, prefix, "output_latency", PANEL_ID_OUTPUT_LATENCY);
	print_control(dialog, prefix, "late_cycles", PANEL_ID_LATE_CYCLES);
	print_control(dialog, prefix, "realtime", PANEL_ID_REALTIME);
	print_control(dialog, prefix, "settings_key", PANEL_ID_SETTINGS_KEY);
	print_control(dialog, prefix, "preferred", PANEL_ID_PREFERRED_SIZE);
	print_control(dialog, prefix, "node_setting", PANEL_ID_NODE_SETTING);
	printf("%s.autoconnect=%d\n", prefix, IsDlgButtonChecked(dialog, PANEL_ID_AUTOCONNECT) == BST_CHECKED);
	printf("%s.sizes=", prefix);
	n = SendMessageA(combo, CB_GETCOUNT, 0, 0);
	for (i = 0; i < n; i++) {
		item[0] = 0;
		if (SendMessageA(combo, CB_GETLBTEXTLEN, i, 0) < (LRESULT)sizeof(item))
			SendMessageA(combo, CB_GETLBTEXT, i, (LPARAM)item);
		printf("%s%s", i ? "," : "", item);
	}
	printf("\n");
}

static void press(HWND dialog, int id)
{
	SendMessageA(GetDlgItem(dialog, id), BM_CLICK, 0, 0);
}

/* Chooses `size` in the combo box, `node` in the edit box and autoconnect
 * on or off, as a user would. */
static BOOL choose(HWND dialog, const char *size, const char *node, BOOL autoconnect)
{
	HWND combo = GetDlgItem(dialog, PANEL_ID_PREFERRED_SIZE);
	LRESULT index = SendMessageA(combo, CB_FINDSTRINGEXACT, (WPARAM)-1, (LPARAM)size);
	if (index == CB_ERR)
		return FALSE;
	SendMessageA(combo, CB_SETCURSEL, index, 0);
	if ((IsDlgButtonChecked(dialog, PANEL_ID_AUTOCONNECT) == BST_CHECKED) != autoconnect)
		press(dialog, PANEL_ID_AUTOCONNECT);
	return SendDlgItemMessageA(dialog, PANEL_ID_NODE_SETTING, WM_SETTEXT, 0, (LPARAM)node) == TRUE;
}

/* Prints the settings the registry holds under the key the panel showed. */
static void print_registry(HWND dialog, const char *prefix, const char *shown_key)
{
	const char *key = shown_key;
	char node[128] = "";
	DWORD size = 0, len = sizeof(size), node_len = sizeof(node), autoconnect = 0, autoconnect_len = sizeof(autoconnect);
	LONG res_size, res_node, res_autoconnect;

	(void)dialog;
	if (!strncmp(key, "HKCU\\", 5))
		key += 5;
	res_size = RegGetValueA(HKEY_CURRENT_USER, key, PANEL_VALUE_PREFERRED_SIZE, RRF_RT_REG_DWORD, NULL, &size, &len);
	res_node = RegGetValueA(HKEY_CURRENT_USER, key, PANEL_VALUE_NODE, RRF_RT_REG_SZ, NULL, node, &node_len);
	res_autoconnect = RegGetValueA(HKEY_CURRENT_USER, key, PANEL_VALUE_AUTOCONNECT, RRF_RT_REG_DWORD, NULL,
			&autoconnect, &autoconnect_len);
	if (res_size)
		printf("%s.preferred=none\n", prefix);
	else
		printf("%s.preferred=%lu\n", prefix, (unsigned long)size);
	printf("%s.node=%s\n", prefix, res_node ? "none" : node);
	if (res_autoconnect)
		printf("%s.autoconnect=none\n", prefix);
	else
		printf("%s.autoconnect=%lu\n", prefix, (unsigned long)autoconnect);
}

/* Opens the panel of `asio`; NULL (and says so) if no dialog appears. */
static HWND open_panel(IASIO *asio, const char *prefix)
{
	ASIOError res = asio->lpVtbl->controlPanel(asio);
	HWND dialog;
	printf("%s.result=%ld\n", prefix, (long)res);
	dialog = find_panel();
	printf("%s.found=%d\n", prefix, dialog != NULL);
	if (dialog)
		Sleep(300); /* painted */
	return dialog;
}

/* Asks the test for a screenshot named `name` and waits until it is taken
 * (a line on stdin, or its end). */
static void screenshot(const char *name)
{
	char line[64];
	printf("screenshot=%s\n", name);
	if (!fgets(line, sizeof(line), stdin))
		line[0] = 0;
}

static BOOL run_audio(IASIO *asio, ASIOBufferInfo *infos, int32_t *count)
{
	int32_t in = 0, out = 0, i;
	DWORD start;

	if (asio->lpVtbl->getChannels(asio, &in, &out))
		return FALSE;
	*count = 0;
	for (i = 0; i < in + out && i < 64; i++) {
		infos[i].isInput = i < in;
		infos[i].channelNum = i < in ? i : i - in;
		(*count)++;
	}
	if (asio->lpVtbl->createBuffers(asio, infos, *count, BUFFER_SIZE, &host_callbacks)
	    || asio->lpVtbl->start(asio))
		return FALSE;
	/* Until the callback thread has asked for real-time scheduling and
	 * buffers flow. */
	for (start = GetTickCount(); callbacks < 20 && GetTickCount() - start < 5000;)
		Sleep(10);
	printf("callbacks=%ld\n", (long)callbacks);
	return callbacks >= 20;
}

int main(void)
{
	ASIOBufferInfo infos[64];
	char key[256] = "", error[124] = "";
	int32_t count = 0;
	IASIO *asio, *next;
	HWND dialog;

	setvbuf(stdout, NULL, _IONBF, 0);
	CoInitialize(NULL);
	if (!(asio = load_driver()))
		return 2;
	if (!asio->lpVtbl->init(asio, GetDesktopWindow())) {
		asio->lpVtbl->getErrorMessage(asio, error);
		printf("init=0\nerror=%s\n", error);
		return 2;
	}
	printf("init=1\n");
	if (!run_audio(asio, infos, &count))
		return 1;

	/* What the panel shows while audio runs. */
	if (!(dialog = open_panel(asio, "panel")))
		return 1;
	dump(dialog, "panel");
	GetDlgItemTextA(dialog, PANEL_ID_SETTINGS_KEY, key, sizeof(key));
	print_registry(dialog, "before", key);
	screenshot("panel");

	/* OK saves. */
	printf("choose=%d\n", choose(dialog, "512", NEW_NODE, FALSE));
	press(dialog, IDOK);
	printf("ok.closed=%d\n", wait_closed(dialog));
	print_registry(dialog, "saved", key);

	/* Cancel does not. */
	if (!(dialog = open_panel(asio, "reopened")))
		return 1;
	print_control(dialog, "reopened", "preferred", PANEL_ID_PREFERRED_SIZE);
	print_control(dialog, "reopened", "node_setting", PANEL_ID_NODE_SETTING);
	printf("reopened.autoconnect=%d\n", IsDlgButtonChecked(dialog, PANEL_ID_AUTOCONNECT) == BST_CHECKED);
	choose(dialog, "1024", "another-bridge", TRUE);
	press(dialog, IDCANCEL);
	printf("cancel.closed=%d\n", wait_closed(dialog));
	print_registry(dialog, "cancel", key);

	asio->lpVtbl->stop(asio);
	asio->lpVtbl->disposeBuffers(asio);
	asio->lpVtbl->Release(asio);

	/* The next start uses the saved node. */
	if (!(next = load_driver()))
		return 2;
	printf("next.init=%d\n", next->lpVtbl->init(next, GetDesktopWindow()) ? 1 : 0);
	next->lpVtbl->getErrorMessage(next, error);
	printf("next.error=%s\n", error);
	if (!(dialog = open_panel(next, "unreachable")))
		return 1;
	dump(dialog, "unreachable");
	screenshot("panel-unreachable");
	press(dialog, IDCANCEL);
	printf("unreachable.closed=%d\n", wait_closed(dialog));
	next->lpVtbl->Release(next);
	CoUninitialize();
	printf("done=1\n");
	return 0;
}
