//! The two threads behind every append, in a pipeline:
//! - the **stager** checks a group of appends (request ids, expected versions),
//!   seals their envelopes and builds their frames and index entries;
//! - the **syncer** writes the frames, `fdatasync`s, indexes, publishes the new
//!   head and answers.
//!
//! While the syncer waits on the disk, the stager prepares the next group on
//! top of the groups in flight (it sees their heads and request ids in its
//! overlay), and the syncer takes every group that is ready in one sync. A
//! failed write is cut off the file again; groups staged on top of it do not
//! start where the file now ends, so the syncer refuses them, and the stager
//! starts over from the durable state when it sees the failure count move.

use super::mark::{Mark, MarkFile};
use super::{Checkpoint, Job, Shared, StreamHead, WriterStats};
use crate::log::{AppendError, Committed, RequestRecord};
use access_catalogue::envelope::StreamId;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot, watch};

mod stager;
mod syncer;

use stager::Stager;
use syncer::Syncer;

/// The variable naming the test-only full-disk trigger file.
pub const DISK_FULL_TRIGGER_VAR: &str = "ACCESS_FAULT_DISK_FULL";

/// Most appends folded into one staged group.
const MAX_GROUP: usize = 256;

/// Staged groups waiting for the syncer: enough to keep it busy, few enough
/// that the stager's overlay stays small.
const IN_FLIGHT: usize = 4;

/// Most staged groups one sync takes.
const MAX_GROUPS_PER_SYNC: usize = 16;

/// What the syncer has made durable, as the stager reads it.
#[derive(Clone, Copy, Debug)]
struct Durable {
    head: u64,
    end: u64,
    /// Failed writes so far: a change tells the stager to start over.
    failures: u64,
}

/// One answer the syncer gives once the group is durable.
struct Pending {
    done: oneshot::Sender<Result<Committed, AppendError>>,
    committed: Committed,
    /// Counted as a new append (not a retry of one in flight).
    new: bool,
}

/// A staged group on its way to the disk.
struct Group {
    /// Where its frames go: the end of the group before it.
    base_end: u64,
    /// The head it was staged on.
    base_head: u64,
    frames: Vec<u8>,
    /// Index entries other than heads, each key once.
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    heads: HashMap<StreamId, StreamHead>,
    new_head: u64,
    answers: Vec<Pending>,
    /// The number of the last vault key its `K` frame carries.
    keys_through: Option<u64>,
}

/// What the stager remembers of a group until the index has it.
struct InFlight {
    new_head: u64,
    heads: HashMap<StreamId, StreamHead>,
    requests: HashMap<String, RequestRecord>,
}

/// Starts the stager and the syncer on the log opened at `checkpoint`.
pub(super) fn start(
    shared: Arc<Shared>,
    checkpoint: Checkpoint,
    mut mark: MarkFile,
    head_tx: watch::Sender<u64>,
    stats: Arc<WriterStats>,
    jobs: mpsc::Receiver<Job>,
) -> std::io::Result<()> {
    let durable = Arc::new(Mutex::new(Durable {
        head: checkpoint.position,
        end: checkpoint.offset,
        failures: 0,
    }));
    let (groups_tx, groups_rx) = std::sync::mpsc::sync_channel(IN_FLIGHT);
    // What recovery found whole is the floor from now on.
    mark.record_synced(Mark {
        offset: checkpoint.offset,
        position: checkpoint.position,
    })?;
    let syncer = Syncer {
        mark,
        shared: shared.clone(),
        durable: durable.clone(),
        head: checkpoint.position,
        end: checkpoint.offset,
        head_tx,
        stats,
        cut_back: None,
        disk_full_trigger: std::env::var_os(DISK_FULL_TRIGGER_VAR).map(PathBuf::from),
    };
    let stager = Stager {
        shared,
        durable,
        next: checkpoint.position + 1,
        end: checkpoint.offset,
        seen_failures: 0,
        keys_sent: 0,
        in_flight: VecDeque::new(),
        durable_heads: HashMap::new(),
    };
    std::thread::Builder::new()
        .name("event-log-sync".into())
        .spawn(move || syncer.run(groups_rx))?;
    std::thread::Builder::new()
        .name("event-log-writer".into())
        .spawn(move || stager.run(jobs, groups_tx))?;
    Ok(())
}

fn duplicate(rec: RequestRecord) -> Committed {
    Committed {
        first_position: rec.first_position,
        last_position: rec.last_position,
        reply: rec.reply,
        duplicate: true,
    }
}
