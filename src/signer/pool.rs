//! The signer pool: signatures run on dedicated threads, never on the async runtime.
//!
//! Each backend gets its own workers, and each worker holds its own session on the backend
//! (a PKCS#11 session, a card channel), so a module signs on as many threads as it is
//! given. All workers take jobs from one bounded queue, so backends that hold the same keys
//! share the load and a slow or failed one simply takes fewer jobs.
//!
//! Rules:
//! - At most `capacity` signatures are queued or under way; past that a signature is refused
//!   at once with [`SignError::Busy`], so no sign-in waits past Entra's window.
//! - When every backend is down a signature is refused at once with
//!   [`SignError::Unavailable`], and signatures already queued are answered the same way.
//! - A worker whose session fails with an error the device may recover from marks its
//!   backend down; the backend's workers reopen sessions with a growing pause (50 ms up to
//!   2 s) and the backend is up again at the first session that opens. A job caught by the
//!   failure goes back on the queue for a backend that is up.
//! - An error the device will not recover from by itself (a refused PIN) stops the backend
//!   for good: it is never retried, so vouch cannot lock a token by retrying.
//! - The job names the key that signs it (the key ring's active key when the token was
//!   built), so a token's `kid` is always the key that signed it, even across a rotation.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, mpsc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;
use vouch_hsm::{HsmError, SigningKey, SigningSession};

use super::backend::{KeySetError, KeyStore, SignerKey};
use super::keyring::{KeyLocation, KeyRing};
use super::{PublishedKey, SignError, TokenSigner};
use crate::app::Clock;

/// How long an idle worker waits for a job before it looks at the pool's state again.
const IDLE_POLL: Duration = Duration::from_millis(200);
const FIRST_PAUSE: Duration = Duration::from_millis(50);
const LONGEST_PAUSE: Duration = Duration::from_secs(2);

/// A key the pool can sign with, on every backend.
pub struct LoadedKey {
    pub published: PublishedKey,
    /// The key as each backend holds it, in backend order.
    devices: Vec<Arc<dyn SigningKey>>,
}

/// The key ring and the keys loaded for it.
struct KeySet {
    ring: KeyRing,
    loaded: HashMap<String, Arc<LoadedKey>>,
}

impl KeySet {
    /// The key that signs now. A ring always has one (a rotation retires the old key at the
    /// moment the new one signs); should it not, the key that last started signing stands in.
    fn active(&self, now: i64) -> Option<Arc<LoadedKey>> {
        let entry = self.ring.active(now).or_else(|| {
            self.ring
                .keys
                .iter()
                .filter(|k| k.signs_from <= now)
                .max_by_key(|k| k.signs_from)
        })?;
        self.loaded.get(&entry.kid).cloned()
    }
}

/// Signs on dedicated threads behind a bounded queue. Cheap to clone.
#[derive(Clone)]
pub struct SignerPool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    shared: Arc<Shared>,
    in_flight: AtomicUsize,
    capacity: usize,
    /// Keys published beside the pool's own without being able to sign.
    extra: Mutex<Vec<PublishedKey>>,
    jwks: Mutex<(Vec<String>, Bytes)>,
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
    }
}

/// What the workers share with the pool.
struct Shared {
    keys: RwLock<Arc<KeySet>>,
    stores: Vec<Arc<dyn KeyStore>>,
    backends: Vec<Backend>,
    jobs: mpsc::Sender<Job>,
    queue: Mutex<mpsc::Receiver<Job>>,
    clock: Arc<Clock>,
    closed: AtomicBool,
    started: Instant,
    /// Milliseconds after `started` of the last signature, plus one (0: none yet).
    last_signed: AtomicU64,
    workers: usize,
}

/// A backend's health as its workers see it.
struct Backend {
    name: String,
    up: AtomicBool,
    /// Whether the backend failed in a way it will not recover from by itself.
    stopped: AtomicBool,
    /// Bumped at each failure; sessions opened before it are not used again.
    epoch: AtomicU64,
}

struct Job {
    key: Arc<LoadedKey>,
    signing_input: String,
    reply: oneshot::Sender<Result<Vec<u8>, SignError>>,
    tries: usize,
}

/// The health of one backend, for status pages and the watchdog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendHealth {
    pub name: String,
    pub up: bool,
    pub stopped: bool,
}

impl SignerPool {
    /// A pool of one signer with one worker per core.
    pub fn new(signer: Arc<dyn TokenSigner>, capacity: usize) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        SignerPool::with_workers(signer, cores, capacity)
    }

    /// A pool of one signer, whose key signs from the start and never rotates.
    pub fn with_workers(signer: Arc<dyn TokenSigner>, workers: usize, capacity: usize) -> Self {
        let published = signer.published().clone();
        let key = Arc::new(SignerKey::new(signer, format!("key {}", published.kid)));
        SignerPool::single(key, published, workers, capacity)
    }

    /// A pool of one device key that signs from the start and never rotates.
    pub fn single(
        key: Arc<dyn SigningKey>,
        published: PublishedKey,
        workers: usize,
        capacity: usize,
    ) -> Self {
        let location = KeyLocation::Software { dir: String::new() };
        let ring = KeyRing::first(published.kid.clone(), location, i64::MIN);
        let loaded = Arc::new(LoadedKey {
            published,
            devices: vec![key.clone()],
        });
        let keys = KeySet {
            ring,
            loaded: HashMap::from([(loaded.published.kid.clone(), loaded)]),
        };
        let name = key.name().to_owned();
        SignerPool::start(
            keys,
            vec![(name, workers)],
            Vec::new(),
            Arc::default(),
            capacity,
        )
    }

    /// The pool for a key ring over these stores, each with its number of workers: loads
    /// every key the ring publishes now from every store.
    pub fn open(
        stores: Vec<(Arc<dyn KeyStore>, usize)>,
        ring: KeyRing,
        clock: Arc<Clock>,
        capacity: usize,
    ) -> Result<Self, KeySetError> {
        let only: Vec<Arc<dyn KeyStore>> = stores.iter().map(|s| s.0.clone()).collect();
        let keys = load(&only, ring, &HashMap::new(), clock.now())?;
        if keys.active(clock.now()).is_none() {
            return Err(KeySetError::NoActiveKey);
        }
        let backends = stores.iter().map(|(s, w)| (s.name(), *w)).collect();
        Ok(SignerPool::start(keys, backends, only, clock, capacity))
    }

    fn start(
        keys: KeySet,
        backends: Vec<(String, usize)>,
        stores: Vec<Arc<dyn KeyStore>>,
        clock: Arc<Clock>,
        capacity: usize,
    ) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let workers = backends.iter().map(|b| b.1.max(1)).sum();
        let shared = Arc::new(Shared {
            keys: RwLock::new(Arc::new(keys)),
            stores,
            backends: backends
                .iter()
                .map(|(name, _)| Backend {
                    name: name.clone(),
                    up: AtomicBool::new(true),
                    stopped: AtomicBool::new(false),
                    epoch: AtomicU64::new(0),
                })
                .collect(),
            jobs,
            queue: Mutex::new(queue),
            clock,
            closed: AtomicBool::new(false),
            started: Instant::now(),
            last_signed: AtomicU64::new(0),
            workers,
        });
        for (b, (_, count)) in backends.iter().enumerate() {
            for i in 0..(*count).max(1) {
                let shared = shared.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("vouch-signer-{b}-{i}"))
                    .spawn(move || Worker::new(shared, b).run());
                if let Err(e) = spawned {
                    tracing::error!(error = %e, "could not start a signer thread");
                }
            }
        }
        SignerPool {
            inner: Arc::new(PoolInner {
                shared,
                in_flight: AtomicUsize::new(0),
                capacity: capacity.max(1),
                extra: Mutex::default(),
                jwks: Mutex::default(),
            }),
        }
    }

    /// The clock the key ring's schedule is read against.
    pub fn clock(&self) -> Arc<Clock> {
        self.inner.shared.clock.clone()
    }

    fn key_set(&self) -> Arc<KeySet> {
        let keys = self.inner.shared.keys.read();
        keys.unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The key that signs now.
    pub fn signing_key(&self) -> Result<Arc<LoadedKey>, SignError> {
        let now = self.inner.shared.clock.now();
        self.key_set().active(now).ok_or(SignError::Unavailable {
            detail: "the key ring has no key that signs now".into(),
        })
    }

    /// The public half of the key that signs now.
    pub fn published(&self) -> PublishedKey {
        match self.signing_key() {
            Ok(key) => key.published.clone(),
            Err(_) => PublishedKey::new(Vec::new(), Vec::new(), Vec::new()),
        }
    }

    /// Publishes these keys beside the pool's own, which stay first.
    pub fn publish_also(&self, keys: &[PublishedKey]) {
        let mut extra = self.inner.extra.lock().unwrap_or_else(|p| p.into_inner());
        extra.extend(keys.iter().cloned());
    }

    /// Every key published now, in JWKS order: active, next, retiring, then extra keys.
    pub fn published_keys(&self) -> Vec<PublishedKey> {
        let set = self.key_set();
        let now = self.inner.shared.clock.now();
        let mut keys: Vec<PublishedKey> = set
            .ring
            .published(now)
            .iter()
            .filter_map(|e| set.loaded.get(&e.kid).map(|k| k.published.clone()))
            .collect();
        let extra = self.inner.extra.lock().unwrap_or_else(|p| p.into_inner());
        for k in extra.iter() {
            if !keys.iter().any(|have| have.kid == k.kid) {
                keys.push(k.clone());
            }
        }
        keys
    }

    /// The JWKS document of [`SignerPool::published_keys`], rendered again only when the
    /// set of keys changes.
    pub fn jwks(&self) -> Bytes {
        let keys = self.published_keys();
        let kids: Vec<String> = keys.iter().map(|k| k.kid.clone()).collect();
        let mut cached = self.inner.jwks.lock().unwrap_or_else(|p| p.into_inner());
        if cached.0 != kids || cached.1.is_empty() {
            *cached = (kids, Bytes::from(crate::app::jwks_document(&keys)));
        }
        cached.1.clone()
    }

    /// Each key of the ring with its state now and its next transition.
    pub fn ring(&self) -> KeyRing {
        self.key_set().ring.clone()
    }

    /// Reads the key ring again (after `vouch keys stage` or `promote`) and loads keys new to
    /// it. Blocks on the devices: call it from a blocking thread. Returns whether it changed.
    pub fn refresh(&self, state_dir: &std::path::Path) -> Result<bool, KeySetError> {
        let shared = &self.inner.shared;
        let Some(ring) = KeyRing::load(state_dir)? else {
            return Ok(false);
        };
        let current = self.key_set();
        if ring == current.ring || shared.stores.is_empty() {
            return Ok(false);
        }
        let keys = load(&shared.stores, ring, &current.loaded, shared.clock.now())?;
        *shared.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
        Ok(true)
    }

    /// Signatures queued or under way.
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::Acquire)
    }

    /// How full the queue is, from 0 to 1.
    pub fn fill(&self) -> f64 {
        self.in_flight() as f64 / self.inner.capacity as f64
    }

    /// Whether the queue is full, so that a new signature would be refused.
    pub fn is_saturated(&self) -> bool {
        self.in_flight() >= self.inner.capacity
    }

    /// Whether some backend can sign.
    pub fn is_available(&self) -> bool {
        self.inner.shared.any_up()
    }

    pub fn backends(&self) -> Vec<BackendHealth> {
        let shared = &self.inner.shared;
        shared
            .backends
            .iter()
            .map(|b| BackendHealth {
                name: b.name.clone(),
                up: b.up.load(Ordering::Acquire),
                stopped: b.stopped.load(Ordering::Acquire),
            })
            .collect()
    }

    /// Whether a signature was made within `window`, which makes a test signature needless.
    pub fn signed_within(&self, window: Duration) -> bool {
        let shared = &self.inner.shared;
        let last = shared.last_signed.load(Ordering::Acquire);
        if last == 0 {
            return false;
        }
        let now = shared.started.elapsed().as_millis() as u64 + 1;
        now.saturating_sub(last) <= window.as_millis() as u64
    }

    /// Signs with the key that signs now.
    pub async fn sign(&self, signing_input: String) -> Result<Vec<u8>, SignError> {
        let key = self.signing_key()?;
        self.sign_with(&key, signing_input).await
    }

    /// Signs with `key`, which names the `kid` the caller put in the token's header.
    pub async fn sign_with(
        &self,
        key: &Arc<LoadedKey>,
        signing_input: String,
    ) -> Result<Vec<u8>, SignError> {
        let inner = &self.inner;
        if !inner.shared.any_up() {
            return Err(SignError::Unavailable {
                detail: "every signer backend is down".into(),
            });
        }
        if inner.in_flight.fetch_add(1, Ordering::AcqRel) >= inner.capacity {
            inner.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(SignError::Busy {
                permits: inner.capacity,
            });
        }
        let _slot = Slot(&inner.in_flight);
        let (reply, answer) = oneshot::channel();
        let ended = || SignError::Backend {
            kid: key.published.kid.clone(),
            detail: "the signer threads have stopped".into(),
        };
        let job = Job {
            key: key.clone(),
            signing_input,
            reply,
            tries: 0,
        };
        inner.shared.jobs.send(job).map_err(|_| ended())?;
        answer.await.map_err(|_| ended())?
    }
}

/// Loads every key the ring publishes now from every store, reusing keys already loaded.
/// A key must be the same on every store, and be the key the ring published.
fn load(
    stores: &[Arc<dyn KeyStore>],
    ring: KeyRing,
    loaded: &HashMap<String, Arc<LoadedKey>>,
    now: i64,
) -> Result<KeySet, KeySetError> {
    let mut keys = HashMap::new();
    for entry in ring.published(now) {
        if let Some(have) = loaded.get(&entry.kid) {
            keys.insert(entry.kid.clone(), have.clone());
            continue;
        }
        let mut devices = Vec::with_capacity(stores.len());
        let mut published = None;
        for store in stores {
            let key = store.key(&entry.key)?;
            let p = super::published_from_certificate(key.certificate_der())?;
            if p.kid != entry.kid {
                return Err(KeySetError::KeyChanged {
                    backend: store.name(),
                    location: entry.key.to_string(),
                    expected: entry.kid.clone(),
                    found: p.kid,
                });
            }
            published = Some(p);
            devices.push(key);
        }
        if let Some(published) = published {
            let key = LoadedKey { published, devices };
            keys.insert(entry.kid.clone(), Arc::new(key));
        }
    }
    Ok(KeySet { ring, loaded: keys })
}

/// A place in the pool, given back when the signature is answered or abandoned.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Shared {
    fn any_up(&self) -> bool {
        self.backends.iter().any(|b| b.up.load(Ordering::Acquire))
    }

    fn closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn mark_signed(&self) {
        let now = self.started.elapsed().as_millis() as u64 + 1;
        self.last_signed.store(now, Ordering::Release);
    }

    /// Gives a job caught by a failure to another backend, or answers it unavailable.
    fn retry_elsewhere(&self, mut job: Job, why: &HsmError) {
        job.tries += 1;
        if job.tries <= self.workers && self.any_up() {
            if let Err(mpsc::SendError(job)) = self.jobs.send(job) {
                let _ = job.reply.send(Err(unavailable(why)));
            }
        } else {
            let _ = job.reply.send(Err(unavailable(why)));
        }
    }

    /// With every backend down, answers the queued jobs at once instead of leaving them.
    fn fail_queued_if_all_down(&self) {
        if self.any_up() {
            return;
        }
        let Ok(queue) = self.queue.try_lock() else {
            return;
        };
        while let Ok(job) = queue.try_recv() {
            let _ = job.reply.send(Err(SignError::Unavailable {
                detail: "every signer backend is down".into(),
            }));
        }
    }
}

fn unavailable(why: &HsmError) -> SignError {
    SignError::Unavailable {
        detail: why.to_string(),
    }
}

/// One signer thread of one backend, with its sessions by key.
struct Worker {
    shared: Arc<Shared>,
    backend: usize,
    sessions: HashMap<String, (u64, Box<dyn SigningSession>)>,
}

impl Worker {
    fn new(shared: Arc<Shared>, backend: usize) -> Worker {
        Worker {
            shared,
            backend,
            sessions: HashMap::new(),
        }
    }

    fn health(&self) -> &Backend {
        &self.shared.backends[self.backend]
    }

    fn run(mut self) {
        while !self.shared.closed() {
            if !self.health().up.load(Ordering::Acquire) && !self.recover() {
                return;
            }
            let job = {
                let queue = self.shared.queue.lock().unwrap_or_else(|p| p.into_inner());
                queue.recv_timeout(IDLE_POLL)
            };
            match job {
                Ok(job) if job.reply.is_closed() => {}
                Ok(job) => self.sign(job),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn sign(&mut self, job: Job) {
        let epoch = self.health().epoch.load(Ordering::Acquire);
        let signed = self
            .session(&job.key, epoch)
            .and_then(|s| s.sign_rs256(job.signing_input.as_bytes()));
        match signed {
            Ok(signature) => {
                self.shared.mark_signed();
                let _ = job.reply.send(Ok(signature));
            }
            Err(e) => {
                self.failed(epoch, &e);
                self.shared.retry_elsewhere(job, &e);
            }
        }
    }

    /// This worker's session on the key, opened now if it has none from this epoch.
    fn session(
        &mut self,
        key: &LoadedKey,
        epoch: u64,
    ) -> Result<&mut Box<dyn SigningSession>, HsmError> {
        let kid = &key.published.kid;
        if self.sessions.get(kid).is_none_or(|s| s.0 != epoch) {
            let session = key.devices[self.backend].session()?;
            self.sessions.insert(kid.clone(), (epoch, session));
        }
        self.sessions
            .get_mut(kid)
            .map(|s| &mut s.1)
            .ok_or_else(|| unreachable!("inserted above"))
    }

    /// Marks the backend down after a failure in `epoch`; a failure it will not recover from
    /// stops it.
    fn failed(&mut self, epoch: u64, e: &HsmError) {
        self.sessions.clear();
        let health = &self.shared.backends[self.backend];
        if !e.is_transient() {
            if !health.stopped.swap(true, Ordering::AcqRel) {
                tracing::error!(
                    backend = %health.name,
                    error = %e,
                    "signer backend stopped; it will not be retried until vouch restarts"
                );
            }
            health.up.store(false, Ordering::Release);
            return;
        }
        let bumped =
            health
                .epoch
                .compare_exchange(epoch, epoch + 1, Ordering::AcqRel, Ordering::Acquire);
        if bumped.is_ok() {
            health.up.store(false, Ordering::Release);
            tracing::warn!(backend = %health.name, error = %e, "signer backend down; reconnecting");
        }
    }

    /// Reopens a session with growing pauses until the backend is up again. Returns false
    /// when the worker should end: the pool is gone or the backend is stopped.
    fn recover(&mut self) -> bool {
        let mut pause = FIRST_PAUSE;
        loop {
            let shared = self.shared.clone();
            let health = &shared.backends[self.backend];
            if shared.closed() || health.stopped.load(Ordering::Acquire) {
                return false;
            }
            if health.up.load(Ordering::Acquire) {
                return true;
            }
            shared.fail_queued_if_all_down();
            if let Some(key) = shared
                .keys
                .read()
                .ok()
                .and_then(|k| k.active(shared.clock.now()))
            {
                let epoch = health.epoch.load(Ordering::Acquire);
                match self.session(&key, epoch) {
                    Ok(_) => {
                        if !health.up.swap(true, Ordering::AcqRel) {
                            tracing::warn!(backend = %health.name, "signer backend is back");
                        }
                        return true;
                    }
                    Err(e) if e.is_transient() => {
                        tracing::debug!(backend = %health.name, error = %e, "still down");
                    }
                    Err(e) => {
                        self.failed(epoch, &e);
                        return false;
                    }
                }
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(LONGEST_PAUSE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer::SoftwareSigner;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
    use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};

    fn signer() -> SoftwareSigner {
        let key = RsaKeyPair::generate(KeySize::Rsa2048).expect("keygen");
        let pkcs8 = key.as_der().expect("pkcs8");
        SoftwareSigner::new(pkcs8.as_ref(), b"not a real certificate".to_vec()).expect("signer")
    }

    #[tokio::test]
    async fn pool_answers_busy_at_once_when_the_queue_is_full() {
        let pool = SignerPool::with_workers(Arc::new(signer()), 1, 1);
        let held = Slot(&pool.inner.in_flight);
        pool.inner.in_flight.fetch_add(1, Ordering::AcqRel);
        assert!(pool.is_saturated());
        let err = pool.sign("a.b".into()).await.unwrap_err();
        assert_eq!(err, SignError::Busy { permits: 1 });
        drop(held);
        assert!(pool.sign("a.b".into()).await.is_ok());
        assert_eq!(pool.in_flight(), 0);
    }

    #[tokio::test]
    async fn many_signatures_at_once_all_come_back_from_few_workers() {
        let s = Arc::new(signer());
        let pool = SignerPool::with_workers(s.clone(), 2, 64);
        let jobs: Vec<_> = (0..32)
            .map(|i| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.sign(format!("h.{i}")).await })
            })
            .collect();
        for (i, job) in jobs.into_iter().enumerate() {
            let sig = job.await.expect("joined").expect("signed");
            let p = s.published();
            let public = RsaPublicKeyComponents { n: &p.n, e: &p.e };
            let input = format!("h.{i}");
            assert!(
                public
                    .verify(&RSA_PKCS1_2048_8192_SHA256, input.as_bytes(), &sig)
                    .is_ok()
            );
        }
        assert_eq!(pool.in_flight(), 0);
    }

    /// What the test does to a device: unplug it or make it refuse its PIN.
    #[derive(Default)]
    struct Faults {
        down: AtomicBool,
        pin_refused: AtomicBool,
        opened: AtomicUsize,
        signed: AtomicUsize,
    }

    impl Faults {
        fn check(&self) -> Result<(), HsmError> {
            if self.pin_refused.load(Ordering::Acquire) {
                return Err(HsmError::PinBlocked {
                    device: "flaky".into(),
                });
            }
            if self.down.load(Ordering::Acquire) {
                return Err(HsmError::Unavailable {
                    device: "flaky".into(),
                    detail: "unplugged".into(),
                });
            }
            Ok(())
        }
    }

    struct Flaky {
        inner: Arc<SoftwareSigner>,
        faults: Arc<Faults>,
    }

    impl SigningKey for Flaky {
        fn name(&self) -> &str {
            "flaky"
        }

        fn certificate_der(&self) -> &[u8] {
            &self.inner.published().certificate_der
        }

        fn session(&self) -> Result<Box<dyn SigningSession>, HsmError> {
            self.faults.opened.fetch_add(1, Ordering::AcqRel);
            self.faults.check()?;
            let session = Flaky {
                inner: self.inner.clone(),
                faults: self.faults.clone(),
            };
            Ok(Box::new(session))
        }
    }

    impl SigningSession for Flaky {
        fn sign_rs256(&mut self, input: &[u8]) -> Result<Vec<u8>, HsmError> {
            self.faults.check()?;
            self.faults.signed.fetch_add(1, Ordering::AcqRel);
            Ok(self.inner.sign(input).expect("software signature"))
        }
    }

    /// A pool over `devices.len()` backends holding one key, with two workers each.
    fn flaky_pool(devices: usize) -> (SignerPool, Vec<Arc<Faults>>) {
        let inner = Arc::new(signer());
        let published = inner.published().clone();
        let faults: Vec<Arc<Faults>> = (0..devices).map(|_| Arc::default()).collect();
        let keys: Vec<Arc<dyn SigningKey>> = faults
            .iter()
            .map(|f| {
                Arc::new(Flaky {
                    inner: inner.clone(),
                    faults: f.clone(),
                }) as Arc<dyn SigningKey>
            })
            .collect();
        let ring = KeyRing::first(
            published.kid.clone(),
            KeyLocation::Software { dir: String::new() },
            i64::MIN,
        );
        let loaded = Arc::new(LoadedKey {
            published: published.clone(),
            devices: keys,
        });
        let set = KeySet {
            ring,
            loaded: HashMap::from([(published.kid, loaded)]),
        };
        let backends = (0..devices).map(|i| (format!("device {i}"), 2)).collect();
        let pool = SignerPool::start(set, backends, Vec::new(), Arc::default(), 64);
        (pool, faults)
    }

    async fn eventually(what: &str, check: impl Fn() -> bool) {
        for _ in 0..200 {
            if check() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{what} did not happen within 5 s");
    }

    #[tokio::test]
    async fn a_backend_that_fails_is_unavailable_at_once_and_signs_again_by_itself() {
        let (pool, faults) = flaky_pool(1);
        assert!(pool.sign("a.b".into()).await.is_ok());
        faults[0].down.store(true, Ordering::Release);
        let err = pool.sign("a.b".into()).await.expect_err("unplugged");
        assert!(matches!(err, SignError::Unavailable { .. }), "{err}");
        assert!(!pool.is_available());

        let started = Instant::now();
        let err = pool.sign("a.b".into()).await.expect_err("still unplugged");
        assert!(matches!(err, SignError::Unavailable { .. }), "{err}");
        assert!(
            started.elapsed() < Duration::from_millis(50),
            "refused at once"
        );

        faults[0].down.store(false, Ordering::Release);
        eventually("recovery", || pool.is_available()).await;
        assert!(pool.sign("a.b".into()).await.is_ok());
        assert_eq!(pool.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_refused_pin_stops_the_backend_without_another_try() {
        let (pool, faults) = flaky_pool(1);
        faults[0].pin_refused.store(true, Ordering::Release);
        let err = pool.sign("a.b".into()).await.expect_err("refused");
        assert!(matches!(err, SignError::Unavailable { .. }), "{err}");
        eventually("stop", || pool.backends()[0].stopped).await;
        let tries = faults[0].opened.load(Ordering::Acquire);
        faults[0].pin_refused.store(false, Ordering::Release);
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(faults[0].opened.load(Ordering::Acquire), tries, "no retry");
        let err = pool.sign("a.b".into()).await.expect_err("stopped");
        assert!(matches!(err, SignError::Unavailable { .. }), "{err}");
    }

    #[tokio::test]
    async fn backends_holding_one_key_sign_together_and_cover_for_one_that_fails() {
        let (pool, faults) = flaky_pool(2);
        let jobs: Vec<_> = (0..64)
            .map(|i| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.sign(format!("h.{i}")).await })
            })
            .collect();
        for job in jobs {
            job.await.expect("joined").expect("signed");
        }
        for f in &faults {
            assert!(f.signed.load(Ordering::Acquire) > 0, "both backends signed");
        }

        faults[1].down.store(true, Ordering::Release);
        for i in 0..32 {
            pool.sign(format!("h.{i}"))
                .await
                .expect("the other backend signs");
        }
        assert!(pool.is_available());
    }
}
