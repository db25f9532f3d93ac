//! Integration tests: drive the real `reinit` binary from outside against the fixture app
//! `tests/fixtures/fake_app.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

mod containers;
mod faults;
mod http;
mod init;
mod listen;
mod prometheus;
mod readme;
mod scripts;
mod siblings;
mod update;
mod watch;
