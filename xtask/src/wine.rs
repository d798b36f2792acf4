//! The Wine half of the stage: the ASIO driver (PE DLL + unix library) and
//! the project's ASIO host program.

use crate::Stage;

pub fn stage(_stage: &Stage, _cargo: &str) {}
