//! A global allocator that forwards to `System` and counts what it serves: bytes requested,
//! bytes glibc's malloc really reserves for them (chunks of 16-byte granules, 32 bytes at
//! least, on 64-bit Linux), and live allocations. Shared by the memory examples
//! (`#[path = "common/measuring.rs"] mod measuring;`).
//!
//! Counting can be paused ([`set_counting`]) while an example builds structures of its own (a
//! ground truth), so that only the measured code's memory is counted. Memory must be freed in
//! the mode it was allocated in, or the figures drift.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

pub struct Measuring;

static REQUESTED: AtomicI64 = AtomicI64::new(0);
static RESERVED: AtomicI64 = AtomicI64::new(0);
static LIVE: AtomicI64 = AtomicI64::new(0);
static COUNTING: AtomicBool = AtomicBool::new(true);

/// What glibc's malloc reserves for a request of `size` bytes on 64-bit Linux.
fn chunk(size: usize) -> i64 {
    (size.saturating_add(8).div_ceil(16) * 16).max(32) as i64
}

fn add(size: usize, sign: i64) {
    if COUNTING.load(Ordering::Relaxed) {
        REQUESTED.fetch_add(sign * size as i64, Ordering::Relaxed);
        RESERVED.fetch_add(sign * chunk(size), Ordering::Relaxed);
        LIVE.fetch_add(sign, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged.
unsafe impl GlobalAlloc for Measuring {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size(), 1);
        // SAFETY: same contract as `GlobalAlloc::alloc`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(layout.size(), -1);
        // SAFETY: same contract as `GlobalAlloc::dealloc`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(layout.size(), -1);
        add(new_size, 1);
        // SAFETY: same contract as `GlobalAlloc::realloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Counts allocations (the default) or not.
#[allow(dead_code)]
pub fn set_counting(on: bool) {
    COUNTING.store(on, Ordering::Relaxed);
}

/// (bytes requested, bytes reserved, live allocations) counted so far.
pub fn snapshot() -> (i64, i64, i64) {
    (
        REQUESTED.load(Ordering::Relaxed),
        RESERVED.load(Ordering::Relaxed),
        LIVE.load(Ordering::Relaxed),
    )
}
