//! MAS backend library.
