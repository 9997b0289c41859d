//! The allocator of a component built with the SDK (feature `allocator`, on
//! by default): freed blocks of up to [`MAX_CACHED`] bytes wait on one free
//! list per size class and are handed out again without a call into the
//! system allocator (wasi-libc's `dlmalloc`).
//!
//! Every call of a transform allocates and frees the same few sizes: the
//! strings the host lowers into the guest, the keys, the event body. Taken
//! from and given back to a list, each costs a few instructions instead of a
//! `malloc` or a coalescing `free`.
//!
//! Sizes round up to one of [`CLASSES`] classes: multiples of 16 bytes up
//! to 64, then four per power of two (at most a quarter wasted). Each list holds at most [`KEEP_BYTES`]; a block
//! freed beyond that goes back to the system allocator, so the lists never
//! hold more than about a megabyte, whatever the transform does. Blocks
//! aligned to more than 8 bytes, and larger blocks, always go to the system
//! allocator.
//!
//! A transform that wants its own global allocator turns the feature off:
//! `relay-sdk = { version = "…", default-features = false }`.

use std::alloc::{GlobalAlloc, Layout};
use std::ptr;

/// The largest block kept on a free list.
pub const MAX_CACHED: usize = 16 << 10;

/// Number of size classes: 16, 32, 48 and 64 bytes, then four per power of
/// two up to [`MAX_CACHED`].
pub const CLASSES: usize = 36;

/// The most bytes one free list keeps.
pub const KEEP_BYTES: usize = 32 << 10;

/// Alignment of every block taken from the system allocator for a class.
const BLOCK_ALIGN: usize = 8;

/// The class of a block of `size` bytes (`1..=MAX_CACHED`): its index and
/// the block size every block of the class has.
#[inline]
pub fn class_of(size: usize) -> (usize, usize) {
    debug_assert!((1..=MAX_CACHED).contains(&size));
    if size <= 64 {
        let index = (size - 1) / 16;
        return (index, (index + 1) * 16);
    }
    // `size - 1` is in [2^p, 2^(p+1)): split that range in four steps.
    let p = (usize::BITS - 1 - (size - 1).leading_zeros()) as usize;
    let shift = p - 2;
    let quarter = (size - 1) >> shift; // 4..=7
    (4 + (p - 6) * 4 + (quarter - 4), (quarter + 1) << shift)
}

/// Free lists of blocks by size class, in front of a backing allocator.
///
/// Not thread-safe: the caller makes sure one thread at a time uses it.
pub struct SizeClasses {
    /// The first free block of each class; each free block holds the next.
    heads: [*mut u8; CLASSES],
    /// Bytes each list may still take.
    room: [usize; CLASSES],
}

impl Default for SizeClasses {
    fn default() -> Self {
        Self::new()
    }
}

impl SizeClasses {
    /// Empty lists.
    pub const fn new() -> Self {
        SizeClasses {
            heads: [ptr::null_mut(); CLASSES],
            room: [KEEP_BYTES; CLASSES],
        }
    }

    /// The class of `layout`, when its blocks are kept on a list.
    #[inline]
    fn cached(layout: Layout) -> Option<(usize, usize)> {
        (layout.align() <= BLOCK_ALIGN && layout.size() <= MAX_CACHED && layout.size() > 0)
            .then(|| class_of(layout.size()))
    }

    /// Allocates as [`GlobalAlloc::alloc`], from a list when it can.
    ///
    /// # Safety
    ///
    /// As [`GlobalAlloc::alloc`]; every block must be freed through this
    /// `SizeClasses` with the same `backing`.
    #[inline]
    pub unsafe fn alloc(&mut self, backing: &impl GlobalAlloc, layout: Layout) -> *mut u8 {
        let Some((class, block)) = Self::cached(layout) else {
            // SAFETY: the caller's contract.
            return unsafe { backing.alloc(layout) };
        };
        let head = self.heads[class];
        if head.is_null() {
            // SAFETY: `block` is non-zero and a multiple of 16.
            return unsafe { backing.alloc(Layout::from_size_align_unchecked(block, BLOCK_ALIGN)) };
        }
        // SAFETY: a listed block is free, `block` bytes long and 8-aligned,
        // and its first word holds the next one.
        self.heads[class] = unsafe { head.cast::<*mut u8>().read() };
        self.room[class] += block;
        head
    }

    /// Frees as [`GlobalAlloc::dealloc`], onto a list while it has room.
    ///
    /// # Safety
    ///
    /// As [`GlobalAlloc::dealloc`], for a block from [`SizeClasses::alloc`]
    /// or [`SizeClasses::realloc`] with the same `backing`.
    #[inline]
    pub unsafe fn dealloc(
        &mut self,
        backing: &impl GlobalAlloc,
        block_ptr: *mut u8,
        layout: Layout,
    ) {
        let Some((class, block)) = Self::cached(layout) else {
            // SAFETY: the caller's contract; this layout was never cached.
            return unsafe { backing.dealloc(block_ptr, layout) };
        };
        let block_layout = || {
            // SAFETY: as in `alloc`.
            unsafe { Layout::from_size_align_unchecked(block, BLOCK_ALIGN) }
        };
        if self.room[class] < block {
            // SAFETY: the block came from `backing` with `block_layout`.
            return unsafe { backing.dealloc(block_ptr, block_layout()) };
        }
        // SAFETY: the block is ours now, 8-aligned and at least 16 bytes.
        unsafe { block_ptr.cast::<*mut u8>().write(self.heads[class]) };
        self.heads[class] = block_ptr;
        self.room[class] -= block;
    }

    /// Resizes as [`GlobalAlloc::realloc`]: in place within a class.
    ///
    /// # Safety
    ///
    /// As [`GlobalAlloc::realloc`], for a block from this `SizeClasses`
    /// with the same `backing`.
    pub unsafe fn realloc(
        &mut self,
        backing: &impl GlobalAlloc,
        block_ptr: *mut u8,
        layout: Layout,
        new_size: usize,
    ) -> *mut u8 {
        // SAFETY: `realloc`'s contract: `new_size`, rounded up to the
        // alignment, does not overflow `isize`.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (Self::cached(layout), Self::cached(new_layout)) {
            (Some((old, _)), Some((new, _))) if old == new => block_ptr,
            // SAFETY: neither layout was ever cached: the block is backing's.
            (None, None) => unsafe { backing.realloc(block_ptr, layout, new_size) },
            _ => {
                // SAFETY: the caller's contract, for both blocks.
                unsafe {
                    let moved = self.alloc(backing, new_layout);
                    if !moved.is_null() {
                        ptr::copy_nonoverlapping(block_ptr, moved, layout.size().min(new_size));
                        self.dealloc(backing, block_ptr, layout);
                    }
                    moved
                }
            }
        }
    }
}

/// The global allocator of components built with the SDK.
#[cfg(all(
    target_arch = "wasm32",
    not(target_feature = "atomics"),
    feature = "allocator"
))]
mod global {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::UnsafeCell;

    use super::SizeClasses;

    struct Global(UnsafeCell<SizeClasses>);

    // SAFETY: wasm32 without the `atomics` feature runs one thread, and
    // `System` never calls back into the global allocator, so no two
    // borrows of the lists overlap.
    unsafe impl Sync for Global {}

    // SAFETY: `SizeClasses` keeps `GlobalAlloc`'s contract over `System`.
    unsafe impl GlobalAlloc for Global {
        #[inline]
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: see `Sync` above; the caller's contract.
            unsafe { (*self.0.get()).alloc(&System, layout) }
        }

        #[inline]
        unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
            // SAFETY: see `Sync` above; the caller's contract.
            unsafe { (*self.0.get()).dealloc(&System, block, layout) }
        }

        unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: see `Sync` above; the caller's contract.
            unsafe { (*self.0.get()).realloc(&System, block, layout, new_size) }
        }
    }

    #[global_allocator]
    static ALLOCATOR: Global = Global(UnsafeCell::new(SizeClasses::new()));
}

#[cfg(test)]
mod tests {
    use std::alloc::System;

    use super::*;

    #[test]
    fn every_size_fits_its_class_with_under_16_bytes_or_a_quarter_wasted() {
        assert_eq!(class_of(1), (0, 16));
        let mut last = (0, 16);
        for size in 2..=MAX_CACHED {
            let (class, block) = class_of(size);
            assert!(class < CLASSES, "{size}: class {class}");
            assert!(block >= size, "{size}: block {block}");
            assert_eq!(block % 16, 0, "{size}: block {block}");
            assert!(
                block - size < 16 || (block - size) * 4 <= size,
                "{size}: block {block}"
            );
            // Classes grow with the size, one block size each.
            assert!(class == last.0 && block == last.1 || class == last.0 + 1 && block > last.1);
            last = (class, block);
        }
        assert_eq!(last, (CLASSES - 1, MAX_CACHED));
    }

    /// A block handed out by the lists, with the byte it was filled with.
    struct Live {
        ptr: *mut u8,
        layout: Layout,
        fill: u8,
    }

    fn check(live: &Live) {
        // SAFETY: `ptr` is a live block of `layout.size()` bytes.
        let bytes = unsafe { std::slice::from_raw_parts(live.ptr, live.layout.size()) };
        assert!(
            bytes.iter().all(|&b| b == live.fill),
            "block of {} bytes at {:?} was overwritten",
            live.layout.size(),
            live.ptr
        );
        assert_eq!(live.ptr as usize % live.layout.align(), 0);
    }

    fn fill(live: &Live) {
        // SAFETY: as in `check`.
        unsafe { live.ptr.write_bytes(live.fill, live.layout.size()) };
    }

    #[test]
    fn blocks_never_overlap_across_random_allocations_frees_and_resizes() {
        let mut lists = SizeClasses::new();
        let mut live: Vec<Live> = Vec::new();
        let mut seed: u64 = 0x5eed;
        let mut next = move |below: usize| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as usize % below
        };
        for step in 0..20_000 {
            let fill_byte = (step % 251) as u8;
            match next(10) {
                0..=4 => {
                    // Mostly small sizes, some past the cached range.
                    let size = match next(4) {
                        0 => 1 + next(64),
                        1 => 1 + next(2_000),
                        2 => 1 + next(MAX_CACHED),
                        _ => 1 + next(2 * MAX_CACHED),
                    };
                    let align = 1 << next(5);
                    let layout = Layout::from_size_align(size, align).unwrap();
                    // SAFETY: non-zero size; freed below through `lists`.
                    let ptr = unsafe { lists.alloc(&System, layout) };
                    assert!(!ptr.is_null());
                    let block = Live {
                        ptr,
                        layout,
                        fill: fill_byte,
                    };
                    fill(&block);
                    live.push(block);
                }
                5..=7 if !live.is_empty() => {
                    let block = live.swap_remove(next(live.len()));
                    check(&block);
                    // SAFETY: a live block from `lists`.
                    unsafe { lists.dealloc(&System, block.ptr, block.layout) };
                }
                _ if !live.is_empty() => {
                    let at = next(live.len());
                    let old = &live[at];
                    check(old);
                    let new_size = 1 + next(2 * MAX_CACHED);
                    // SAFETY: a live block from `lists`.
                    let ptr = unsafe { lists.realloc(&System, old.ptr, old.layout, new_size) };
                    assert!(!ptr.is_null());
                    let kept = old.layout.size().min(new_size);
                    // SAFETY: the first `kept` bytes moved with the block.
                    let moved = unsafe { std::slice::from_raw_parts(ptr, kept) };
                    assert!(moved.iter().all(|&b| b == old.fill), "realloc lost bytes");
                    let layout = Layout::from_size_align(new_size, old.layout.align()).unwrap();
                    live[at] = Live {
                        ptr,
                        layout,
                        fill: fill_byte,
                    };
                    fill(&live[at]);
                }
                _ => {}
            }
            if step % 1_000 == 0 {
                live.iter().for_each(check);
            }
            for (class, room) in lists.room.iter().enumerate() {
                assert!(
                    *room <= KEEP_BYTES,
                    "class {class} has {room} bytes of room"
                );
            }
        }
        live.iter().for_each(check);
        for block in live {
            // SAFETY: a live block from `lists`.
            unsafe { lists.dealloc(&System, block.ptr, block.layout) };
        }
    }

    #[test]
    fn a_freed_block_is_handed_out_again_for_its_class_only_while_the_list_has_room() {
        let mut lists = SizeClasses::new();
        let layout = Layout::from_size_align(100, 1).unwrap(); // class block 112
                                                               // SAFETY: blocks from `lists`, freed through it.
        unsafe {
            let first = lists.alloc(&System, layout);
            lists.dealloc(&System, first, layout);
            let same_class = Layout::from_size_align(110, 4).unwrap();
            assert_eq!(lists.alloc(&System, same_class), first);
            lists.dealloc(&System, first, same_class);
            let other_class = Layout::from_size_align(120, 1).unwrap();
            let other = lists.alloc(&System, other_class);
            assert_ne!(other, first);
            lists.dealloc(&System, other, other_class);

            // Fill the 16 KiB list, then one more goes back to the system.
            let big = Layout::from_size_align(MAX_CACHED, 8).unwrap();
            let blocks: Vec<_> = (0..KEEP_BYTES / MAX_CACHED + 1)
                .map(|_| lists.alloc(&System, big))
                .collect();
            for &block in &blocks {
                lists.dealloc(&System, block, big);
            }
            let (class, _) = class_of(MAX_CACHED);
            assert_eq!(lists.room[class], KEEP_BYTES % MAX_CACHED);
            let mut listed = 0;
            let mut at = lists.heads[class];
            while !at.is_null() {
                listed += 1;
                at = at.cast::<*mut u8>().read();
            }
            assert_eq!(listed, KEEP_BYTES / MAX_CACHED);
        }
    }
}
