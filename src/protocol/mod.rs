//! RESP2/RESP3/inline request parsing and reply writing. Knows nothing about sockets.

pub mod parse;
pub mod reply;

pub use parse::{Limits, Parsed, RequestParser};
pub use reply::Reply;
