//! The node's listeners and the info events it sends them: what PipeWire,
//! and through it every observer (WirePlumber, pw-mon, pw-dump), learns of
//! the node and its ports.

use super::Node;
use libspa_sys as spa;
use std::{
    ffi::{c_int, c_void, CString},
    ptr,
};

impl Node {

    /// Calls `f` with each listener's events table and data.
    pub(super) fn for_each_listener(&self, f: impl Fn(&spa::spa_node_events, *mut c_void)) {
        let head = &self.hooks.list as *const spa::spa_list;
        let mut link = self.hooks.list.next;
        while !link.is_null() && link as *const _ != head {
            // SAFETY: links in our list are the first field of live spa_hooks
            // added through add_listener; `next` is read before the call in
            // case the listener removes itself.
            unsafe {
                let hook = link.cast::<spa::spa_hook>();
                link = (*link).next;
                if let Some(events) = (*hook).cb.funcs.cast::<spa::spa_node_events>().as_ref() {
                    f(events, (*hook).cb.data);
                }
            }
        }
    }

    /// Emits the node's info with `change_mask` (SPA_NODE_CHANGE_MASK_*):
    /// FLAGS and PROPS only. The node has no node-level params, and an info
    /// that flags PARAMS with none makes libpipewire's info merge free twice
    /// in every observer (WirePlumber, pw-mon) on the second such update.
    pub(super) fn emit_node_info(&self, change_mask: u32, events: &spa::spa_node_events, data: *mut c_void) {
        // Always present, "0" when released: 0.3.65 ignores a removed key.
        let quantum = CString::new(self.forced.0.to_string()).unwrap();
        let rate = CString::new(self.forced.1.to_string()).unwrap();
        let status = self.status.c_items();
        let keys: Vec<CString> = status.iter().map(|(k, _)| CString::new(*k).unwrap_or_default()).collect();
        let mut items = self.node_props.clone();
        items.push(spa::spa_dict_item { key: c"node.force-quantum".as_ptr(), value: quantum.as_ptr() });
        items.push(spa::spa_dict_item { key: c"node.force-rate".as_ptr(), value: rate.as_ptr() });
        items.extend(keys.iter().zip(&status).map(|(k, (_, v))| spa::spa_dict_item { key: k.as_ptr(), value: v.as_ptr() }));
        let dict = spa::spa_dict { flags: 0, n_items: items.len() as u32, items: items.as_ptr() };
        let info = spa::spa_node_info {
            max_input_ports: self.config.inputs,
            max_output_ports: self.config.outputs,
            change_mask: (change_mask & (spa::SPA_NODE_CHANGE_MASK_FLAGS | spa::SPA_NODE_CHANGE_MASK_PROPS)) as u64,
            flags: spa::SPA_NODE_FLAG_RT as u64,
            props: &dict as *const _ as *mut _,
            params: ptr::null_mut(),
            n_params: 0,
        };
        if let Some(f) = events.info {
            // SAFETY: a listener's callback with its own data and an info
            // that lives for the call.
            unsafe { f(data, &info) };
        }
    }

    pub(super) fn emit_port_info(&mut self, index: usize, all: bool, target: Option<(&spa::spa_node_events, *mut c_void)>) {
        let (direction, id) = if index < self.config.inputs as usize {
            (spa::SPA_DIRECTION_INPUT, index as u32)
        } else {
            (spa::SPA_DIRECTION_OUTPUT, index as u32 - self.config.inputs)
        };
        let mut dict = spa::spa_dict { flags: 0, n_items: 0, items: ptr::null() };
        let info = self.ports[index].spa_info(&mut dict, all);
        let call = |events: &spa::spa_node_events, data| {
            if let Some(f) = events.port_info {
                // SAFETY: as in emit_node_info.
                unsafe { f(data, direction, id, &info) };
            }
        };
        match target {
            Some((events, data)) => call(events, data),
            None => self.for_each_listener(call),
        }
    }

    pub fn add_listener(&mut self, listener: *mut spa::spa_hook, events: *const spa::spa_node_events, data: *mut c_void) -> c_int {
        // SAFETY: the caller passes a valid events table that outlives the hook.
        let Some(ev) = (unsafe { events.as_ref() }) else { return -libc::EINVAL };
        self.emit_node_info(spa::SPA_NODE_CHANGE_MASK_FLAGS | spa::SPA_NODE_CHANGE_MASK_PROPS, ev, data);
        for i in 0..self.ports.len() {
            self.emit_port_info(i, true, Some((ev, data)));
        }
        // SAFETY: `listener` is the caller's hook, appended at the tail of
        // our list (spa_hook_list_append); the caller removes it with
        // spa_hook_remove before freeing it.
        unsafe {
            (*listener).cb = spa::spa_callbacks { funcs: events.cast(), data };
            let head = &mut self.hooks.list as *mut spa::spa_list;
            let link = &mut (*listener).link as *mut spa::spa_list;
            (*link).prev = (*head).prev;
            (*link).next = head;
            (*(*head).prev).next = link;
            (*head).prev = link;
        }
        0
    }

    pub fn sync(&self, seq: c_int) -> c_int {
        self.for_each_listener(|events, data| {
            if let Some(f) = events.result {
                // SAFETY: listener callback with its own data.
                unsafe { f(data, seq, 0, 0, ptr::null()) };
            }
        });
        0
    }}
