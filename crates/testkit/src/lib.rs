//! The shared test kit.
