//! Running work in parallel on threads: a scoped pool for a list of items, and a budget of
//! connections shared by every download.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread;

/// Runs `work` on every item with at most `jobs` threads; returns the results in item order.
pub(crate) fn run_parallel<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    work: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new(items.iter().map(|_| None).collect());
    let workers = jobs.clamp(1, items.len().max(1));
    thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(index) else { break };
                    let result = work(item);
                    results.lock().unwrap_or_else(|e| e.into_inner())[index] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect()
}

/// A counting semaphore: at most N connections are open at once.
#[derive(Debug)]
pub(crate) struct Budget {
    free: Mutex<usize>,
    freed: Condvar,
}

/// One connection's worth of the budget; given back when dropped.
pub(crate) struct Permit<'a>(&'a Budget);

impl Budget {
    pub(crate) fn new(permits: usize) -> Budget {
        Budget {
            free: Mutex::new(permits.max(1)),
            freed: Condvar::new(),
        }
    }

    fn free(&self) -> MutexGuard<'_, usize> {
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a free connection.
    pub(crate) fn acquire(&self) -> Permit<'_> {
        let mut free = self.free();
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        Permit(self)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *self.0.free() += 1;
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_results_keep_their_order() {
        let items: Vec<u32> = (0..50).collect();
        assert_eq!(
            run_parallel(&items, 4, |n| n * 2),
            (0..50).map(|n| n * 2).collect::<Vec<_>>()
        );
        assert!(run_parallel(&Vec::<u32>::new(), 4, |n| *n).is_empty());
    }

    #[test]
    fn the_budget_never_gives_more_than_it_has() {
        let budget = Budget::new(2);
        let open = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let items: Vec<u32> = (0..20).collect();
        run_parallel(&items, 8, |_| {
            let _permit = budget.acquire();
            let now = open.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            thread::sleep(std::time::Duration::from_millis(2));
            open.fetch_sub(1, Ordering::SeqCst);
        });
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }
}
