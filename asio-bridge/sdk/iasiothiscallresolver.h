/* SPDX-License-Identifier: MIT */
/*
 * On 32-bit Windows, IASIO methods are thiscall, and hosts built with a
 * compiler that called virtual methods otherwise routed each call through
 * a resolver. mingw-w64's g++ calls them thiscall itself (asio.cpp), and
 * x64 has one convention: nothing to resolve.
 */
#ifndef ASIO_BRIDGE_SDK_IASIOTHISCALLRESOLVER_H
#define ASIO_BRIDGE_SDK_IASIOTHISCALLRESOLVER_H
#endif
