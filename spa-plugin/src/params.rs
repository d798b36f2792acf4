//! Declarations of params.c: POD params built with SPA's own builders.

use libspa_sys::{spa_latency_info, spa_pod};
use std::ffi::{c_int, c_void};

extern "C" {
    pub fn asio_bridge_param_dsp_format(buf: *mut c_void, size: u32, id: u32, filter: *const spa_pod, result: *mut *mut spa_pod) -> c_int;
    pub fn asio_bridge_param_buffers(
        buf: *mut c_void,
        size: u32,
        max_buffers: u32,
        default_size: u32,
        max_size: u32,
        filter: *const spa_pod,
        result: *mut *mut spa_pod,
    ) -> c_int;
    pub fn asio_bridge_parse_dsp_format(param: *const spa_pod) -> c_int;
    pub fn asio_bridge_param_latency(buf: *mut c_void, size: u32, info: *const spa_latency_info, result: *mut *mut spa_pod) -> c_int;
    pub fn asio_bridge_parse_latency(param: *const spa_pod, info: *mut spa_latency_info) -> c_int;
}
