//! Files: `.npy` headers and arrays, memory maps, atomic writes, text imports.

pub mod array;
pub mod atomic;
pub mod blobfile;
pub mod container;
pub mod mmap;
pub mod npy;
pub mod output;
pub mod text;
pub mod write;
