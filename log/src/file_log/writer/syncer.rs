//! The syncer: writes the staged groups, syncs once for all of them,
//! indexes, publishes the new head and answers; cuts a failed write off.

use super::*;
use crate::file_log::mark::{Mark, MarkFile};
use crate::file_log::{
    CHECKPOINT_KEY, Checkpoint, Shared, WriterStats, encode, head_key, unavailable,
};
use crate::log::AppendError;
use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

pub(super) struct Syncer {
    /// Where the acknowledged appends end, kept apart from the file.
    pub(super) mark: MarkFile,
    pub(super) shared: Arc<Shared>,
    pub(super) durable: Arc<Mutex<Durable>>,
    pub(super) head: u64,
    /// End of the synced appends in `events`.
    pub(super) end: u64,
    pub(super) head_tx: watch::Sender<u64>,
    pub(super) stats: Arc<WriterStats>,
    /// Set after a failed write whose bytes could not be cut off the file
    /// again: the length to cut back to before anything else is written.
    pub(super) cut_back: Option<u64>,
    /// Test-only: while this file exists, every write fails as on a full disk
    /// (`ACCESS_FAULT_DISK_FULL`), so the refusal and the recovery can be
    /// exercised against the real binary.
    pub(super) disk_full_trigger: Option<PathBuf>,
}

impl Syncer {
    pub(super) fn run(mut self, groups: std::sync::mpsc::Receiver<Group>) {
        while let Ok(first) = groups.recv() {
            let mut ready = vec![first];
            while ready.len() < MAX_GROUPS_PER_SYNC {
                match groups.try_recv() {
                    Ok(g) => ready.push(g),
                    Err(_) => break,
                }
            }
            self.commit(ready);
        }
        if let Err(e) = self.shared.keyspace.persist(fjall::PersistMode::SyncAll) {
            tracing::error!(error = %e, "final flush of the event log's index failed");
        }
        if let Err(e) = self.mark.sync_now() {
            tracing::error!(error = %e, "final sync of the log's synced mark failed");
        }
    }

    fn commit(&mut self, ready: Vec<Group>) {
        // Groups staged on top of a failed one do not start where the file
        // ends: refused, and the stager starts over.
        let (mut chained, mut stale) = (Vec::new(), Vec::new());
        let (mut head, mut end) = (self.head, self.end);
        for g in ready {
            if g.base_head == head && g.base_end == end {
                head = g.new_head;
                end += g.frames.len() as u64;
                chained.push(g);
            } else {
                stale.push(g);
            }
        }
        refuse(
            stale,
            "an append before it in the log could not be written; retry",
        );
        if chained.is_empty() {
            return;
        }
        let written = self.write(&chained, head, end);
        if let Err(e) = &written {
            tracing::error!(error = %e, "event log group commit failed; its appends are refused");
            refuse(chained, &e.to_string());
            return;
        }
        let mut acknowledged = 0;
        for g in &chained {
            acknowledged += g.answers.iter().filter(|a| a.new).count() as u64;
        }
        // Counted before anyone is answered, so a caller that saw its answer
        // also sees it counted.
        if acknowledged > 0 {
            metrics::histogram!("access_group_commit_size").record(acknowledged as f64);
            self.stats.commits.fetch_add(1, Ordering::Relaxed);
            self.stats
                .appends
                .fetch_add(acknowledged, Ordering::Relaxed);
        }
        for g in chained {
            for a in g.answers {
                // The caller may have gone away; the append stands either way.
                let _ = a.done.send(Ok(a.committed));
            }
        }
    }

    /// Writes and syncs the groups' frames, then indexes them; publishes the
    /// new head only then.
    fn write(&mut self, groups: &[Group], new_head: u64, end: u64) -> Result<(), AppendError> {
        if let Err(e) = self.repair() {
            self.failed();
            return Err(unavailable(e));
        }
        let file = &self.shared.file;
        let durable = if self.disk_full_trigger.as_ref().is_some_and(|t| t.exists()) {
            Err(std::io::Error::other(
                "No space left on device (os error 28; injected)",
            ))
        } else {
            groups
                .iter()
                .try_for_each(|g| file.write_all_at(&g.frames, g.base_end))
                .and_then(|()| file.sync_data())
        };
        if let Err(e) = durable {
            // Nothing of the groups may surface later: cut them off again.
            if file
                .set_len(self.end)
                .and_then(|()| file.sync_data())
                .is_err()
            {
                self.cut_back = Some(self.end);
            }
            self.failed();
            return Err(unavailable(e));
        }
        // The frames are whole and synced: readers may reach them before the
        // index entries that point at them are visible.
        self.shared.end.store(end, Ordering::Release);
        let index = &self.shared.index;
        let mut batch = self.shared.keyspace.batch();
        let mut heads = HashMap::new();
        for g in groups {
            for (k, v) in &g.entries {
                batch.insert(index, k.as_slice(), v.as_slice());
            }
            heads.extend(g.heads.iter());
        }
        for (stream, head) in heads {
            batch.insert(index, head_key(stream), encode(head));
        }
        batch.insert(
            index,
            CHECKPOINT_KEY,
            encode(&Checkpoint {
                position: new_head,
                offset: end,
            }),
        );
        if let Err(e) = batch.commit() {
            // The appends are durable but unreadable until a restart
            // re-indexes them: refuse everything rather than answer from an
            // index that misses them.
            self.shared.failed.store(true, Ordering::Release);
            tracing::error!(error = %e, "writing the event log's index failed; restart to rebuild it");
            return Err(unavailable(e));
        }
        self.mark.record(Mark {
            offset: end,
            position: new_head,
        });
        if let (Some(journal), Some(through)) = (
            self.shared.journal.get(),
            groups.iter().filter_map(|g| g.keys_through).max(),
        ) {
            journal.durable(through);
        }
        self.end = end;
        self.head = new_head;
        {
            let mut d = self.durable.lock().unwrap_or_else(|p| p.into_inner());
            d.head = new_head;
            d.end = end;
        }
        self.head_tx.send_replace(new_head);
        Ok(())
    }

    /// Tells the stager to start over from the durable state.
    fn failed(&self) {
        let mut d = self.durable.lock().unwrap_or_else(|p| p.into_inner());
        d.failures += 1;
    }

    /// Cuts off what a failed write left behind, if an earlier try could not.
    fn repair(&mut self) -> std::io::Result<()> {
        if let Some(len) = self.cut_back {
            self.shared.file.set_len(len)?;
            self.shared.file.sync_data()?;
            self.cut_back = None;
            tracing::info!("the event log's file is whole again");
        }
        Ok(())
    }
}

fn refuse(groups: Vec<Group>, why: &str) {
    for g in groups {
        for a in g.answers {
            let _ = a.done.send(Err(AppendError::Unavailable(why.to_owned())));
        }
    }
}
