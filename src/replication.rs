//! The master side of replication. A replica (a real redis-server with `replicaof`, or
//! the TCL suite's `attach_to_replication_stream`) sends SYNC or PSYNC, receives an RDB
//! image of the dataset, then the stream of propagated commands (`crate::propagate`),
//! with PINGs every `repl-ping-replica-period` seconds so it knows the link is alive.
//! Replies to replicas go through the outbox like any message to another client.

use std::time::Instant;

use crate::state::{ClientKey, State};

/// One attached replica.
#[derive(Debug)]
pub struct Replica {
    pub client: ClientKey,
    /// REPLCONF listening-port, for INFO replication.
    pub listening_port: u16,
    /// The last REPLCONF ACK offset.
    pub ack_offset: u64,
    pub ack_time: Instant,
    /// Set until the RDB image is sent: the stream collects in its backlog meanwhile.
    sync: Option<PendingSync>,
}

/// An RDB image being written for a replica, and the stream it must be followed by.
#[derive(Debug)]
struct PendingSync {
    job: std::thread::JoinHandle<std::io::Result<Vec<u8>>>,
    backlog: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct Replication {
    pub replicas: Vec<Replica>,
    /// The database the stream's last SELECT chose (None: the next command writes one).
    selected_db: Option<usize>,
    /// Bytes sent down the stream so far (`master_repl_offset`).
    pub offset: u64,
    last_ping: Option<Instant>,
    /// Listening ports announced by clients that have not sent SYNC/PSYNC yet.
    announced_ports: Vec<(ClientKey, u16)>,
}

impl Replication {
    pub fn has_replicas(&self) -> bool {
        !self.replicas.is_empty()
    }

    pub fn is_replica(&self, client: ClientKey) -> bool {
        self.replicas.iter().any(|r| r.client == client)
    }

    /// REPLCONF listening-port, sent before PSYNC: kept until the replica attaches.
    pub fn set_listening_port(&mut self, client: ClientKey, port: u16) {
        match self.replicas.iter_mut().find(|r| r.client == client) {
            Some(r) => r.listening_port = port,
            None => {
                self.announced_ports.retain(|(c, _)| *c != client);
                self.announced_ports.push((client, port));
            }
        }
    }

    /// Online replicas that acknowledged within `max_lag` seconds (Redis's
    /// repl_good_slaves_count, for min-replicas-to-write).
    pub fn good_replicas(&self, max_lag: i64) -> usize {
        self.replicas
            .iter()
            .filter(|r| r.sync.is_none() && r.ack_time.elapsed().as_secs() as i64 <= max_lag)
            .count()
    }

    pub fn acknowledge(&mut self, client: ClientKey, offset: u64) {
        if let Some(r) = self.replicas.iter_mut().find(|r| r.client == client) {
            r.ack_offset = offset;
            r.ack_time = Instant::now();
        }
    }
}

/// Sends one propagated command in `db` to every replica.
pub fn feed(state: &mut State, db: usize, command: &[u8]) {
    if state.replication.replicas.is_empty() {
        return;
    }
    if state.replication.selected_db != Some(db) {
        let mut select = Vec::with_capacity(24);
        let mut num = itoa::Buffer::new();
        crate::persist::aof::encode_command(
            &mut select,
            [&b"SELECT"[..], num.format(db).as_bytes()].into_iter(),
        );
        state.replication.selected_db = Some(db);
        send(state, &select);
    }
    send(state, command);
}

fn send(state: &mut State, bytes: &[u8]) {
    for r in &mut state.replication.replicas {
        match &mut r.sync {
            Some(sync) => sync.backlog.extend_from_slice(bytes),
            None => state.outbox.send(r.client, bytes),
        }
    }
    state.replication.offset += bytes.len() as u64;
}

/// SYNC / PSYNC: answers PSYNC's `+FULLRESYNC` at once and starts writing an RDB image
/// of a snapshot on a thread, so the loop never waits for it; `poll_syncs` sends it when
/// it is ready, followed by the commands that arrived meanwhile.
pub fn attach(state: &mut State, client: ClientKey, psync: bool, out: &mut Vec<u8>) {
    if state.replication.is_replica(client) {
        return;
    }
    let opts = crate::dataset::write_options(&state.config);
    let (snapshot, _) = crate::dataset::snapshot(&state.dbs);
    let job = std::thread::Builder::new()
        .name("rudis-repl-rdb".into())
        .spawn(move || crate::dataset::write_rdb(snapshot, Vec::new(), opts, &Default::default()));
    let job = match job {
        Ok(job) => job,
        Err(e) => {
            log::warn!("Can't start the RDB for a replica: {e}");
            return;
        }
    };
    if psync {
        out.extend_from_slice(
            format!(
                "+FULLRESYNC {} {}\r\n",
                state.run_id, state.replication.offset
            )
            .as_bytes(),
        );
    }
    log::info!("Starting BGSAVE for SYNC with target: replica's socket");
    let repl = &mut state.replication;
    let listening_port = repl
        .announced_ports
        .iter()
        .find(|(c, _)| *c == client)
        .map_or(0, |(_, p)| *p);
    repl.announced_ports.retain(|(c, _)| *c != client);
    repl.replicas.push(Replica {
        client,
        listening_port,
        ack_offset: 0,
        ack_time: Instant::now(),
        sync: Some(PendingSync {
            job,
            backlog: Vec::new(),
        }),
    });
    // The stream after the image starts with a SELECT.
    repl.selected_db = None;
}

/// Sends finished RDB images to their replicas, then what was streamed meanwhile.
pub fn poll_syncs(state: &mut State) {
    if !state
        .replication
        .replicas
        .iter()
        .any(|r| r.sync.as_ref().is_some_and(|s| s.job.is_finished()))
    {
        return;
    }
    let mut failed = Vec::new();
    for r in &mut state.replication.replicas {
        if !r.sync.as_ref().is_some_and(|s| s.job.is_finished()) {
            continue;
        }
        let Some(sync) = r.sync.take() else { continue };
        match sync.job.join() {
            Ok(Ok(rdb)) => {
                let mut bytes = format!("${}\r\n", rdb.len()).into_bytes();
                bytes.extend_from_slice(&rdb);
                bytes.extend_from_slice(&sync.backlog);
                state.outbox.send(r.client, &bytes);
                log::info!("Synchronization with replica succeeded");
            }
            Ok(Err(e)) => {
                log::warn!("Can't produce the RDB for a replica: {e}");
                failed.push(r.client);
            }
            Err(_) => failed.push(r.client),
        }
    }
    for client in failed {
        state.kill_requests.push(client);
    }
}

/// A client went away: if it was a replica, stop feeding it.
pub fn forget(state: &mut State, client: ClientKey) {
    state
        .replication
        .announced_ports
        .retain(|(c, _)| *c != client);
    let before = state.replication.replicas.len();
    state.replication.replicas.retain(|r| r.client != client);
    if state.replication.replicas.len() != before {
        log::info!("Connection with replica lost.");
    }
}

/// The replication part of the cron: PING replicas every `repl-ping-replica-period`.
pub fn cron(state: &mut State) {
    if state.replication.replicas.is_empty() {
        state.replication.last_ping = None;
        return;
    }
    let period = state.config.repl_ping_replica_period.max(1) as u64;
    // The first PING comes one period after a replica attached.
    let last = *state.replication.last_ping.get_or_insert_with(Instant::now);
    if last.elapsed().as_secs() >= period {
        state.replication.last_ping = Some(Instant::now());
        send(state, b"*1\r\n$4\r\nPING\r\n");
    }
}

/// INFO replication.
pub fn info(state: &State, out: &mut String) {
    use std::fmt::Write as _;
    let r = &state.replication;
    let _ = write!(
        out,
        "# Replication\r\nrole:master\r\nconnected_slaves:{}\r\n",
        r.replicas.len()
    );
    for (i, rep) in r.replicas.iter().enumerate() {
        let ip = state
            .sessions
            .get(rep.client)
            .and_then(|s| s.addr.rsplit_once(':').map(|(ip, _)| ip.to_string()))
            .unwrap_or_default();
        let _ = write!(
            out,
            "slave{i}:ip={ip},port={},state={},offset={},lag={}\r\n",
            rep.listening_port,
            if rep.sync.is_some() {
                "wait_bgsave"
            } else {
                "online"
            },
            rep.ack_offset,
            rep.ack_time.elapsed().as_secs()
        );
    }
    let _ = write!(
        out,
        "master_failover_state:no-failover\r\nmaster_replid:{}\r\nmaster_replid2:0000000000000000000000000000000000000000\r\nmaster_repl_offset:{}\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:0\r\nrepl_backlog_size:{}\r\nrepl_backlog_first_byte_offset:0\r\nrepl_backlog_histlen:0\r\n",
        state.run_id, r.offset, state.config.repl_backlog_size
    );
}
