/* SPDX-License-Identifier: MIT */
/*
 * The driver's control panel: a dialog built in memory (no resource file,
 * no toolkit), shown on a thread of its own. See panel.h.
 */
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "panel.h"

#define MIN_SIZE 32
#define MAX_SIZE 2048

/* The open panel, so a second ASIOControlPanel brings it to the front. */
static volatile LONG panel_busy;
static HWND volatile panel_window;

/* ---- the dialog's template -------------------------------------------- */

/* An empty dialog frame; the controls are created in WM_INITDIALOG.
 * Dialog units; DS_SETFONT with "MS Shell Dlg" gives the system's dialog
 * font (Tahoma under Wine). */
#define DLG_WIDTH 310
#define DLG_HEIGHT 250

static const DLGTEMPLATE *dialog_template(void)
{
	static DWORD buffer[64]; /* DWORD aligned, as the template must be */
	static const WCHAR title[] = L"" PANEL_TITLE, font[] = L"MS Shell Dlg";
	DLGTEMPLATE *t = (DLGTEMPLATE *)buffer;
	WORD *p;

	memset(buffer, 0, sizeof(buffer));
	t->style = DS_SETFONT | DS_MODALFRAME | DS_CENTER | WS_POPUP | WS_CAPTION | WS_SYSMENU;
	t->cdit = 0;
	t->cx = DLG_WIDTH;
	t->cy = DLG_HEIGHT;
	p = (WORD *)(t + 1);
	*p++ = 0; /* no menu */
	*p++ = 0; /* the standard dialog class */
	memcpy(p, title, sizeof(title));
	p += ARRAYSIZE(title);
	*p++ = 8; /* points */
	memcpy(p, font, sizeof(font));
	return t;
}

/* ---- building the controls -------------------------------------------- */

static HWND control(HWND dialog, const char *cls, const char *text, DWORD style, int id,
		int x, int y, int w, int h)
{
	RECT r = { x, y, x + w, y + h };
	HWND hwnd;
	MapDialogRect(dialog, &r);
	hwnd = CreateWindowExA(0, cls, text, WS_CHILD | WS_VISIBLE | style, r.left, r.top,
			r.right - r.left, r.bottom - r.top, dialog, (HMENU)(INT_PTR)id,
			(HINSTANCE)GetWindowLongPtrA(dialog, GWLP_HINSTANCE), NULL);
	if (hwnd)
		SendMessageA(hwnd, WM_SETFONT, SendMessageA(dialog, WM_GETFONT, 0, 0), FALSE);
	return hwnd;
}

#define LABEL_X 14
#define LABEL_W 82
#define VALUE_X 98
#define VALUE_W 200
#define ROW 12

/* A "label: value" row of the status group; the value carries the ID. */
static void row(HWND dialog, int *y, const char *label, int id, const char *value, int lines)
{
	control(dialog, "STATIC", label, SS_LEFT, -1, LABEL_X, *y, LABEL_W, 9);
	control(dialog, "STATIC", value, SS_LEFT | SS_NOPREFIX, id, VALUE_X, *y, VALUE_W, 9 + (lines - 1) * 8);
	*y += ROW + (lines - 1) * 8;
}

static double ms(uint32_t frames, uint32_t rate)
{
	return rate ? frames * 1000.0 / rate : 0.0;
}

static void realtime_text(const struct panel_state *s, char *text, size_t size)
{
	if (!s->rt_known) {
		if (s->rt_requested > 0)
			snprintf(text, size, "not yet: priority %d is asked for when audio starts", s->rt_requested);
		else
			snprintf(text, size, "off: RealtimePriority is 0");
	} else if (s->rt_policy == 1 || s->rt_policy == 2) {
		snprintf(text, size, "granted: %s priority %d", s->rt_policy == 1 ? "SCHED_FIFO" : "SCHED_RR",
				s->rt_priority);
	} else if (s->rt_requested <= 0) {
		snprintf(text, size, "off: RealtimePriority is 0");
	} else if (s->rt_result == 1 /* EPERM */) {
		snprintf(text, size, "not granted: no rtprio permission (audio group?)");
	} else {
		snprintf(text, size, "not granted: error %d", s->rt_result);
	}
}

void panel_read_settings(const char *settings_key, struct panel_settings *s)
{
	HKEY key;
	DWORD type, len = sizeof(s->node), value, value_len;

	lstrcpynA(s->node, PANEL_DEFAULT_NODE, sizeof(s->node));
	s->rt_priority = PANEL_DEFAULT_RT_PRIORITY;
	s->preferred_size = PANEL_DEFAULT_PREFERRED_SIZE;
	s->autoconnect = 1;
	if (RegOpenKeyExA(HKEY_CURRENT_USER, settings_key, 0, KEY_READ, &key))
		return;
	if (RegQueryValueExA(key, PANEL_VALUE_NODE, NULL, &type, (BYTE *)s->node, &len) || type != REG_SZ || len <= 1)
		lstrcpynA(s->node, PANEL_DEFAULT_NODE, sizeof(s->node));
	s->node[sizeof(s->node) - 1] = 0;
	value_len = sizeof(value);
	if (!RegQueryValueExA(key, PANEL_VALUE_RT_PRIORITY, NULL, &type, (BYTE *)&value, &value_len) && type == REG_DWORD)
		s->rt_priority = (int)value;
	value_len = sizeof(value);
	if (!RegQueryValueExA(key, PANEL_VALUE_PREFERRED_SIZE, NULL, &type, (BYTE *)&value, &value_len) && type == REG_DWORD)
		s->preferred_size = value;
	value_len = sizeof(value);
	if (!RegQueryValueExA(key, PANEL_VALUE_AUTOCONNECT, NULL, &type, (BYTE *)&value, &value_len) && type == REG_DWORD)
		s->autoconnect = value != 0;
	RegCloseKey(key);
}

/* Sets `hwnd`'s size in dialog units. */
static void resize(HWND dialog, HWND hwnd, int w, int h)
{
	RECT r = { 0, 0, w, h };
	MapDialogRect(dialog, &r);
	SetWindowPos(hwnd, NULL, 0, 0, r.right, r.bottom, SWP_NOMOVE | SWP_NOZORDER | SWP_NOACTIVATE);
}

/* Creates the controls; returns the height they need, in dialog units. */
static int build(HWND dialog, const struct panel_state *s)
{
	struct panel_settings saved;
	char text[256];
	DWORD size;
	int y = 18, i, selected = -1, settings_top;
	HWND combo, edit, status;

	/* What the driver sees now. */
	status = control(dialog, "BUTTON", "PipeWire bridge (when the panel was opened)", BS_GROUPBOX, -1,
			7, 5, DLG_WIDTH - 14, 136);
	row(dialog, &y, "Bridge node:", PANEL_ID_NODE, s->node, 1);
	if (s->reachable)
		snprintf(text, sizeof(text), "yes");
	else
		snprintf(text, sizeof(text), "no: %s", s->error);
	/* An error takes up to three lines. */
	row(dialog, &y, "Reachable:", PANEL_ID_REACHABLE, text, s->reachable ? 1 : 3);
	if (!s->reachable)
		snprintf(text, sizeof(text), "-");
	else if (s->buffer_size)
		snprintf(text, sizeof(text), "%u samples (PipeWire graph: %u)", s->buffer_size, s->quantum);
	else
		snprintf(text, sizeof(text), "none yet: no program buffers (PipeWire graph: %u)", s->quantum);
	row(dialog, &y, "Buffer size:", PANEL_ID_BUFFER, text, 1);
	if (s->reachable)
		snprintf(text, sizeof(text), "%u Hz", s->rate);
	else
		snprintf(text, sizeof(text), "-");
	row(dialog, &y, "Sample rate:", PANEL_ID_RATE, text, 1);
	if (s->reachable)
		snprintf(text, sizeof(text), "%u samples (%.1f ms)", s->input_latency, ms(s->input_latency, s->rate));
	else
		snprintf(text, sizeof(text), "-");
	row(dialog, &y, "Input latency:", PANEL_ID_INPUT_LATENCY, text, 1);
	if (s->reachable)
		snprintf(text, sizeof(text), "%u samples (%.1f ms)", s->output_latency, ms(s->output_latency, s->rate));
	else
		snprintf(text, sizeof(text), "-");
	row(dialog, &y, "Output latency:", PANEL_ID_OUTPUT_LATENCY, text, 1);
	if (s->reachable)
		snprintf(text, sizeof(text), "%u", s->late_cycles);
	else
		snprintf(text, sizeof(text), "-");
	row(dialog, &y, "Late cycles:", PANEL_ID_LATE_CYCLES, text, 1);
	realtime_text(s, text, sizeof(text));
	row(dialog, &y, "Real-time priority:", PANEL_ID_REALTIME, text, 1);

	/* What the driver uses the next time a program opens it. */
	resize(dialog, status, DLG_WIDTH - 14, y + 1 - 5);
	y += 6;
	settings_top = y;
	control(dialog, "BUTTON", "Settings (applied the next time a program opens the driver)", BS_GROUPBOX, -1,
			7, settings_top, DLG_WIDTH - 14, 88);
	y += 13;
	panel_read_settings(s->settings_key, &saved);
	control(dialog, "STATIC", "&Preferred buffer size:", SS_LEFT, -1, LABEL_X, y + 2, LABEL_W, 9);
	combo = control(dialog, "COMBOBOX", "", CBS_DROPDOWNLIST | WS_VSCROLL | WS_TABSTOP, PANEL_ID_PREFERRED_SIZE,
			VALUE_X, y, 60, 120);
	/* The saved size, or the default where nothing (or a size not
	 * offered) is saved. */
	for (size = MIN_SIZE, i = 0; size <= MAX_SIZE; size *= 2, i++) {
		snprintf(text, sizeof(text), "%lu", (unsigned long)size);
		SendMessageA(combo, CB_ADDSTRING, 0, (LPARAM)text);
		if (size == saved.preferred_size || (size == PANEL_DEFAULT_PREFERRED_SIZE && selected < 0))
			selected = i;
	}
	SendMessageA(combo, CB_SETCURSEL, selected, 0);
	control(dialog, "STATIC", "samples, offered to programs first", SS_LEFT, -1, VALUE_X + 64, y + 2, 130, 9);
	y += 16;
	control(dialog, "STATIC", "Bridge &node:", SS_LEFT, -1, LABEL_X, y + 2, LABEL_W, 9);
	edit = control(dialog, "EDIT", saved.node, ES_AUTOHSCROLL | WS_BORDER | WS_TABSTOP, PANEL_ID_NODE_SETTING,
			VALUE_X, y, 120, 12);
	SendMessageA(edit, EM_LIMITTEXT, PANEL_NAME_LEN - 1, 0);
	control(dialog, "STATIC", "the bridge's node.name", SS_LEFT, -1, VALUE_X + 124, y + 2, 80, 9);
	y += 15;
	control(dialog, "BUTTON", "&Link the bridge to the default devices while this program runs",
			BS_AUTOCHECKBOX | WS_TABSTOP, PANEL_ID_AUTOCONNECT, LABEL_X, y, DLG_WIDTH - 2 * LABEL_X, 10);
	CheckDlgButton(dialog, PANEL_ID_AUTOCONNECT, saved.autoconnect ? BST_CHECKED : BST_UNCHECKED);
	y += 16;
	snprintf(text, sizeof(text), "HKCU\\%s", s->settings_key);
	control(dialog, "STATIC", "Saved in:", SS_LEFT, -1, LABEL_X, y, LABEL_W, 9);
	control(dialog, "STATIC", text, SS_LEFT | SS_NOPREFIX, PANEL_ID_SETTINGS_KEY, VALUE_X, y, VALUE_W, 18);

	control(dialog, "BUTTON", "OK", BS_DEFPUSHBUTTON | WS_TABSTOP, IDOK,
			DLG_WIDTH - 7 - 50 - 4 - 50, settings_top + 97, 50, 14);
	control(dialog, "BUTTON", "Cancel", BS_PUSHBUTTON | WS_TABSTOP, IDCANCEL,
			DLG_WIDTH - 7 - 50, settings_top + 97, 50, 14);
	SetFocus(combo);
	return settings_top + 97 + 14 + 7;
}

/* ---- saving ----------------------------------------------------------- */

/* Writes the dialog's settings; FALSE (and tells the user) if it could not. */
static BOOL save(HWND dialog, const struct panel_state *s)
{
	char node[PANEL_NAME_LEN], text[32], message[300];
	DWORD size, autoconnect;
	LONG res;
	HKEY key;
	int i;

	GetDlgItemTextA(dialog, PANEL_ID_NODE_SETTING, node, sizeof(node));
	for (i = 0; node[i] == ' ' || node[i] == '\t'; i++)
		;
	memmove(node, node + i, strlen(node + i) + 1);
	for (i = (int)strlen(node); i > 0 && (node[i - 1] == ' ' || node[i - 1] == '\t'); i--)
		node[i - 1] = 0;
	if (!node[0])
		lstrcpynA(node, PANEL_DEFAULT_NODE, sizeof(node));
	GetDlgItemTextA(dialog, PANEL_ID_PREFERRED_SIZE, text, sizeof(text));
	size = strtoul(text, NULL, 10);
	if (size < MIN_SIZE || size > MAX_SIZE)
		size = PANEL_DEFAULT_PREFERRED_SIZE;
	autoconnect = IsDlgButtonChecked(dialog, PANEL_ID_AUTOCONNECT) == BST_CHECKED;

	res = RegCreateKeyExA(HKEY_CURRENT_USER, s->settings_key, 0, NULL, 0, KEY_SET_VALUE, NULL, &key, NULL);
	if (!res) {
		res = RegSetValueExA(key, PANEL_VALUE_PREFERRED_SIZE, 0, REG_DWORD, (const BYTE *)&size, sizeof(size));
		if (!res)
			res = RegSetValueExA(key, PANEL_VALUE_NODE, 0, REG_SZ, (const BYTE *)node, strlen(node) + 1);
		if (!res)
			res = RegSetValueExA(key, PANEL_VALUE_AUTOCONNECT, 0, REG_DWORD, (const BYTE *)&autoconnect, sizeof(autoconnect));
		RegCloseKey(key);
	}
	if (res) {
		snprintf(message, sizeof(message), "Could not save the settings in HKCU\\%s (error %ld).",
				s->settings_key, (long)res);
		MessageBoxA(dialog, message, PANEL_TITLE, MB_OK | MB_ICONERROR);
		return FALSE;
	}
	return TRUE;
}

/* ---- the dialog ------------------------------------------------------- */

/* Gives the dialog `height` dialog units of client area, centred on the
 * screen's work area (the template is as tall as the longest error needs). */
static void fit(HWND dialog, int height)
{
	RECT r = { 0, 0, DLG_WIDTH, height }, area;
	MapDialogRect(dialog, &r);
	AdjustWindowRectEx(&r, GetWindowLongA(dialog, GWL_STYLE), FALSE, GetWindowLongA(dialog, GWL_EXSTYLE));
	if (!SystemParametersInfoA(SPI_GETWORKAREA, 0, &area, 0))
		SetRect(&area, 0, 0, GetSystemMetrics(SM_CXSCREEN), GetSystemMetrics(SM_CYSCREEN));
	SetWindowPos(dialog, NULL,
			area.left + (area.right - area.left - (r.right - r.left)) / 2,
			area.top + (area.bottom - area.top - (r.bottom - r.top)) / 2,
			r.right - r.left, r.bottom - r.top, SWP_NOZORDER | SWP_NOACTIVATE);
}

static INT_PTR CALLBACK dialog_proc(HWND dialog, UINT message, WPARAM wparam, LPARAM lparam)
{
	const struct panel_state *s = (const struct panel_state *)GetWindowLongPtrA(dialog, DWLP_USER);

	switch (message) {
	case WM_INITDIALOG:
		SetWindowLongPtrA(dialog, DWLP_USER, lparam);
		panel_window = dialog;
		fit(dialog, build(dialog, (const struct panel_state *)lparam));
		SetForegroundWindow(dialog);
		return FALSE; /* build() set the focus */
	case WM_COMMAND:
		switch (LOWORD(wparam)) {
		case IDOK:
			if (save(dialog, s))
				EndDialog(dialog, IDOK);
			return TRUE;
		case IDCANCEL:
			EndDialog(dialog, IDCANCEL);
			return TRUE;
		}
		break;
	case WM_NCDESTROY:
		/* Before the window is gone: once no window has the title, a
		 * new panel may open. */
		panel_window = NULL;
		InterlockedExchange(&panel_busy, 0);
		break;
	}
	return FALSE;
}

static DWORD WINAPI panel_thread(void *arg)
{
	struct panel_state *state = arg;
	HMODULE self = NULL;

	GetModuleHandleExA(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
			(const char *)panel_thread, &self);
	if (DialogBoxIndirectParamA(self, dialog_template(), NULL, dialog_proc, (LPARAM)state) == -1)
		InterlockedExchange(&panel_busy, 0);
	HeapFree(GetProcessHeap(), 0, state);
	/* Drops the reference panel_open took for this thread. */
	FreeLibraryAndExitThread(self, 0);
	return 0;
}

ASIOError panel_open(const struct panel_state *state)
{
	struct panel_state *copy;
	HMODULE self;
	HANDLE thread;

	if (!state)
		return ASE_InvalidParameter;
	if (InterlockedCompareExchange(&panel_busy, 1, 0) != 0) {
		HWND open = panel_window;
		if (open)
			SetForegroundWindow(open);
		return ASE_OK;
	}
	copy = HeapAlloc(GetProcessHeap(), 0, sizeof(*copy));
	if (!copy) {
		InterlockedExchange(&panel_busy, 0);
		return ASE_NoMemory;
	}
	*copy = *state;
	copy->node[sizeof(copy->node) - 1] = 0;
	copy->error[sizeof(copy->error) - 1] = 0;
	copy->settings_key[sizeof(copy->settings_key) - 1] = 0;
	/* The thread keeps this DLL loaded until it exits, so the host may
	 * release the driver while the panel is open. */
	if (!GetModuleHandleExA(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS, (const char *)panel_thread, &self)) {
		HeapFree(GetProcessHeap(), 0, copy);
		InterlockedExchange(&panel_busy, 0);
		return ASE_HWMalfunction;
	}
	thread = CreateThread(NULL, 0, panel_thread, copy, 0, NULL);
	if (!thread) {
		FreeLibrary(self);
		HeapFree(GetProcessHeap(), 0, copy);
		InterlockedExchange(&panel_busy, 0);
		return ASE_HWMalfunction;
	}
	CloseHandle(thread);
	return ASE_OK;
}
