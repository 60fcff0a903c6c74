//! What the tests of every crate share, so each test says only what it is about.
//!
//! # Layout
//! - [`bridge`]: [`TestBridge`], a bridge served in this process on `127.0.0.1:0`, on a
//!   runtime and thread of its own (a bridge that froze cannot freeze the test that
//!   watches it); the demo bridge too.
//! - [`wait`]: [`eventually`], the one bounded poll-until-true, and [`WAIT`].
//! - [`body`]: broadcast bodies ([`add_stock`]) and the test API key ([`KEY`]).
//! - [`pki`]: test certificates ([`Pki`]).
//! - `redis` (Unix): a real `redis-server` for cluster tests ([`redis::Redis`]).

pub mod body;
pub mod bridge;
pub mod pki;
#[cfg(unix)]
pub mod redis;
pub mod wait;

pub use body::{KEY, add_stock, api_key};
pub use bridge::TestBridge;
pub use pki::{Issued, Leaf, Pki, hours_ago};
pub use wait::{WAIT, eventually};
