//! Giving the heap a reconcile freed back to the system.
//!
//! glibc's malloc returns memory to the kernel only from the top of the heap (and
//! from large blocks of their own). A reconcile builds many small objects (JSON trees,
//! strings) and frees them in another order, so the freed pages sit between live ones
//! and stay resident: the process keeps about 1.6× its largest live heap for good.
//! `malloc_trim(0)` walks the free lists and hands every whole free page back
//! (`MADV_DONTNEED`), which is what a long-lived agent beside its workload needs.
//!
//! This is the crate's one `unsafe` block: an FFI call that takes no pointers and has
//! no preconditions. On other C libraries it compiles to nothing.

/// Returns the free pages of every malloc arena to the system. Cheap when little is
/// free (it walks the free lists once); called after each reconcile, not per object.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn release_free_pages() {
    // SAFETY: malloc_trim reads and changes only glibc's own allocator state, under
    // the arenas' locks; it may be called at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_pages() {}
