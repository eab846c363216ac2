//! The dataset as a whole on disk: writing every database to an RDB file (temp file,
//! fsync, rename), loading one at start-up or on DEBUG RELOAD, converting between the
//! server's values and the codec's neutral `RdbValue`, and the BGSAVE thread.
//!
//! The codec itself (format, encodings, checksums) is in `persist`; this module only
//! knows which of our values map to which RDB value.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::config::Config;
use crate::db::hash::{HashLimits, HashValue};
use crate::db::list::{ListConfig, ListValue};
use crate::db::set::{SetLimits, SetValue};
use crate::db::zset::{ZSetLimits, ZSetValue};
use crate::db::{Db, StrValue, Value};
use crate::persist::rdb::{RdbEvent, RdbReader, RdbValue, RdbWriter, WriteOptions};

pub fn list_config(c: &Config) -> ListConfig {
    ListConfig::new(c.list_max_listpack_size)
}

pub fn hash_limits(c: &Config) -> HashLimits {
    HashLimits {
        max_listpack_entries: c.hash_max_listpack_entries.max(0) as usize,
        max_listpack_value: c.hash_max_listpack_value.max(0) as usize,
    }
}

pub fn set_limits(c: &Config) -> SetLimits {
    SetLimits {
        max_intset_entries: c.set_max_intset_entries.max(0) as usize,
        max_listpack_entries: c.set_max_listpack_entries.max(0) as usize,
        max_listpack_value: c.set_max_listpack_value.max(0) as usize,
    }
}

pub fn zset_limits(c: &Config) -> ZSetLimits {
    ZSetLimits {
        max_listpack_entries: c.zset_max_listpack_entries.max(0) as usize,
        max_listpack_value: c.zset_max_listpack_value.max(0) as usize,
    }
}

pub fn write_options(c: &Config) -> WriteOptions {
    WriteOptions {
        compression: c.rdbcompression,
        checksum: c.rdbchecksum,
        set_max_intset_entries: c.set_max_intset_entries.max(0) as usize,
        hash_max_listpack_entries: c.hash_max_listpack_entries.max(0) as usize,
        hash_max_listpack_value: c.hash_max_listpack_value.max(0) as usize,
        zset_max_listpack_entries: c.zset_max_listpack_entries.max(0) as usize,
        zset_max_listpack_value: c.zset_max_listpack_value.max(0) as usize,
    }
}

/// Builds a server value from a loaded one, choosing encodings by the config as Redis
/// does when it loads. `None` for an empty collection (Redis skips those keys).
pub fn value_from_rdb(v: RdbValue, c: &Config) -> Option<Value> {
    Some(match v {
        RdbValue::Str(s) => Value::Str(StrValue::from_vec(s)),
        RdbValue::List(items) => {
            if items.is_empty() {
                return None;
            }
            let cfg = list_config(c);
            let mut l = ListValue::new();
            for it in &items {
                l.push_back(it, cfg);
            }
            Value::List(l)
        }
        RdbValue::Set(members) => {
            if members.is_empty() {
                return None;
            }
            let limits = set_limits(c);
            let mut s = SetValue::for_new_key(&members[0], members.len(), &limits);
            for m in &members {
                s.add(m, &limits);
            }
            Value::Set(s)
        }
        RdbValue::Hash(pairs) => {
            if pairs.is_empty() {
                return None;
            }
            let limits = hash_limits(c);
            let mut h = HashValue::new();
            for (f, v) in &pairs {
                h.set(f, v, &limits);
            }
            Value::Hash(h)
        }
        RdbValue::Stream(s) => Value::Stream(s),
        RdbValue::ZSet(pairs) => {
            if pairs.is_empty() {
                return None;
            }
            let limits = zset_limits(c);
            let longest = pairs.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
            let mut z = ZSetValue::with_hint(pairs.len(), longest, limits);
            for (m, s) in &pairs {
                z.insert(m, *s, limits);
            }
            Value::ZSet(z)
        }
    })
}

/// The codec's view of a value (copies the elements).
pub fn value_to_rdb(v: &Value) -> RdbValue {
    match v {
        Value::Str(s) => RdbValue::Str(s.as_bytes().into_owned()),
        Value::List(l) => RdbValue::List(l.iter().map(|e| e.to_vec()).collect()),
        Value::Set(s) => RdbValue::Set(s.iter().map(|m| m.to_vec()).collect()),
        Value::Hash(h) => RdbValue::Hash(h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect()),
        Value::ZSet(z) => RdbValue::ZSet(z.iter().map(|(m, s)| (m.to_vec(), s)).collect()),
        Value::Stream(s) => RdbValue::Stream(s.clone()),
    }
}

/// Writes every database to `path` through a temp file in the same directory, fsynced
/// and renamed over the target, so a failed save never damages the previous file.
pub fn save(dbs: &[Db], path: &Path, opts: WriteOptions) -> io::Result<()> {
    // A snapshot costs microseconds and is what the writer consumes (see `save_snapshot`).
    save_snapshot(dbs.to_vec(), path, opts, &SaveProgress::default())
}

/// What a save thread reports while it runs (INFO `current_save_keys_processed`), and
/// how much it sleeps per key (`rdb-key-save-delay`, for tests of long saves).
#[derive(Clone, Debug, Default)]
pub struct SaveProgress {
    pub keys_done: Arc<AtomicU64>,
    pub key_delay: i64,
    /// Set to stop the save (FLUSHALL kills Redis's saving child).
    pub abort: Arc<AtomicBool>,
}

impl SaveProgress {
    fn key_written(&self) -> io::Result<()> {
        if self.abort.load(Ordering::Relaxed) {
            return Err(io::Error::other("aborted"));
        }
        self.keys_done.fetch_add(1, Ordering::Relaxed);
        crate::util::debug_delay(self.key_delay);
        Ok(())
    }
}

/// `save` of a snapshot (see `snapshot`), consumed as it is written: each part of the
/// keyspace is let go once written, so the live dataset stops sharing it (its next write
/// there copies nothing) and memory the live side already copied is freed early.
pub fn save_snapshot(
    dbs: Vec<Db>,
    path: &Path,
    opts: WriteOptions,
    progress: &SaveProgress,
) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp: PathBuf = dir.join(format!(
        "temp-{}-{}.rdb",
        std::process::id(),
        crate::util::now_us()
    ));
    let result = write_file(dbs, &tmp, opts, progress).and_then(|_| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    } else if let Ok(d) = File::open(dir) {
        // Make the rename itself durable.
        let _ = d.sync_all();
    }
    result
}

fn write_file(
    dbs: Vec<Db>,
    tmp: &Path,
    opts: WriteOptions,
    progress: &SaveProgress,
) -> io::Result<()> {
    let file = File::create(tmp)?;
    let out = BufWriter::with_capacity(1 << 16, file);
    let mut inner = write_rdb(dbs, out, opts, progress)?;
    inner.flush()?;
    let file = inner.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()
}

/// Writes a snapshot of every database as an RDB image to `out` (a file, or memory for a
/// replica), consuming it as it goes (see `save_snapshot`).
pub fn write_rdb<W: Write>(
    dbs: Vec<Db>,
    out: W,
    opts: WriteOptions,
    progress: &SaveProgress,
) -> io::Result<W> {
    let mut w = RdbWriter::new(out, opts)?;
    w.write_standard_aux(crate::util::now_ms() / 1000, crate::alloc::allocated())?;
    for (i, db) in dbs.into_iter().enumerate() {
        if db.is_empty() {
            continue;
        }
        w.select_db(i as u64, db.len() as u64, db.expires_len() as u64)?;
        db.try_for_each_consuming(|k, v, expire| {
            w.write_entry(k, &value_to_rdb(v), expire)?;
            progress.key_written()
        })?;
    }
    w.finish()
}

/// What a load found.
#[derive(Debug, Default, Clone, Copy)]
pub struct LoadStats {
    pub keys: u64,
    pub expired: u64,
}

/// Loads `path` into the (empty) databases of `state`, answering LOADING to clients
/// meanwhile. Keys already expired are skipped, as a master does. Errors name the byte
/// offset and key when known.
pub fn load(path: &Path, state: &mut State) -> Result<LoadStats, String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    crate::busy::start_loading(state, len);
    let loaded = RdbReader::with_len(BufReader::with_capacity(1 << 16, file), len)
        .map_err(|e| e.to_string())
        .and_then(|mut reader| load_entries(state, &mut reader));
    crate::busy::end_loading(state);
    loaded
}

/// Loads the keys of an RDB image into `state.dbs` (the AOF's RDB preamble too), letting
/// the loop answer clients now and then (see `crate::busy`).
pub fn load_entries<R: io::Read>(
    state: &mut State,
    reader: &mut RdbReader<R>,
) -> Result<LoadStats, String> {
    let now = crate::util::now_ms();
    let mut stats = LoadStats::default();
    let mut last_served = crate::util::now_us();
    let base_offset = state.loading.loaded_bytes;
    while let Some(ev) = reader.next_event().map_err(|e| e.to_string())? {
        let RdbEvent::Entry(entry) = ev else {
            continue;
        };
        let dbs = state.dbs.len();
        let Some(db) = state.dbs.get_mut(entry.db as usize) else {
            return Err(format!(
                "FATAL: Data file was created with a Redis server configured to handle more than {dbs} databases. Exiting"
            ));
        };
        if entry.expire_ms.is_some_and(|t| t <= now) {
            stats.expired += 1;
            continue;
        }
        let Some(value) = value_from_rdb(entry.value, &state.config) else {
            continue;
        };
        db.set_with_expire(&entry.key, value, entry.expire_ms);
        stats.keys += 1;
        crate::busy::loading_progress(state, base_offset + reader.offset(), &mut last_served);
    }
    Ok(stats)
}

/// A BGSAVE in progress: a thread writing a copy of the dataset.
pub struct BgSave {
    pub handle: JoinHandle<io::Result<()>>,
    pub started: Instant,
    /// `dirty` when the copy was taken: what the save covers.
    pub dirty_at_start: u64,
    pub progress: SaveProgress,
    pub keys_total: u64,
    /// `dict::copied_bytes()` when the copy was taken.
    pub copied_at_start: u64,
}

impl BgSave {
    /// Bytes the live dataset copied since the snapshot (fork's copy-on-write).
    pub fn cow_size(&self) -> u64 {
        crate::db::dict::copied_bytes() - self.copied_at_start
    }

    pub fn keys_done(&self) -> u64 {
        self.progress.keys_done.load(Ordering::Relaxed)
    }
}

/// A point-in-time copy of every database for a background job (BGSAVE, AOF rewrite) to
/// read on its own thread while the loop keeps serving: our fork. Cloning a `Db` shares
/// its dicts' segments (see `db::dict`), so this costs about one reference count per 256
/// buckets, and later writes copy only the segments they touch while the copy lives.
/// Returns the copy and how long taking it stalled the loop, in microseconds (the
/// analogue of Redis's `latest_fork_usec`).
pub fn snapshot(dbs: &[Db]) -> (Vec<Db>, u64) {
    let t = Instant::now();
    let copy = dbs.to_vec();
    (copy, t.elapsed().as_micros() as u64)
}

/// Starts a BGSAVE of a snapshot of `dbs`; returns it and how long taking the snapshot
/// stalled the loop.
pub fn start_bgsave(
    dbs: &[Db],
    path: PathBuf,
    opts: WriteOptions,
    dirty: u64,
    key_delay: i64,
) -> io::Result<(BgSave, u64)> {
    let (copy, stall_us) = snapshot(dbs);
    let keys_total = copy.iter().map(|d| d.len() as u64).sum();
    let progress = SaveProgress {
        key_delay,
        ..SaveProgress::default()
    };
    let thread_progress = progress.clone();
    let handle = std::thread::Builder::new()
        .name("rudis-bgsave".into())
        .spawn(move || save_snapshot(copy, &path, opts, &thread_progress))?;
    Ok((
        BgSave {
            handle,
            started: Instant::now(),
            dirty_at_start: dirty,
            progress,
            keys_total,
            copied_at_start: crate::db::dict::copied_bytes(),
        },
        stall_us,
    ))
}

/// The RDB file path (`dbfilename`, relative to `dir`, which is the working directory).
pub fn rdb_path(state: &State) -> PathBuf {
    PathBuf::from(&state.config.dbfilename)
}

/// Saves in the foreground (SAVE, SHUTDOWN, FLUSHALL with save points, DEBUG RELOAD).
pub fn save_now(state: &mut State) -> io::Result<()> {
    let path = rdb_path(state);
    let opts = write_options(&state.config);
    match save(&state.dbs, &path, opts) {
        Ok(()) => {
            state.persistence.on_saved(state.dirty);
            state.dirty = 0;
            state.lastsave = crate::util::now_ms() / 1000;
            log::info!("DB saved on disk");
            Ok(())
        }
        Err(e) => {
            log::warn!("Failed saving the DB: {e}");
            state.persistence.last_save_ok = false;
            Err(e)
        }
    }
}

/// Starts a background save; false (and a log line) if one is already running.
pub fn bgsave(state: &mut State) -> io::Result<()> {
    if state.persistence.bgsave.is_some() {
        return Err(io::Error::other("Background save already in progress"));
    }
    let (job, stall_us) = start_bgsave(
        &state.dbs,
        rdb_path(state),
        write_options(&state.config),
        state.dirty,
        state.config.rdb_key_save_delay,
    )?;
    state.persistence.latest_copy_usec = stall_us;
    state.persistence.bgsave = Some(job);
    log::info!("Background saving started (dataset copied in {stall_us} us)");
    Ok(())
}

/// The persistence part of the cron: reap a finished BGSAVE, start one when a save
/// point is reached.
pub fn cron(state: &mut State) {
    if state
        .persistence
        .bgsave
        .as_ref()
        .is_some_and(|j| j.handle.is_finished())
        && let Some(job) = state.persistence.bgsave.take()
    {
        reap(state, job);
    }
    if state.persistence.bgsave.is_some() || state.config.save.0.is_empty() {
        return;
    }
    let now = crate::util::now_ms() / 1000;
    // After a failed save, retry no sooner than Redis's 5 seconds.
    if !state.persistence.last_save_ok && now - state.persistence.last_attempt < 5 {
        return;
    }
    let due = state
        .config
        .save
        .0
        .iter()
        .any(|&(secs, changes)| state.dirty >= changes as u64 && now - state.lastsave >= secs);
    if due && state.dirty > 0 {
        log::info!("{} changes in a while. Saving...", state.dirty);
        state.persistence.last_attempt = now;
        if let Err(e) = bgsave(state) {
            log::warn!("Can't save in background: {e}");
        }
    }
}

fn reap(state: &mut State, job: BgSave) {
    let secs = job.started.elapsed().as_secs() as i64;
    state.persistence.last_cow_size = job.cow_size();
    match job.handle.join() {
        Ok(Ok(())) => {
            log::info!("Background saving terminated with success");
            state.dirty = state.dirty.saturating_sub(job.dirty_at_start);
            state.lastsave = crate::util::now_ms() / 1000;
            state.persistence.on_saved(job.dirty_at_start);
            state.persistence.last_bgsave_ok = true;
        }
        Ok(Err(e)) => {
            log::warn!("Background saving error: {e}");
            state.persistence.last_bgsave_ok = false;
            state.persistence.last_save_ok = false;
        }
        Err(_) => {
            log::warn!("Background saving terminated by a panic");
            state.persistence.last_bgsave_ok = false;
            state.persistence.last_save_ok = false;
        }
    }
    state.persistence.last_bgsave_secs = secs;
}

/// Waits for a running BGSAVE (shutdown, DEBUG RELOAD, SAVE after BGSAVE ...).
/// Stops a running BGSAVE and waits for its thread; its temp file is removed and the
/// changes it would have covered still count as unsaved (FLUSHALL).
pub fn abort_bgsave(state: &mut State) {
    if let Some(job) = state.persistence.bgsave.take() {
        log::warn!("Killing running background save");
        job.progress.abort.store(true, Ordering::Relaxed);
        state.persistence.last_cow_size = job.cow_size();
        let _ = job.handle.join();
        log::warn!("Background saving terminated by signal 10");
    }
}

pub fn wait_bgsave(state: &mut State) {
    if let Some(job) = state.persistence.bgsave.take() {
        reap(state, job);
    }
}

/// Loads the RDB file at start-up if there is one.
pub fn load_at_startup(state: &mut State) -> Result<(), String> {
    let path = rdb_path(state);
    if !path.exists() {
        return Ok(());
    }
    let t = Instant::now();
    let stats = load(&path, state).map_err(|e| {
        format!(
            "Fatal error loading the DB ({}): {e}. Exiting.",
            path.display()
        )
    })?;
    state.persistence.loaded_keys = stats.keys;
    state.persistence.loaded_expired = stats.expired;
    log::info!(
        "Done loading RDB, keys loaded: {}, keys expired: {}.",
        stats.keys,
        stats.expired
    );
    log::info!(
        "DB loaded from disk: {:.3} seconds",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

use crate::state::State;

/// Persistence status shown by INFO persistence.
#[derive(Default)]
pub struct Persistence {
    pub bgsave: Option<BgSave>,
    pub last_bgsave_ok: bool,
    pub last_save_ok: bool,
    pub last_attempt: i64,
    pub last_bgsave_secs: i64,
    pub latest_copy_usec: u64,
    /// Copy-on-write bytes of the last BGSAVE (`rdb_last_cow_size`).
    pub last_cow_size: u64,
    pub saves: u64,
    pub loaded_keys: u64,
    pub loaded_expired: u64,
}

impl Persistence {
    pub fn new() -> Self {
        Persistence {
            last_bgsave_ok: true,
            last_save_ok: true,
            last_bgsave_secs: -1,
            ..Default::default()
        }
    }

    fn on_saved(&mut self, _dirty: u64) {
        self.saves += 1;
        self.last_save_ok = true;
    }
}
