/* SPDX-License-Identifier: MIT */
/*
 * On 32-bit Windows, IASIO methods are thiscall and hosts built with a
 * compiler other than MSVC route each call through a resolver. On x64
 * there is one calling convention: nothing to resolve.
 */
#ifndef ASIO_BRIDGE_SDK_IASIOTHISCALLRESOLVER_H
#define ASIO_BRIDGE_SDK_IASIOTHISCALLRESOLVER_H
#endif
