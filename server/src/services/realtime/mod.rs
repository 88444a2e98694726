//! Realtime business logic: who may enter a meeting, chat history, recording
//! state, cross-replica presence and terminal pairing tokens.

pub mod chat;
pub mod meetings;
pub mod members;
pub mod presence;
pub mod recordings;
pub mod terminal_pairing;
