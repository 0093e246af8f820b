//! Switchable failures of the platform double's GraphQL endpoint (an outage, not one
//! rejected call: [`crate::PlatformDouble::reject_next`] does that).

use std::sync::Mutex;
use std::time::Duration;

/// How the GraphQL endpoint fails while a fault is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlatformFault {
    /// Every request answers this HTTP status (a plain-text body), unrecorded.
    Status(u16),
    /// Every request waits this long before it is answered normally.
    Slow(Duration),
}

/// The fault in force, if any (shared by the double's HTTP handler and the test).
#[derive(Debug, Default)]
pub struct FaultSwitch {
    fault: Mutex<Option<PlatformFault>>,
    /// Requests that met a fault.
    hits: Mutex<u64>,
}

impl FaultSwitch {
    pub fn set(&self, fault: Option<PlatformFault>) {
        *self.fault.lock().unwrap_or_else(|e| e.into_inner()) = fault;
    }

    /// The fault for one request (counted).
    pub fn take(&self) -> Option<PlatformFault> {
        let fault = *self.fault.lock().unwrap_or_else(|e| e.into_inner());
        if fault.is_some() {
            *self.hits.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        }
        fault
    }

    pub fn hits(&self) -> u64 {
        *self.hits.lock().unwrap_or_else(|e| e.into_inner())
    }
}
