//! A scope's last message as the stream's leader has it, asked once for
//! every reader that came while the question before was on its way.
//!
//! A decision must read what any replica wrote before it began: its reads
//! ask the leader for their scope's last message. Under load many readers
//! of one tenant ask at once; one question that set out after all of them
//! arrived answers them all, and the leader is asked at most once at a time
//! per scope.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

/// Scopes remembered at most; beyond, those not being asked are forgotten.
const SCOPES_KEPT: usize = 4_096;

/// The last question asked of a scope: when it set out, when it came back,
/// and its answer.
type Asked<E> = Option<(Instant, Instant, Result<u64, E>)>;

/// Per scope, the last answer and the lock held while asking.
pub(super) struct Lasts<E> {
    scopes: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Asked<E>>>>>,
}

impl<E> Default for Lasts<E> {
    fn default() -> Self {
        Lasts {
            scopes: Mutex::default(),
        }
    }
}

impl<E: Clone> Lasts<E> {
    /// The scope's last sequence, from an answer to a question that set out
    /// after this call began (`ask` is that question, asked when needed).
    /// A question that failed while this call waited for it fails this call
    /// too: asking again at once would only stack its timeout on the first.
    pub(super) async fn last<F>(&self, scope: &str, ask: F) -> Result<u64, E>
    where
        F: Future<Output = Result<u64, E>>,
    {
        let called = Instant::now();
        let cell = {
            let mut scopes = self.scopes.lock().unwrap_or_else(|p| p.into_inner());
            if scopes.len() > SCOPES_KEPT {
                scopes.retain(|_, c| Arc::strong_count(c) > 1);
            }
            scopes.entry(scope.to_owned()).or_default().clone()
        };
        let mut asked = cell.lock().await;
        match &*asked {
            Some((set_out, _, Ok(last))) if *set_out >= called => return Ok(*last),
            Some((_, back, Err(e))) if *back >= called => return Err(e.clone()),
            _ => {}
        }
        let set_out = Instant::now();
        let answer = ask.await;
        *asked = Some((set_out, Instant::now(), answer.clone()));
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn readers_arriving_while_a_question_is_out_share_the_next_one() {
        let lasts = Arc::new(Lasts::<()>::default());
        let asked = Arc::new(AtomicU64::new(0));
        let ask = |asked: Arc<AtomicU64>| async move {
            let n = asked.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok::<u64, ()>(n)
        };
        let first = {
            let (lasts, asked) = (lasts.clone(), asked.clone());
            tokio::spawn(async move { lasts.last("t.a", ask(asked)).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        // Arrived while the first question is out: it cannot answer them.
        let later: Vec<_> = (0..8)
            .map(|_| {
                let (lasts, asked) = (lasts.clone(), asked.clone());
                tokio::spawn(async move { lasts.last("t.a", ask(asked)).await })
            })
            .collect();
        assert_eq!(first.await.unwrap(), Ok(1));
        for l in later {
            assert_eq!(l.await.unwrap(), Ok(2), "one question after them all");
        }
        assert_eq!(asked.load(Ordering::SeqCst), 2);
        // Another scope is asked on its own.
        assert_eq!(lasts.last("t.b", ask(asked.clone())).await, Ok(3));
        // A reader coming after every question was answered asks again.
        assert_eq!(lasts.last("t.a", ask(asked.clone())).await, Ok(4));
    }

    #[tokio::test]
    async fn a_failed_question_fails_those_who_waited_for_it_only() {
        let lasts = Arc::new(Lasts::<&str>::default());
        let failing = {
            let lasts = lasts.clone();
            tokio::spawn(async move {
                let ask = async {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Err("timed out")
                };
                lasts.last("t.a", ask).await
            })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        let waited = lasts.last("t.a", async { Ok(7) }).await;
        assert_eq!(waited, Err("timed out"), "waited for it: its answer");
        assert_eq!(failing.await.unwrap(), Err("timed out"));
        // Coming after it failed: asked again.
        assert_eq!(lasts.last("t.a", async { Ok(8) }).await, Ok(8));
    }
}
