//! What the integration tests need from the host crate itself, on top of
//! `relay_testkit` (the fakes and harnesses, which know nothing of `relay`):
//! the whole stack with the real binary as the function, and sample batches.
#![allow(dead_code)]

pub mod stack;
