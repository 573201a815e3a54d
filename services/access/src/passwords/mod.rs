//! Password hashing: argon2id on a fixed set of threads, one a core, each
//! with its own hashing memory allocated once and reused.
//!
//! A hash at the default cost fills 19 MiB. Allocated per hash, those blocks
//! end up in the allocator's per-thread arenas and stay there: a few hundred
//! hashes left glibc holding hundreds of MiB it never returned. Reusing one
//! buffer a thread makes the cost exact: cores × the configured memory,
//! whatever the burst.
//!
//! Hashes imported from other systems ([`foreign`]) are checked here too,
//! and take at least as long as one of ours: a wrong password says nothing
//! about where an account's hash came from.

pub mod foreign;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The longest password input looked at, on every path: longer ones are
/// wrong (or refused) before any hashing.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashCost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Iterations.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for HashCost {
    /// OWASP's argon2id recommendation: 19 MiB, 2 iterations, 1 lane.
    fn default() -> Self {
        HashCost {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// Hashes and verifies passwords with argon2id, off the async threads.
#[derive(Clone)]
pub struct Passwords {
    params: Params,
    /// A hash of a random password, verified against when the account is
    /// unknown so that both answers take the same time.
    dummy_hash: String,
    /// One hash per core at a time: more only share the cores and each
    /// other's memory bandwidth, and every caller waits longer.
    cores: Arc<tokio::sync::Semaphore>,
    threads: HashThreads,
    /// How our own hashes begin (algorithm, version, cost): others are
    /// checked in their own way and padded to [`Passwords::native`].
    native_prefix: String,
    /// How long a check of one of our hashes takes, nanoseconds, as a
    /// moving average of the checks made.
    native: Arc<AtomicU64>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passwords")
    }
}

impl Passwords {
    /// A hasher with `cost`.
    pub fn new(cost: HashCost) -> anyhow::Result<Self> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
            .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        let dummy: [u8; 16] = rand::random();
        let mut memory = Memory::new(&params);
        let dummy_hash = hash_with(&params, &mut memory, hex::encode(dummy).as_bytes())?;
        // Timed with the memory already touched, as every later check is.
        let started = Instant::now();
        verify_with(&dummy_hash, &mut memory, b"");
        let native = Arc::new(AtomicU64::new(started.elapsed().as_nanos() as u64));
        let native_prefix = dummy_hash
            .rsplitn(3, '$')
            .nth(2)
            .map(|p| format!("{p}$"))
            .unwrap_or_default();
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = HashThreads::start(cores, &params)?;
        Ok(Passwords {
            params,
            dummy_hash,
            cores: Arc::new(tokio::sync::Semaphore::new(cores)),
            threads,
            native_prefix,
            native,
        })
    }

    /// The PHC string of a new password.
    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        if password.len() > MAX_PASSWORD_BYTES {
            anyhow::bail!("a password over {MAX_PASSWORD_BYTES} bytes is never hashed");
        }
        let params = self.params.clone();
        let _core = self.cores.acquire().await?;
        self.threads
            .run(move |memory| hash_with(&params, memory, password.as_bytes()))
            .await
            .ok_or_else(|| anyhow::anyhow!("the hashing threads are gone"))?
    }

    /// Whether `password` matches `stored` (one of our hashes, or one an
    /// import kept: see [`foreign`]); with `None`, spends the same time on a
    /// dummy hash and answers false.
    pub async fn verify(&self, stored: Option<String>, password: String) -> bool {
        // No password this long was ever set: wrong, without hashing it, the
        // same for every account and for none.
        if password.len() > MAX_PASSWORD_BYTES {
            return false;
        }
        let started = Instant::now();
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy_hash.clone());
        let native = stored.starts_with(&self.native_prefix);
        let matched = match self.cores.acquire().await {
            Ok(_core) => self
                .threads
                .run(move |memory| {
                    let started = Instant::now();
                    let matched = if native {
                        verify_with(&stored, memory, password.as_bytes())
                    } else {
                        foreign::ForeignHash::parse(&stored).is_ok_and(|hash| {
                            hash.matches(password.as_bytes(), |phc, pw| {
                                verify_with(phc, memory, pw)
                            })
                        })
                    };
                    (matched, started.elapsed())
                })
                .await
                .map(|(matched, took)| {
                    if native {
                        self.note_native(took);
                    }
                    matched
                })
                .unwrap_or(false),
            Err(_) => false,
        };
        if !native {
            // Another system's hash may be cheaper than ours: the answer
            // waits as long as ours would have taken.
            let ours = Duration::from_nanos(self.native.load(Ordering::Relaxed));
            tokio::time::sleep_until((started + ours).into()).await;
        }
        known && matched
    }

    /// Folds one check of our own hashes into the moving average.
    fn note_native(&self, took: Duration) {
        let took = took.as_nanos() as u64;
        let _ = self
            .native
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |avg| {
                Some(avg - avg / 4 + took / 4)
            });
    }
}

/// A hashing thread's blocks, allocated at its first hash and kept.
struct Memory {
    blocks: Vec<Block>,
    /// The most blocks kept: the configured cost's.
    keep: usize,
}

impl Memory {
    fn new(params: &Params) -> Self {
        Memory {
            blocks: Vec::new(),
            keep: params.block_count(),
        }
    }

    /// Runs `f` on `count` blocks. A stored hash of a cost above the
    /// configured one (made before the cost was lowered) gets blocks of its
    /// own, so that one old hash does not raise what every thread keeps.
    fn run<T>(&mut self, count: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
        if count > self.keep {
            return f(&mut vec![Block::default(); count]);
        }
        if self.blocks.len() < count {
            self.blocks.resize(count, Block::default());
        }
        f(&mut self.blocks[..count])
    }
}

fn argon(algorithm: Algorithm, version: Version, params: &Params) -> Argon2<'static> {
    Argon2::new(algorithm, version, params.clone())
}

fn hash_with(params: &Params, memory: &mut Memory, password: &[u8]) -> anyhow::Result<String> {
    let salt: [u8; 16] = rand::random();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    memory
        .run(params.block_count(), |blocks| {
            argon(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password_into_with_memory(password, &salt, &mut out, blocks)
        })
        .map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| anyhow::anyhow!("parameters: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("output: {e}"))?),
    };
    Ok(phc.to_string())
}

/// Whether `password` hashes to `phc`, with the stored hash's own algorithm,
/// version and cost; a malformed `phc` matches nothing.
fn verify_with(phc: &str, memory: &mut Memory, password: &[u8]) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm) else {
        return false;
    };
    let Ok(version) = hash.version.map_or(Ok(Version::V0x13), Version::try_from) else {
        return false;
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = [0u8; Output::MAX_LENGTH];
    let out = &mut out[..expected.len()];
    let computed = memory.run(params.block_count(), |blocks| {
        argon(algorithm, version, &params)
            .hash_password_into_with_memory(password, salt, out, blocks)
    });
    // `Output`'s equality is constant-time.
    computed.is_ok() && Output::new(out).is_ok_and(|o| o == expected)
}

type Job = Box<dyn FnOnce(&mut Memory) + Send>;

/// A fixed set of threads that run hashing jobs, each with its memory.
#[derive(Clone)]
struct HashThreads {
    jobs: std::sync::mpsc::SyncSender<Job>,
}

impl HashThreads {
    fn start(n: usize, params: &Params) -> anyhow::Result<Self> {
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(n);
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for i in 0..n {
            let queue = queue.clone();
            let mut memory = Memory::new(params);
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    loop {
                        let next = match queue.lock() {
                            Ok(q) => q.recv(),
                            Err(_) => return,
                        };
                        match next {
                            Ok(job) => job(&mut memory),
                            // Every sender is gone: the hasher was dropped.
                            Err(_) => return,
                        }
                    }
                })?;
        }
        Ok(HashThreads { jobs })
    }

    /// Runs `f` on one of the threads; `None` if they are gone. The caller
    /// holds a core's permit, so the queue (one slot a thread) never blocks.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move |memory: &mut Memory| {
                let _ = tx.send(f(memory));
            }))
            .ok()?;
        rx.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::{PasswordHasher, PasswordVerifier};

    #[tokio::test]
    async fn passwords_verify_and_unknown_accounts_never_match() {
        let p = Passwords::new(HashCost {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap();
        let phc = p.hash("abc123".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(p.verify(Some(phc.clone()), "abc123".into()).await);
        assert!(!p.verify(Some(phc), "abc124".into()).await);
        assert!(!p.verify(None, "abc123".into()).await);
        // Over the cap: wrong for every account and for none, never hashed.
        let long = "a1".repeat(MAX_PASSWORD_BYTES);
        let phc = p.hash("abc123".into()).await.unwrap();
        assert!(!p.verify(Some(phc), long.clone()).await);
        assert!(!p.verify(None, long.clone()).await);
        assert!(p.hash(long).await.is_err());
    }

    #[tokio::test]
    async fn an_imported_hash_verifies_and_answers_no_sooner_than_ours() {
        let p = Passwords::new(HashCost {
            memory_kib: 8192,
            iterations: 2,
            parallelism: 1,
        })
        .unwrap();
        let ours = p.hash("abc123".into()).await.unwrap();
        for _ in 0..4 {
            assert!(p.verify(Some(ours.clone()), "abc123".into()).await);
        }
        let native = Duration::from_nanos(p.native.load(Ordering::Relaxed));
        // Python's bcrypt at cost 4: far cheaper than our hash.
        let bcrypt = "$2b$04$VoRRRugsA98reyI4dnnMNeMTwQcQ1cg9xQE6vNQ5SpDQc1XWhCb9a";
        let started = Instant::now();
        assert!(
            p.verify(Some(bcrypt.into()), "Correct horse 7".into())
                .await
        );
        assert!(
            !p.verify(Some(bcrypt.into()), "Correct horse 8".into())
                .await
        );
        assert!(
            !p.verify(Some("garbage".into()), "Correct horse 7".into())
                .await
        );
        assert!(
            started.elapsed() >= native * 3,
            "padded to ours: {native:?}"
        );
    }

    #[test]
    fn hashes_agree_with_the_argon2_crate_both_ways() {
        let params = Params::new(64, 1, 1, None).unwrap();
        let mut memory = Memory::new(&params);
        let ours = hash_with(&params, &mut memory, b"abc123").unwrap();
        let crate_argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(crate_argon.verify_password(b"abc123", &parsed).is_ok());
        // A hash the crate made, at another cost and version, verifies here
        // with the memory a thread already holds.
        let other = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x10,
            Params::new(128, 2, 1, None).unwrap(),
        );
        let salt = SaltString::encode_b64(&[7u8; 16]).unwrap();
        let theirs = other.hash_password(b"abc123", &salt).unwrap().to_string();
        assert!(verify_with(&theirs, &mut memory, b"abc123"));
        assert!(!verify_with(&theirs, &mut memory, b"abc124"));
        assert!(verify_with(&ours, &mut memory, b"abc123"));
        assert!(!verify_with("$argon2id$garbage", &mut memory, b"abc123"));
        assert!(!verify_with("", &mut memory, b""));
    }
}
