//! Whether a consumer of the log (read models, a mailer's state) is still
//! backed by the log it was built from.

use access_catalogue::damage::Damage;

/// Checks that a consumer of the log (read models, a mailer's state) is
/// backed by it: its checkpoint is not past the log's head, and the event at
/// its checkpoint is the one it read there (`hash`, when it kept one).
/// `place` names the consumer.
pub async fn check_consumer(
    log: &dyn crate::log::EventLog,
    place: &str,
    checkpoint: u64,
    hash: Option<[u8; 32]>,
) -> Result<(), crate::log::LogError> {
    if checkpoint == 0 {
        return Ok(());
    }
    let damaged = |d: Damage| crate::log::LogError::Damaged(d);
    let head = log.latest().await?;
    if checkpoint > head {
        return Err(damaged(
            Damage::new(
                place,
                format!(
                    "built from the log up to position {checkpoint}, but the log ends at {head}: acknowledged history is missing from the log"
                ),
            )
            .at_position(head + 1),
        ));
    }
    let Some(hash) = hash else { return Ok(()) };
    let found = log.read_from(checkpoint, 1).await?;
    match found.first() {
        Some(e) if e.position == checkpoint && e.hash == hash => Ok(()),
        found => Err(damaged(
            Damage::new(
                place,
                "the log holds another event where this last read: the log changed under it",
            )
            .at_position(checkpoint)
            .in_stream(found.map(|e| e.stream.to_string())),
        )),
    }
}
