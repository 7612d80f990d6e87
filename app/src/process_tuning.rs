//! Process-wide settings that the CPU model runtime is measurably faster with (`bench/model.sh`,
//! BENCHMARKS.md). Called first thing in `main`, before any thread exists; a value the user set in
//! the environment wins.

/// Applies the settings.
pub fn apply() {
    // Candle's element-wise ops run on their own thread pool, whose workers spin 25,000 times
    // after every op before parking; on a machine with few cores they steal the cores the next
    // matrix product (on rayon's pool) needs. A short spin keeps the hand-off cheap.
    if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
        std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", "50");
    }
    keep_freed_memory();
}

/// glibc returns freed blocks of a few megabytes to the kernel (they are mmapped, or trimmed off
/// the heap), so every layer's activations cost fresh page faults and zeroing: about a tenth of a
/// CPU prefill. Keeping blocks up to 256 MB on the heap and trimming only beyond 1 GB avoids that.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    if std::env::var_os("GLIBC_TUNABLES").is_some() {
        return;
    }
    // SAFETY: mallopt only changes allocator parameters; no allocation is in flight on another
    // thread this early.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}
