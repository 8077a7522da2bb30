//! Coarse per-worker deadlines for the native path's timeouts (idle,
//! request headers, stream idle, route).
//!
//! Almost every timeout on a proxy is armed and then cancelled because the
//! awaited thing happened in time. tokio's timer is exact to the
//! millisecond and pays for it on every arm and cancel (a clock read, a
//! lock, a wheel insert and remove): measured at ~500 instructions per
//! timeout, two timeouts per small request (`bash bench/profile.sh`).
//! Here a timeout is a slab entry in this thread's wheel with a 10 ms
//! tick: arming is a push, cancelling a slot release, and no clock is
//! read while a ticker runs (nginx and HAProxy keep coarse time the same
//! way). A ticker task runs only while some deadline is armed.
//!
//! Precision: a deadline fires between its time and one tick (plus any
//! scheduling delay) later, never early.
//!
//! Draining: an entry may belong to a drain group (a connection manager's
//! idle keep-alive waits). [`drain_group`] brings every such deadline
//! forward to the drain grace; each wheel notices at its next tick, so
//! the request path pays nothing for it.
//!
//! Should a future ever be polled on another thread than the one that
//! armed it, its entry is left for its own wheel to drop when it fires (a
//! spurious wake at worst), so correctness never depends on staying on
//! one thread (each worker is a current-thread runtime, so today none
//! moves).

use std::cell::RefCell;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::Instant;

/// Tick length.
const TICK: Duration = Duration::from_millis(10);
/// Wheel slots (a deadline further away waits for its turn round).
const SLOTS: usize = 1024;

/// The awaited future did not finish in time.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Elapsed;

struct Entry {
    generation: u64,
    deadline: u64,
    /// Drain group (0: none).
    group: u64,
    waker: Option<Waker>,
}

/// Groups being drained, with the time their waits end.
static DRAINS: Mutex<Vec<(u64, Instant)>> = Mutex::new(Vec::new());
/// Bumped whenever `DRAINS` changes; wheels compare it each tick.
static DRAIN_EPOCH: AtomicU64 = AtomicU64::new(0);
/// Source of drain group ids.
static GROUPS: AtomicU64 = AtomicU64::new(1);

/// A new drain group id.
pub(crate) fn new_group() -> u64 {
    GROUPS.fetch_add(1, Ordering::Relaxed)
}

/// Ends every wait of `group` (armed now or later) within `grace`.
pub(crate) fn drain_group(group: u64, grace: Duration) {
    if let Ok(mut d) = DRAINS.lock() {
        d.push((group, Instant::now() + grace));
    }
    DRAIN_EPOCH.fetch_add(1, Ordering::Release);
}

/// When waits of `group` must end, if it is draining.
fn drain_deadline(drains: &[(u64, Instant)], group: u64) -> Option<Instant> {
    drains.iter().find(|(g, _)| *g == group).map(|(_, t)| *t)
}

struct Wheel {
    id: u64,
    base: Instant,
    /// Ticks since `base`, as of the last tick or clock read.
    now: u64,
    ticker: bool,
    entries: Vec<Option<Entry>>,
    free: Vec<usize>,
    slots: Vec<Vec<(usize, u64)>>,
    generation: u64,
    armed: usize,
    /// The `DRAIN_EPOCH` this wheel has applied.
    drain_epoch: u64,
    /// Copy of `DRAINS` as of `drain_epoch`.
    drains: Vec<(u64, Instant)>,
}

impl Wheel {
    fn new() -> Self {
        static IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Wheel {
            id: IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            base: Instant::now(),
            now: 0,
            ticker: false,
            entries: Vec::new(),
            free: Vec::new(),
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            generation: 0,
            armed: 0,
            drain_epoch: 0,
            drains: Vec::new(),
        }
    }

    fn tick_of(&self, t: Instant) -> u64 {
        (t.saturating_duration_since(self.base).as_nanos() / TICK.as_nanos()) as u64
    }

    /// Picks up drains started since the last look: their groups' armed
    /// deadlines move forward.
    fn apply_drains(&mut self) {
        let epoch = DRAIN_EPOCH.load(Ordering::Acquire);
        if epoch == self.drain_epoch {
            return;
        }
        self.drain_epoch = epoch;
        if let Ok(d) = DRAINS.lock() {
            self.drains.clone_from(&d);
        }
        for index in 0..self.entries.len() {
            let Some(e) = &self.entries[index] else {
                continue;
            };
            if e.group == 0 {
                continue;
            }
            let Some(at) = drain_deadline(&self.drains, e.group) else {
                continue;
            };
            let at = self.tick_of(at).max(self.now + 1);
            if at < e.deadline {
                let generation = e.generation;
                if let Some(e) = &mut self.entries[index] {
                    e.deadline = at;
                }
                self.slots[(at % SLOTS as u64) as usize].push((index, generation));
            }
        }
    }

    fn ticks_since_base(&self) -> u64 {
        (self.base.elapsed().as_nanos() / TICK.as_nanos()) as u64
    }

    fn arm(&mut self, timeout: Duration, group: u64) -> Key {
        if !self.ticker {
            // Time has not been kept while nothing was armed.
            self.now = self.ticks_since_base();
            self.apply_drains();
        }
        // Capped at ~30 years of ticks, so "forever" cannot overflow.
        let ticks = (timeout.as_nanos().div_ceil(TICK.as_nanos())).min(1 << 37) as u64;
        // +1: the current tick is already partly over.
        let mut deadline = self.now + ticks.max(1) + 1;
        if group != 0 {
            if let Some(at) = drain_deadline(&self.drains, group) {
                deadline = deadline.min(self.tick_of(at).max(self.now + 1));
            }
        }
        self.generation += 1;
        let entry = Entry {
            generation: self.generation,
            deadline,
            group,
            waker: None,
        };
        let index = match self.free.pop() {
            Some(i) => {
                self.entries[i] = Some(entry);
                i
            }
            None => {
                self.entries.push(Some(entry));
                self.entries.len() - 1
            }
        };
        self.slots[(deadline % SLOTS as u64) as usize].push((index, self.generation));
        self.armed += 1;
        Key {
            wheel: self.id,
            base: self.base,
            index,
            generation: self.generation,
            deadline,
        }
    }

    fn entry(&mut self, k: &Key) -> Option<&mut Entry> {
        match self.entries.get_mut(k.index) {
            Some(Some(e)) if e.generation == k.generation => Some(e),
            _ => None,
        }
    }

    fn release(&mut self, index: usize) {
        self.entries[index] = None;
        self.free.push(index);
        self.armed -= 1;
    }

    /// Advances to the clock and collects the wakers of what is due into
    /// `due`; false once nothing is armed (the ticker then stops).
    fn tick(&mut self, due: &mut Vec<Waker>) -> bool {
        self.apply_drains();
        let target = self.ticks_since_base();
        // After a long stall, one turn of the wheel visits every slot.
        let from = self.now.max(target.saturating_sub(SLOTS as u64));
        for t in from + 1..=target {
            let at = (t % SLOTS as u64) as usize;
            let mut slot = std::mem::take(&mut self.slots[at]);
            slot.retain(|&(index, generation)| {
                let deadline = match &self.entries[index] {
                    Some(e) if e.generation == generation => e.deadline,
                    _ => return false, // cancelled, or moved to another slot
                };
                if deadline > target {
                    return true; // a later turn of the wheel
                }
                if let Some(w) = self.entries[index].as_mut().and_then(|e| e.waker.take()) {
                    due.push(w);
                }
                self.release(index);
                false
            });
            self.slots[at] = slot;
        }
        self.now = target;
        self.armed > 0
    }
}

thread_local! {
    static WHEEL: RefCell<Wheel> = RefCell::new(Wheel::new());
}

/// An armed deadline in one thread's wheel.
struct Key {
    wheel: u64,
    /// The arming wheel's time origin (`deadline` counts ticks from it).
    base: Instant,
    index: usize,
    generation: u64,
    deadline: u64,
}

impl Key {
    /// Whether the deadline has passed, judged from any thread.
    fn passed(&self) -> bool {
        let ticks = (self.base.elapsed().as_nanos() / TICK.as_nanos()) as u64;
        self.deadline <= ticks
    }
}

/// Cancels the deadline when the wait ends first.
struct Armed(Key);

impl Armed {
    fn new(timeout: Duration, group: u64) -> Self {
        let (key, start_ticker) = WHEEL.with(|w| {
            let mut w = w.borrow_mut();
            let key = w.arm(timeout, group);
            let start = !w.ticker;
            w.ticker = true;
            (key, start)
        });
        if start_ticker {
            tokio::spawn(ticker());
        }
        Armed(key)
    }

    /// Ready once the deadline has passed; otherwise keeps the waker.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let k = &self.0;
        WHEEL.with(|w| {
            let mut w = w.borrow_mut();
            if w.id != k.wheel {
                // Polled on another thread than its wheel's: check
                // the time ourselves; the old wheel fires a spurious wake.
                return if k.passed() {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                };
            }
            if w.now >= k.deadline {
                return Poll::Ready(());
            }
            match w.entry(k) {
                Some(e) => {
                    match &mut e.waker {
                        Some(old) if old.will_wake(cx.waker()) => {}
                        slot => *slot = Some(cx.waker().clone()),
                    }
                    Poll::Pending
                }
                // Fired (entry released) between the tick and this poll.
                None => Poll::Ready(()),
            }
        })
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        let k = &self.0;
        // try_with: never panic while a thread's locals are torn down.
        let _ = WHEEL.try_with(|w| {
            if let Ok(mut w) = w.try_borrow_mut() {
                if w.id == k.wheel && w.entry(k).is_some() {
                    w.release(k.index);
                }
            }
        });
    }
}

/// Keeps this thread's coarse time while deadlines are armed.
async fn ticker() {
    let mut due = Vec::new();
    loop {
        tokio::time::sleep(TICK).await;
        let go_on = WHEEL.with(|w| {
            let mut w = w.borrow_mut();
            let more = w.tick(&mut due);
            if !more {
                w.ticker = false;
            }
            more
        });
        // Woken outside the borrow.
        due.drain(..).for_each(Waker::wake);
        if !go_on {
            return;
        }
    }
}

/// Runs `f`, giving up with [`Elapsed`] after about `timeout` (at most
/// one tick late, never early).
pub(crate) async fn within<F: Future>(timeout: Duration, f: F) -> Result<F::Output, Elapsed> {
    within_group(timeout, 0, f).await
}

/// [`within`], ended early (after the group's grace) if drain group
/// `group` drains.
pub(crate) async fn within_group<F: Future>(
    timeout: Duration,
    group: u64,
    f: F,
) -> Result<F::Output, Elapsed> {
    let mut f = std::pin::pin!(f);
    let mut armed: Option<Armed> = None;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = f.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        // Armed at the first wait, so an immediate answer costs nothing.
        let a = armed.get_or_insert_with(|| Armed::new(timeout, group));
        a.poll_expired(cx).map(|()| Err(Elapsed))
    })
    .await
}

/// Deadlines armed on this thread (for tests).
#[cfg(test)]
fn armed() -> usize {
    WHEEL.with(|w| w.borrow().armed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn fires_not_early_and_not_much_late() {
        rt().block_on(async {
            let t0 = std::time::Instant::now();
            let r = within(Duration::from_millis(200), std::future::pending::<()>()).await;
            let took = t0.elapsed();
            assert_eq!(r, Err(Elapsed));
            assert!(took >= Duration::from_millis(200), "{took:?}");
            assert!(took < Duration::from_millis(400), "{took:?}");
            assert_eq!(armed(), 0);
        });
    }

    #[test]
    fn finishing_first_disarms() {
        rt().block_on(async {
            let r = within(Duration::from_secs(5), async {
                tokio::time::sleep(Duration::from_millis(30)).await;
                7
            })
            .await;
            assert_eq!(r, Ok(7));
            assert_eq!(armed(), 0);
            // A ready future never arms at all.
            assert_eq!(within(Duration::from_secs(5), async { 1 }).await, Ok(1));
            assert_eq!(armed(), 0);
        });
    }

    #[test]
    fn many_deadlines_fire_in_order_and_the_ticker_stops() {
        rt().block_on(async {
            let mut set = tokio::task::JoinSet::new();
            for ms in [30u64, 90, 60, 10, 2000] {
                set.spawn(async move {
                    let t0 = std::time::Instant::now();
                    let r = within(
                        Duration::from_millis(ms),
                        tokio::time::sleep(Duration::from_millis(if ms == 2000 {
                            50
                        } else {
                            5000
                        })),
                    )
                    .await;
                    (ms, r, t0.elapsed())
                });
            }
            while let Some(r) = set.join_next().await {
                let (ms, r, took) = r.unwrap();
                if ms == 2000 {
                    assert_eq!(r, Ok(()));
                } else {
                    assert_eq!(r, Err(Elapsed));
                    assert!(took >= Duration::from_millis(ms), "{ms}: {took:?}");
                }
            }
            assert_eq!(armed(), 0);
            tokio::time::sleep(TICK * 3).await;
            assert!(!WHEEL.with(|w| w.borrow().ticker), "ticker stopped");
        });
    }

    #[test]
    fn draining_a_group_ends_its_waits_after_the_grace() {
        rt().block_on(async {
            let (g, other) = (new_group(), new_group());
            let forever = Duration::from_secs(3600 * 24 * 365 * 100);
            let t0 = std::time::Instant::now();
            let drained = tokio::spawn(within_group(forever, g, std::future::pending::<()>()));
            let untouched = tokio::spawn(within_group(
                Duration::from_millis(400),
                other,
                std::future::pending::<()>(),
            ));
            tokio::time::sleep(Duration::from_millis(50)).await;
            drain_group(g, Duration::from_millis(100));
            assert_eq!(drained.await.unwrap(), Err(Elapsed));
            let took = t0.elapsed();
            assert!(took >= Duration::from_millis(150), "{took:?}");
            assert!(took < Duration::from_millis(350), "{took:?}");
            assert_eq!(untouched.await.unwrap(), Err(Elapsed));
            assert!(t0.elapsed() >= Duration::from_millis(400));
            // Armed after the drain began: ends at the same grace.
            let late = within_group(forever, g, std::future::pending::<()>()).await;
            assert_eq!(late, Err(Elapsed));
            assert!(t0.elapsed() < Duration::from_millis(700));
        });
    }

    #[test]
    fn a_key_is_judged_by_its_own_wheels_clock() {
        // A future polled on another thread checks its key
        // against the arming wheel's origin, not the new thread's.
        let mut w = Wheel::new();
        w.base -= Duration::from_secs(1);
        let k = w.arm(Duration::from_millis(500), 0);
        assert!(!k.passed());
        // The same key seen a second later (its wheel's origin earlier).
        let later = Key {
            base: w.base - Duration::from_secs(1),
            ..k
        };
        assert!(later.passed());
    }

    #[test]
    fn long_deadline_waits_for_its_turn_of_the_wheel() {
        let mut w = Wheel::new();
        let k = w.arm(TICK * (SLOTS as u32 + 5), 0);
        w.now = 10; // pretend time passed: same slot visited, not yet due
        w.base -= TICK * 10;
        let mut due = Vec::new();
        assert!(w.tick(&mut due));
        assert!(w.entry(&k).is_some());
        w.base -= TICK * (SLOTS as u32 + 10);
        assert!(!w.tick(&mut due));
        assert!(w.entry(&k).is_none());
    }
}
