/* SPDX-License-Identifier: MIT */
/*
 * The SDK's platform header, as third-party ASIO hosts include it. This
 * glue targets one platform, Windows (x64 and i386 hosts cross-built with
 * mingw-w64 and run under Wine), so there is nothing to select.
 */
#ifndef ASIO_BRIDGE_SDK_ASIOSYS_H
#define ASIO_BRIDGE_SDK_ASIOSYS_H

#if !defined(_WIN32)
#error "the ASIO host glue is for Windows only"
#endif

#define WINDOWS 1
#define NATIVE_INT64 0
#define IEEE754_64FLOAT 1

#endif
