//! MasBackend operator library.
