//! Parallel building blocks, each with a scalar twin it is tested against.

pub mod batch;
pub mod exp;
pub mod isa;
pub mod matvec;
pub mod tile;
pub mod vector;
