//! The append-only file at run time, as Redis 7 keeps it: a directory (`appenddirname`)
//! holding a manifest, one base file (an RDB snapshot, or commands when
//! `aof-use-rdb-preamble no`) and incr files of the commands written since.
//!
//! Commands that change the dataset reach it through `crate::propagate`, in a form that
//! replays deterministically. The loop writes the buffer before it sends any reply
//! (`flush`), so under `appendfsync always` a client only sees acknowledged writes that
//! are on disk; `everysec` fsyncs on a background thread.
//!
//! BGREWRITEAOF opens a fresh incr file, so writes that arrive during the rewrite land
//! there and nothing needs buffering; a thread writes the new base from a copy of the
//! dataset; when it is done the manifest switches to the new base and the old files
//! are deleted.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::db::Db;
use crate::persist::aof::{
    AofFile, FileKind, LogEnd, Manifest, base_name, encode_command, incr_name, manifest_name,
    read_commands,
};
use crate::persist::rdb::{RdbReader, RdbValue};
use crate::state::{OwnedArgs, Session, State};

/// AOF state and statistics (INFO persistence).
pub struct Aof {
    /// Commands ready for the file, written by `flush` before replies go out.
    buf: Vec<u8>,
    /// The database the file's last SELECT chose (None: the next op writes one).
    selected_db: Option<usize>,
    /// The incr file commands are appended to; `Some` exactly while AOF is on.
    file: Option<File>,
    manifest: Manifest,
    fsync: FsyncWorker,
    last_fsync: Instant,
    /// Bytes written since the last fsync.
    unsynced: bool,
    /// Length of the open incr file: a failed write is cut back to it.
    incr_len: u64,
    /// The in-memory manifest names files the one on disk does not yet (AOF was just
    /// turned on and its base is being written): it is persisted only with the base.
    manifest_pending: bool,
    /// Why the last write failed (`-MISCONF Errors writing to the AOF file: ...`).
    pub last_write_error: Option<String>,
    pub current_size: u64,
    pub base_size: u64,
    pub rewrite: Option<Rewrite>,
    pub rewrite_scheduled: bool,
    pub last_rewrite_ok: bool,
    pub last_write_ok: bool,
    pub rewrites: u64,
    pub consecutive_failures: u64,
    pub last_rewrite_secs: i64,
    pub delayed_fsync: u64,
}

/// A background thread that fsyncs the AOF (everysec), so the loop never waits on disk.
struct FsyncWorker {
    tx: Option<Sender<File>>,
    busy: Arc<AtomicBool>,
}

impl FsyncWorker {
    fn new() -> FsyncWorker {
        FsyncWorker {
            tx: None,
            busy: Arc::new(AtomicBool::new(false)),
        }
    }

    fn request(&mut self, file: &File) -> bool {
        if self.busy.load(Ordering::Acquire) {
            return false;
        }
        if self.tx.is_none() {
            let (tx, rx) = channel::<File>();
            let busy = self.busy.clone();
            let spawned = std::thread::Builder::new()
                .name("rudis-aof-fsync".into())
                .spawn(move || {
                    for f in rx {
                        if let Err(e) = f.sync_data() {
                            log::warn!("Error syncing the AOF file: {e}");
                        }
                        busy.store(false, Ordering::Release);
                    }
                });
            if spawned.is_err() {
                return file.sync_data().is_ok();
            }
            self.tx = Some(tx);
        }
        let Ok(clone) = file.try_clone() else {
            return false;
        };
        self.busy.store(true, Ordering::Release);
        if let Some(tx) = &self.tx
            && tx.send(clone).is_err()
        {
            self.busy.store(false, Ordering::Release);
            return false;
        }
        true
    }
}

/// A BGREWRITEAOF in progress: a thread writing the new base file.
pub struct Rewrite {
    handle: JoinHandle<io::Result<u64>>,
    pub started: Instant,
    /// The base file being written (its final name, inside the AOF directory).
    base: AofFile,
    /// Incr files before this seq are covered by the new base.
    first_kept_incr: u64,
}

impl Default for Aof {
    fn default() -> Self {
        Aof {
            buf: Vec::new(),
            selected_db: None,
            file: None,
            manifest: Manifest::default(),
            fsync: FsyncWorker::new(),
            last_fsync: Instant::now(),
            unsynced: false,
            incr_len: 0,
            manifest_pending: false,
            last_write_error: None,
            current_size: 0,
            base_size: 0,
            rewrite: None,
            rewrite_scheduled: false,
            last_rewrite_ok: true,
            last_write_ok: true,
            rewrites: 0,
            consecutive_failures: 0,
            last_rewrite_secs: -1,
            delayed_fsync: 0,
        }
    }
}

impl Aof {
    /// True while commands are being logged.
    pub fn is_on(&self) -> bool {
        self.file.is_some()
    }

    pub fn buffer_len(&self) -> usize {
        self.buf.len()
    }

    pub fn fsync_pending(&self) -> bool {
        self.fsync.busy.load(Ordering::Acquire)
    }

    /// Appends one operation in `db`, with a SELECT first when the db changes (the
    /// `propagate` module calls this for every logged command while AOF is on).
    pub fn append(&mut self, db: usize, command: &[u8]) {
        if self.file.is_none() {
            return;
        }
        if self.selected_db != Some(db) {
            let mut num = itoa::Buffer::new();
            encode_command(
                &mut self.buf,
                [&b"SELECT"[..], num.format(db).as_bytes()].into_iter(),
            );
            self.selected_db = Some(db);
        }
        self.buf.extend_from_slice(command);
    }
}

// ---------------------------------------------------------------------------------
// Writing and fsyncing.
// ---------------------------------------------------------------------------------

/// Writes the buffered commands to the incr file, and fsyncs as `appendfsync` says.
/// The loop calls this before it flushes replies to clients.
pub fn flush(state: &mut State) {
    // Called on every loop pass: borrow the config and the AOF side by side, no copies.
    let State { config, aof, .. } = state;
    let Some(file) = aof.file.as_mut() else {
        return;
    };
    if !aof.buf.is_empty() {
        match file.write_all(&aof.buf) {
            Ok(()) => {
                aof.current_size += aof.buf.len() as u64;
                aof.incr_len += aof.buf.len() as u64;
                aof.unsynced = true;
                if !aof.last_write_ok {
                    log::warn!("AOF write error looks solved, Redis can write again.");
                }
                aof.last_write_ok = true;
                aof.last_write_error = None;
            }
            Err(e) => {
                // Cut off a partial write and keep the bytes for the next pass, as Redis
                // does; meanwhile writes are refused (MISCONF).
                let _ = file.set_len(aof.incr_len);
                if aof.last_write_ok {
                    log::warn!("Error writing to the AOF file: {e}");
                }
                aof.last_write_ok = false;
                aof.last_write_error = Some(crate::server::io_error_text(&e));
                return;
            }
        }
        aof.buf.clear();
        if aof.buf.capacity() > 4 << 20 {
            aof.buf.shrink_to(64 << 10);
        }
    }
    if !aof.unsynced {
        return;
    }
    match config.appendfsync.as_str() {
        "always" => {
            if let Err(e) = file.sync_data() {
                // Redis exits here: an acknowledged write could otherwise be lost.
                log::warn!(
                    "Can't persist AOF for fsync error when the AOF fsync policy is 'always': {e}. Exiting..."
                );
                std::process::exit(1);
            }
            aof.unsynced = false;
            aof.last_fsync = Instant::now();
        }
        // A busy fsync thread (slow disk) is asked again on the next pass.
        "everysec" if aof.last_fsync.elapsed().as_millis() >= 1000 && aof.fsync.request(file) => {
            aof.unsynced = false;
            aof.last_fsync = Instant::now();
        }
        _ => {}
    }
}

/// Writes and fsyncs everything now (shutdown, before a rewrite, when AOF is turned off).
pub fn flush_and_sync(state: &mut State) {
    flush(state);
    if let Some(f) = state.aof.file.as_ref() {
        let _ = f.sync_data();
        state.aof.unsynced = false;
    }
}

// ---------------------------------------------------------------------------------
// Files and the manifest.
// ---------------------------------------------------------------------------------

fn aof_dir(state: &State) -> PathBuf {
    PathBuf::from(&state.config.appenddirname)
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Writes the manifest through a temp file, fsynced and renamed, so a crash leaves
/// either the old or the new one.
fn persist_manifest(dir: &Path, name: &str, m: &Manifest) -> io::Result<()> {
    let tmp = dir.join(format!("temp-{name}"));
    let mut f = File::create(&tmp)?;
    f.write_all(m.to_text().as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, dir.join(name))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map_or(0, |m| m.len())
}

/// Opens a new incr file (the next seq) and makes it the one commands go to.
fn open_new_incr(state: &mut State) -> io::Result<()> {
    let dir = aof_dir(state);
    let seq = state.aof.manifest.next_incr_seq();
    let name = incr_name(&state.config.appendfilename, seq);
    let file = open_append(&dir.join(&name))?;
    state.aof.incr_len = file.metadata().map_or(0, |m| m.len());
    state.aof.manifest.incrs.push(AofFile {
        name,
        seq,
        kind: FileKind::Incr,
    });
    state.aof.file = Some(file);
    state.aof.selected_db = None;
    Ok(())
}

// ---------------------------------------------------------------------------------
// Rewriting (BGREWRITEAOF, turning AOF on, automatic growth).
// ---------------------------------------------------------------------------------

/// What BGREWRITEAOF replies on success.
pub enum RewriteStart {
    Started,
    Scheduled,
}

/// BGREWRITEAOF: start a rewrite now, or schedule it after a running BGSAVE.
pub fn bgrewrite(state: &mut State) -> Result<RewriteStart, String> {
    if state.aof.rewrite.is_some() {
        return Err("ERR Background append only file rewriting already in progress".into());
    }
    if state.persistence.bgsave.is_some() {
        state.aof.rewrite_scheduled = true;
        return Ok(RewriteStart::Scheduled);
    }
    start_rewrite(state)
        .map(|_| RewriteStart::Started)
        .map_err(|e| format!("ERR Can't execute an AOF background rewriting. Please check the server logs for more information. ({e})"))
}

/// Starts a rewrite: a new incr file takes the writes from now on, and a thread writes
/// a base file from a copy of the dataset.
pub fn start_rewrite(state: &mut State) -> io::Result<()> {
    let dir = aof_dir(state);
    fs::create_dir_all(&dir)?;
    load_manifest_if_unknown(state);
    let mut first_kept_incr = u64::MAX;
    if state.aof.file.is_some() {
        flush_and_sync(state);
        open_new_incr(state)?;
        first_kept_incr = state.aof.manifest.next_incr_seq() - 1;
        if !state.aof.manifest_pending {
            let name = manifest_name(&state.config.appendfilename);
            persist_manifest(&dir, &name, &state.aof.manifest)?;
        }
    }
    spawn_rewrite(state, first_kept_incr)
}

/// Hands a copy of the dataset to a thread that writes the next base file.
fn spawn_rewrite(state: &mut State, first_kept_incr: u64) -> io::Result<()> {
    let rdb = state.config.aof_use_rdb_preamble;
    let seq = state.aof.manifest.next_base_seq();
    let base = AofFile {
        name: base_name(&state.config.appendfilename, seq, rdb),
        seq,
        kind: FileKind::Base,
    };
    let path = aof_dir(state).join(&base.name);
    let (snapshot, _) = crate::dataset::snapshot(&state.dbs);
    let opts = crate::dataset::write_options(&state.config);
    let handle = std::thread::Builder::new()
        .name("rudis-aof-rewrite".into())
        .spawn(move || {
            write_base(snapshot, &path, rdb, opts)?;
            Ok(file_len(&path))
        })?;
    state.aof.rewrite = Some(Rewrite {
        handle,
        started: Instant::now(),
        base,
        first_kept_incr,
    });
    state.aof.rewrite_scheduled = false;
    log::info!("Background append only file rewriting started");
    Ok(())
}

/// Writes a base file: an RDB image, or commands with `aof-use-rdb-preamble no`.
fn write_base(
    snapshot: Vec<Db>,
    path: &Path,
    rdb: bool,
    opts: crate::persist::rdb::WriteOptions,
) -> io::Result<()> {
    if rdb {
        crate::dataset::save_snapshot(snapshot, path, opts, &Default::default())
    } else {
        write_command_base(&snapshot, path)
    }
}

/// With AOF off the manifest is not loaded at start-up; files of an earlier run may
/// still be there, and new file names must not collide with them.
fn load_manifest_if_unknown(state: &mut State) {
    if state.aof.manifest != Manifest::default() {
        return;
    }
    let path = aof_dir(state).join(manifest_name(&state.config.appendfilename));
    if let Ok(text) = fs::read_to_string(path)
        && let Ok(m) = Manifest::parse(&text)
    {
        state.aof.manifest = m;
    }
}

/// Waits for a running rewrite and installs its result (shutdown, DEBUG LOADAOF).
pub fn wait_rewrite(state: &mut State) {
    if let Some(job) = state.aof.rewrite.take() {
        finish_rewrite(state, job);
    }
}

fn finish_rewrite(state: &mut State, job: Rewrite) {
    let secs = job.started.elapsed().as_secs() as i64;
    let dir = aof_dir(state);
    let result = job
        .handle
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("rewrite thread panicked")));
    state.aof.last_rewrite_secs = secs;
    let size = match result {
        Ok(size) => size,
        Err(e) => {
            log::warn!("Background AOF rewrite terminated with error: {e}");
            let _ = fs::remove_file(dir.join(&job.base.name));
            rewrite_failed(state);
            return;
        }
    };
    let mut m = state.aof.manifest.clone();
    if let Some(old) = m.base.replace(job.base) {
        m.history.push(AofFile {
            kind: FileKind::History,
            ..old
        });
    }
    let (old, kept): (Vec<AofFile>, Vec<AofFile>) =
        m.incrs.drain(..).partition(|f| f.seq < job.first_kept_incr);
    m.incrs = kept;
    m.history.extend(old.into_iter().map(|f| AofFile {
        kind: FileKind::History,
        ..f
    }));
    // The new manifest does not name the replaced files; once it is on disk they go.
    let history = std::mem::take(&mut m.history);
    let name = manifest_name(&state.config.appendfilename);
    if let Err(e) = persist_manifest(&dir, &name, &m) {
        log::warn!("Background AOF rewrite failed to write the manifest: {e}");
        if let Some(b) = &m.base {
            let _ = fs::remove_file(dir.join(&b.name));
        }
        rewrite_failed(state);
        return;
    }
    for f in history {
        let _ = fs::remove_file(dir.join(&f.name));
    }
    state.aof.manifest = m;
    state.aof.manifest_pending = false;
    state.aof.base_size = size;
    state.aof.current_size = size
        + state
            .aof
            .manifest
            .incrs
            .iter()
            .map(|f| file_len(&dir.join(&f.name)))
            .sum::<u64>();
    state.aof.last_rewrite_ok = true;
    state.aof.consecutive_failures = 0;
    state.aof.rewrites += 1;
    log::info!("Background AOF rewrite terminated with success");
    log::info!("Background AOF rewrite finished successfully");
}

/// A failed rewrite is reported; if AOF was being turned on, the manifest on disk does
/// not cover what is logged yet, so the rewrite is tried again from the cron.
fn rewrite_failed(state: &mut State) {
    state.aof.last_rewrite_ok = false;
    state.aof.consecutive_failures += 1;
    if state.aof.manifest_pending && state.aof.is_on() {
        state.aof.rewrite_scheduled = true;
    }
}

/// Writes a base file of commands (`aof-use-rdb-preamble no`), through a temp file.
fn write_command_base(dbs: &[Db], path: &Path) -> io::Result<()> {
    /// Elements per command, as Redis's AOF_REWRITE_ITEMS_PER_CMD.
    const ITEMS_PER_CMD: usize = 64;
    let tmp = path.with_extension("tmp");
    let mut w = io::BufWriter::with_capacity(1 << 16, File::create(&tmp)?);
    let mut out = Vec::with_capacity(1 << 16);
    let mut num = itoa::Buffer::new();
    for (i, db) in dbs.iter().enumerate() {
        if db.is_empty() {
            continue;
        }
        encode_command(
            &mut out,
            [&b"SELECT"[..], num.format(i).as_bytes()].into_iter(),
        );
        for (key, value, expire) in db.iter() {
            let batch = |cmd: &[u8], items: Vec<Vec<u8>>, per: usize, out: &mut Vec<u8>| {
                for chunk in items.chunks(ITEMS_PER_CMD * per) {
                    let args = [cmd, &key[..]]
                        .into_iter()
                        .chain(chunk.iter().map(|x| &x[..]))
                        .collect::<Vec<&[u8]>>();
                    encode_command(out, args.into_iter());
                }
            };
            match crate::dataset::value_to_rdb(value) {
                RdbValue::Str(s) => {
                    encode_command(&mut out, [&b"SET"[..], &key[..], &s].into_iter());
                }
                RdbValue::List(items) => batch(b"RPUSH", items, 1, &mut out),
                RdbValue::Set(items) => batch(b"SADD", items, 1, &mut out),
                RdbValue::ZSet(pairs) => {
                    let flat = pairs
                        .into_iter()
                        .flat_map(|(m, s)| [crate::util::fmt_double(s).into_bytes(), m])
                        .collect();
                    batch(b"ZADD", flat, 2, &mut out);
                }
                RdbValue::Hash(pairs) => {
                    let flat = pairs.into_iter().flat_map(|(f, v)| [f, v]).collect();
                    batch(b"HMSET", flat, 2, &mut out);
                }
                RdbValue::Stream(s) => {
                    s.rewrite_commands(key, |args| encode_command(&mut out, args.iter().copied()));
                }
            }
            if let Some(t) = expire {
                encode_command(
                    &mut out,
                    [&b"PEXPIREAT"[..], &key[..], num.format(t).as_bytes()].into_iter(),
                );
            }
            if out.len() >= 1 << 16 {
                w.write_all(&out)?;
                out.clear();
            }
        }
    }
    w.write_all(&out)?;
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}

/// The AOF part of the cron: install a finished rewrite, start a scheduled one, start
/// one on growth (`auto-aof-rewrite-percentage`), and keep `everysec` fsyncs going.
pub fn cron(state: &mut State) {
    if state
        .aof
        .rewrite
        .as_ref()
        .is_some_and(|r| r.handle.is_finished())
        && let Some(job) = state.aof.rewrite.take()
    {
        finish_rewrite(state, job);
    }
    if state.aof.rewrite.is_some() || state.persistence.bgsave.is_some() {
        return;
    }
    let failed_recently = !state.aof.last_rewrite_ok && state.aof.consecutive_failures > 0;
    if state.aof.rewrite_scheduled {
        if let Err(e) = start_rewrite(state) {
            log::warn!("Can't start the scheduled AOF rewrite: {e}");
        }
        return;
    }
    if state.aof.is_on() && !failed_recently {
        let perc = state.config.auto_aof_rewrite_percentage;
        let base = state.aof.base_size.max(1);
        let size = state.aof.current_size;
        if perc > 0 && size > state.config.auto_aof_rewrite_min_size as u64 {
            let growth = (size.saturating_sub(base) * 100 / base) as i64;
            if growth >= perc {
                log::info!("Starting automatic rewriting of AOF on {growth}% growth");
                if let Err(e) = start_rewrite(state) {
                    log::warn!("Can't start the automatic AOF rewrite: {e}");
                }
            }
        }
    }
    // everysec: a quiet server still gets its last writes fsynced within a second.
    flush(state);
}

// ---------------------------------------------------------------------------------
// Turning AOF on and off at run time (CONFIG SET appendonly).
// ---------------------------------------------------------------------------------

/// CONFIG SET appendonly yes: a rewrite writes the base of what is in memory now, and a
/// new incr file takes the writes from here. The manifest is written only when the base
/// exists, so a crash before that leaves the previous AOF as it was.
pub fn turn_on(state: &mut State) -> io::Result<()> {
    if state.aof.is_on() {
        return Ok(());
    }
    fs::create_dir_all(aof_dir(state))?;
    wait_rewrite(state);
    load_manifest_if_unknown(state);
    open_new_incr(state)?;
    state.aof.manifest_pending = true;
    state.aof.current_size = 0;
    let first_kept_incr = state.aof.manifest.next_incr_seq() - 1;
    if let Err(e) = spawn_rewrite(state, first_kept_incr) {
        state.aof.file = None;
        state.aof.manifest.incrs.pop();
        return Err(e);
    }
    Ok(())
}

/// CONFIG SET appendonly no: write and fsync what is buffered, then stop logging.
pub fn turn_off(state: &mut State) {
    flush_and_sync(state);
    if let Some(job) = state.aof.rewrite.take() {
        // A thread cannot be killed: its result is dropped and its file removed.
        log::info!("Killing running AOF rewrite child: {}", std::process::id());
        let path = aof_dir(state).join(&job.base.name);
        std::thread::spawn(move || {
            let _ = job.handle.join();
            let _ = fs::remove_file(path);
        });
    }
    state.aof.file = None;
    state.aof.selected_db = None;
    log::info!("AOF is now off");
}

// ---------------------------------------------------------------------------------
// Loading at start-up and DEBUG LOADAOF.
// ---------------------------------------------------------------------------------

/// The client AOF commands are replayed as: it never blocks, replies go nowhere.
pub const LOADING_CLIENT: usize = usize::MAX;

/// Loads the AOF (start-up with `appendonly yes`), upgrading a Redis 6 single-file
/// AOF to the multi-part layout, then opens the incr file writes go to. With no AOF
/// at all, as Redis 7 does, the dataset starts empty and a base file is created.
pub fn load_at_startup(state: &mut State) -> Result<(), String> {
    let mut manifest = load_from_disk(state)?;
    let dir = aof_dir(state);
    fs::create_dir_all(&dir).map_err(|e| format!("Can't create the AOF directory: {e}"))?;
    // Open the file writes go to, creating the base first when there is none.
    if manifest.base.is_none() && manifest.incrs.is_empty() {
        let rdb = state.config.aof_use_rdb_preamble;
        let base = AofFile {
            name: base_name(&state.config.appendfilename, 1, rdb),
            seq: 1,
            kind: FileKind::Base,
        };
        let path = dir.join(&base.name);
        let opts = crate::dataset::write_options(&state.config);
        write_base(crate::dataset::snapshot(&state.dbs).0, &path, rdb, opts)
            .map_err(|e| format!("Can't create the AOF base file: {e}"))?;
        log::info!("Creating AOF base file {} on server start", base.name);
        state.aof.base_size = file_len(&path);
        state.aof.current_size = state.aof.base_size;
        manifest.base = Some(base);
    }
    state.aof.manifest = manifest;
    match state.aof.manifest.incrs.last() {
        Some(last) => {
            let f = open_append(&dir.join(&last.name))
                .map_err(|e| format!("Can't open the append-only file {}: {e}", last.name))?;
            state.aof.file = Some(f);
        }
        None => {
            open_new_incr(state).map_err(|e| format!("Can't create the AOF incr file: {e}"))?;
            if let Some(f) = state.aof.manifest.incrs.last() {
                log::info!("Creating AOF incr file {} on server start", f.name);
            }
        }
    }
    let mname = manifest_name(&state.config.appendfilename);
    persist_manifest(&dir, &mname, &state.aof.manifest)
        .map_err(|e| format!("Can't write the AOF manifest: {e}"))?;
    Ok(())
}

/// Reads the manifest (or upgrades a single-file AOF) and replays its files into the
/// (empty) dataset; returns the manifest.
fn load_from_disk(state: &mut State) -> Result<Manifest, String> {
    let dir = aof_dir(state);
    let mname = manifest_name(&state.config.appendfilename);
    let mpath = dir.join(&mname);
    let old_single = PathBuf::from(&state.config.appendfilename);
    let manifest = if mpath.exists() {
        let text = fs::read_to_string(&mpath)
            .map_err(|e| format!("Can't read the AOF manifest {}: {e}", mpath.display()))?;
        Manifest::parse(&text).map_err(|e| format!("{e} in {}", mpath.display()))?
    } else if old_single.is_file() {
        upgrade_single_file(&dir, &mname, &old_single, &state.config.appendfilename)?
    } else {
        Manifest::default()
    };
    let t = Instant::now();
    let files: Vec<AofFile> = manifest
        .base
        .iter()
        .chain(&manifest.incrs)
        .cloned()
        .collect();
    let size_of_all = files
        .iter()
        .filter_map(|f| fs::metadata(dir.join(&f.name)).ok())
        .map(|m| m.len())
        .sum();
    crate::busy::start_loading(state, size_of_all);
    let loaded = load_files(state, &dir, &files);
    crate::busy::end_loading(state);
    let (total, loaded_any) = loaded?;
    if loaded_any {
        log::info!(
            "DB loaded from append only file: {:.3} seconds",
            t.elapsed().as_secs_f64()
        );
    }
    // Replaying counted as commands and changes; a fresh server shows neither.
    state.stats.commands.clear();
    state.stats.commands_processed = 0;
    state.dirty = 0;
    state.aof.current_size = total;
    Ok(manifest)
}

/// Loads the files of a manifest in order; returns the bytes read and whether any file
/// had content.
fn load_files(state: &mut State, dir: &Path, files: &[AofFile]) -> Result<(u64, bool), String> {
    let mut total = 0;
    let mut loaded_any = false;
    for (i, f) in files.iter().enumerate() {
        let path = dir.join(&f.name);
        let last = i + 1 == files.len();
        let data = match fs::read(&path) {
            Ok(d) => d,
            // Redis tolerates a missing incr file only if it is the last one and empty.
            Err(e) if e.kind() == io::ErrorKind::NotFound && last && f.kind == FileKind::Incr => {
                continue;
            }
            Err(e) => return Err(format!("Can't open the append-only file {}: {e}", f.name)),
        };
        total += data.len() as u64;
        loaded_any |= !data.is_empty();
        state.loading.loaded_bytes = total - data.len() as u64;
        load_file(state, &path, &data, last)?;
        if f.kind == FileKind::Base {
            state.aof.base_size = data.len() as u64;
        }
    }
    Ok((total, loaded_any))
}

/// A Redis 6 `appendonly.aof` in `dir`: move it into the AOF directory as the base.
fn upgrade_single_file(
    dir: &Path,
    mname: &str,
    old: &Path,
    appendfilename: &str,
) -> Result<Manifest, String> {
    fs::create_dir_all(dir).map_err(|e| format!("Can't create the AOF directory: {e}"))?;
    fs::rename(old, dir.join(appendfilename))
        .map_err(|e| format!("Can't move {} into {}: {e}", old.display(), dir.display()))?;
    let m = Manifest {
        base: Some(AofFile {
            name: appendfilename.to_string(),
            seq: 1,
            kind: FileKind::Base,
        }),
        ..Manifest::default()
    };
    persist_manifest(dir, mname, &m).map_err(|e| format!("Can't write the AOF manifest: {e}"))?;
    log::info!("Successfully migrated an old-style AOF into the AOF directory");
    Ok(m)
}

/// Loads one AOF file: an RDB preamble if it starts with one, then commands.
/// A truncated tail is cut off (aof-load-truncated) only in the last file.
fn load_file(state: &mut State, path: &Path, data: &[u8], last: bool) -> Result<(), String> {
    let mut offset = 0;
    if data.starts_with(b"REDIS") {
        offset = load_rdb_preamble(state, data).map_err(|e| {
            format!(
                "Bad RDB preamble in the append only file {}: {e}",
                path.display()
            )
        })?;
    }
    let mut session = Session {
        authenticated: true,
        ..Session::default()
    };
    let mut reply = Vec::new();
    let mut last_served = crate::util::now_us();
    let base = state.loading.loaded_bytes;
    let end = read_commands(&data[offset..], |args| {
        if crate::commands::lookup(args[0]).is_none() {
            return Err(format!(
                "Unknown command '{}' reading the append only file {}",
                String::from_utf8_lossy(args[0]),
                path.display()
            ));
        }
        let owned = OwnedArgs::from_slices(args.iter().copied());
        reply.clear();
        crate::commands::execute(
            state,
            LOADING_CLIENT,
            &mut session,
            &crate::commands::Args::owned(&owned),
            &mut reply,
        );
        crate::busy::loading_progress(state, base, &mut last_served);
        Ok(())
    })?;
    match end {
        LogEnd::Complete => Ok(()),
        LogEnd::Truncated { valid_len } if last && state.config.aof_load_truncated => {
            let keep = (offset + valid_len) as u64;
            log::warn!(
                "!!! Warning: short read while loading the AOF file {}!!!",
                path.display()
            );
            log::warn!(
                "!!! Truncating the AOF {} at offset {keep} !!!",
                path.display()
            );
            OpenOptions::new()
                .write(true)
                .open(path)
                .and_then(|f| f.set_len(keep))
                .map_err(|e| format!("Error truncating the AOF file {}: {e}", path.display()))?;
            log::warn!(
                "AOF {} loaded anyway because aof-load-truncated is enabled",
                path.display()
            );
            Ok(())
        }
        LogEnd::Truncated { .. } => Err(format!(
            "Unexpected end of file reading the append only file {}. You can: 1) Make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>. 2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server.",
            path.display()
        )),
        LogEnd::Corrupt { offset: at, reason } => Err(format!(
            "{reason} {} (at byte {}): make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>",
            path.display(),
            offset + at
        )),
    }
}

/// Loads an RDB image at the start of `data`; returns how many bytes it took.
fn load_rdb_preamble(state: &mut State, data: &[u8]) -> Result<usize, String> {
    let mut reader = RdbReader::from_slice(data).map_err(|e| e.to_string())?;
    crate::dataset::load_entries(state, &mut reader)?;
    Ok(reader.offset() as usize)
}

/// DEBUG LOADAOF: write out what is buffered, empty the dataset, load the AOF again.
/// As Redis, it reads what is on disk even with AOF off (after a BGREWRITEAOF).
pub fn reload(state: &mut State) -> Result<(), String> {
    wait_rewrite(state);
    flush_and_sync(state);
    for db in &mut state.dbs {
        db.clear();
    }
    // The replay must not log itself: the open incr file stays aside meanwhile.
    let file = state.aof.file.take();
    let loaded = load_from_disk(state);
    state.aof.file = file;
    state.aof.manifest = loaded?;
    Ok(())
}

/// INFO persistence: the aof_* fields.
pub fn info(state: &State, out: &mut String) {
    use std::fmt::Write as _;
    let a = &state.aof;
    let _ = write!(
        out,
        "aof_enabled:{}\r\naof_rewrite_in_progress:{}\r\naof_rewrite_scheduled:{}\r\naof_last_rewrite_time_sec:{}\r\naof_current_rewrite_time_sec:{}\r\naof_last_bgrewrite_status:{}\r\naof_rewrites:{}\r\naof_rewrites_consecutive_failures:{}\r\naof_last_write_status:{}\r\naof_last_cow_size:0\r\nmodule_fork_in_progress:0\r\nmodule_fork_last_cow_size:0\r\n",
        state.config.appendonly as i32,
        a.rewrite.is_some() as i32,
        a.rewrite_scheduled as i32,
        a.last_rewrite_secs,
        a.rewrite
            .as_ref()
            .map_or(-1, |r| r.started.elapsed().as_secs() as i64),
        if a.last_rewrite_ok { "ok" } else { "err" },
        a.rewrites,
        a.consecutive_failures,
        if a.last_write_ok { "ok" } else { "err" },
    );
    if a.is_on() {
        let _ = write!(
            out,
            "aof_current_size:{}\r\naof_base_size:{}\r\naof_pending_rewrite:{}\r\naof_buffer_length:{}\r\naof_pending_bio_fsync:{}\r\naof_delayed_fsync:{}\r\n",
            a.current_size,
            a.base_size,
            a.rewrite_scheduled as i32,
            a.buf.len(),
            a.fsync_pending() as i32,
            a.delayed_fsync,
        );
    }
}
