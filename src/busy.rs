//! Serving clients while one command holds the dataset for long: a script past
//! `lua-time-limit`, or a dataset being loaded (start-up, DEBUG RELOAD, DEBUG LOADAOF).
//!
//! Redis calls `processEventsWhileBlocked` from inside such work; so do we. The long
//! work calls [`serve_clients`] now and then with the `&mut State` it holds; the loop's
//! socket half (`server::Net`) registered itself as the [`Pump`] before running the
//! command, so this module links the two without commands knowing about sockets.
//! Requests that arrive meanwhile go through `commands::execute` as usual, which answers
//! BUSY or LOADING unless the command is allowed then (the table's `allow_busy` and
//! `loading` flags).

use std::cell::Cell;
use std::ptr::NonNull;

use crate::state::State;

/// What holds the loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Busy {
    /// A script ran past `lua-time-limit`.
    Script,
    /// A dataset is being loaded.
    Loading,
}

/// Redis's reply to commands not allowed while a script is busy.
pub const BUSY_SCRIPT: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
/// Redis's reply to commands not allowed while loading.
pub const LOADING: &str = "LOADING Redis is loading the dataset in memory";

/// The loop's side: one pass over the sockets, leaving out the client whose command is
/// running (it is not read from until its command ends, as Redis's protected clients).
pub trait Pump {
    fn serve_while_busy(&mut self, state: &mut State);
}

/// Progress of a load, for INFO persistence.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadingInfo {
    pub start_secs: i64,
    pub total_bytes: u64,
    pub loaded_bytes: u64,
    pub started_us: i64,
}

thread_local! {
    /// The pump of the command now running, if the loop installed one.
    static PUMP: Cell<Option<NonNull<dyn Pump>>> = const { Cell::new(None) };
    /// Set while a pump pass runs: a command it runs cannot start another one.
    static PUMPING: Cell<bool> = const { Cell::new(false) };
}

/// Installs `pump` for the duration of `f` (the loop wraps each command in it).
/// The pump must not be used through any other path while `f` runs.
pub fn with_pump<R>(pump: &mut (dyn Pump + 'static), f: impl FnOnce() -> R) -> R {
    struct Restore(Option<NonNull<dyn Pump>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            PUMP.with(|p| p.set(self.0));
        }
    }
    let _restore = Restore(PUMP.with(|p| p.replace(Some(NonNull::from(pump)))));
    f()
}

/// Lets the loop serve other clients once, if a pump is installed and none is running.
/// Called by long work at points where it holds no borrow into `state`.
pub fn serve_clients(state: &mut State) {
    if PUMPING.with(|p| p.get()) {
        return;
    }
    let Some(mut pump) = PUMP.with(|p| p.get()) else {
        return;
    };
    PUMPING.with(|p| p.set(true));
    // SAFETY: `with_pump` installed this pointer from a `&mut` that its caller does not
    // use while `f` runs (the loop passes its socket half, disjoint from `State`), and
    // restores the previous value when `f` ends; PUMPING rules out a second live `&mut`.
    unsafe { pump.as_mut() }.serve_while_busy(state);
    PUMPING.with(|p| p.set(false));
}

/// Marks the start of a load of `total_bytes`; clients are answered LOADING until
/// [`end_loading`].
pub fn start_loading(state: &mut State, total_bytes: u64) {
    state.busy = Some(Busy::Loading);
    state.loading = LoadingInfo {
        start_secs: crate::util::now_ms() / 1000,
        total_bytes,
        loaded_bytes: 0,
        started_us: crate::util::now_us(),
    };
}

pub fn end_loading(state: &mut State) {
    if state.busy == Some(Busy::Loading) {
        state.busy = None;
    }
}

/// How often a load lets clients in (Redis: every 2 MB read; time suits delayed loads too).
const LOADING_SERVE_INTERVAL_US: i64 = 2_000;

/// Called by loaders after each key: applies `key-load-delay`, records progress and
/// serves clients when the interval passed.
pub fn loading_progress(state: &mut State, loaded_bytes: u64, last_served_us: &mut i64) {
    crate::util::debug_delay(state.config.key_load_delay);
    state.loading.loaded_bytes = loaded_bytes;
    let now = crate::util::now_us();
    if now - *last_served_us >= LOADING_SERVE_INTERVAL_US {
        *last_served_us = now;
        serve_clients(state);
    }
}
