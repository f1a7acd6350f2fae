//! The plans `sluice.run_request` keeps per backend, bounded by count and by memory.
//!
//! A plan's memory grows with its SQL text: a request repeating one filter 5,000 times kept about
//! 10.8 MB of parse and plan trees, so 256 such shapes would hold gigabytes in every pooled
//! backend. Each kept plan is therefore measured where Postgres keeps it (its `CachedPlanSource`
//! context, with the analyzed query, and its generic `CachedPlan`, both children of
//! `CacheMemoryContext` and named by the SQL text), and:
//! * a plan above `PLAN_LIMIT_BYTES` is used for its request and freed, never kept;
//! * the least recently used plans are freed while all kept plans together exceed
//!   `BUDGET_BYTES` or their count exceeds `CAPACITY`.
//!
//! Postgres builds the generic plan during an execution (after a few custom plans, or at once
//! for a statement without parameters), so a plan is measured again when the next request
//! arrives, for its first `MEASURED_USES` uses; after that its size no longer changes.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::rc::Rc;

use pgrx::pg_sys;
use pgrx::spi::OwnedPreparedStatement;

/// Plans kept per backend. Request shapes repeat (the sidecar's SQL differs by columns, filters
/// and order, never by values), so a few hundred cover an application.
pub const CAPACITY: usize = 256;
/// Memory all kept plans of one backend may hold together.
pub const BUDGET_BYTES: usize = 32 << 20;
/// A plan holding more than this is not kept (it is planned again when it comes back).
pub const PLAN_LIMIT_BYTES: usize = 2 << 20;
/// Uses after which a plan's size is settled (Postgres decides on a generic plan by the sixth).
const MEASURED_USES: u32 = 8;

struct Entry {
    statement: Rc<OwnedPreparedStatement>,
    last_used: u64,
    uses: u32,
    bytes: usize,
}

#[derive(Default)]
struct Cache {
    entries: HashMap<String, Entry>,
    clock: u64,
    bytes: usize,
    /// The plan used by the previous request while its size may still change.
    unsettled: Option<String>,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
}

/// The kept plan for `sql`, if any.
pub fn lookup(sql: &str) -> Option<Rc<OwnedPreparedStatement>> {
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        cache.settle_previous();
        cache.clock += 1;
        let now = cache.clock;
        let entry = cache.entries.get_mut(sql)?;
        entry.last_used = now;
        entry.uses += 1;
        let statement = Rc::clone(&entry.statement);
        if entry.uses <= MEASURED_USES {
            cache.unsettled = Some(sql.to_owned());
        }
        Some(statement)
    })
}

/// Keeps a plan just prepared for `sql`, unless it is too big; evicts to stay in bounds.
pub fn keep(sql: &str, statement: &Rc<OwnedPreparedStatement>) {
    let bytes = plan_bytes(sql);
    if bytes > PLAN_LIMIT_BYTES {
        return;
    }
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        cache.clock += 1;
        let entry = Entry {
            statement: Rc::clone(statement),
            last_used: cache.clock,
            uses: 1,
            bytes,
        };
        cache.bytes += bytes;
        if let Some(replaced) = cache.entries.insert(sql.to_owned(), entry) {
            cache.bytes -= replaced.bytes;
        }
        cache.unsettled = Some(sql.to_owned());
        cache.evict();
    })
}

impl Cache {
    /// Measures the previous request's plan again (its execution may have built a generic plan)
    /// and restores the bounds.
    fn settle_previous(&mut self) {
        let Some(sql) = self.unsettled.take() else {
            return;
        };
        let Some(entry) = self.entries.get_mut(&sql) else {
            return;
        };
        let bytes = plan_bytes(&sql);
        let old = std::mem::replace(&mut entry.bytes, bytes);
        self.bytes = self.bytes - old + bytes;
        if bytes > PLAN_LIMIT_BYTES {
            self.remove(&sql);
        }
        self.evict();
    }

    fn evict(&mut self) {
        while self.entries.len() > CAPACITY || self.bytes > BUDGET_BYTES {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(key, _)| key.clone());
            match oldest {
                Some(key) => self.remove(&key),
                None => break,
            }
        }
    }

    /// Forgets a plan; Postgres frees it when the last request using it is done with it.
    fn remove(&mut self, sql: &str) {
        if let Some(entry) = self.entries.remove(sql) {
            self.bytes -= entry.bytes;
        }
    }
}

/// Bytes Postgres holds for the plans of `sql`: the `CachedPlanSource` and generic `CachedPlan`
/// contexts under `CacheMemoryContext` whose identifier is this SQL text, with their children.
fn plan_bytes(sql: &str) -> usize {
    let Ok(sql) = CString::new(sql) else {
        return 0;
    };
    let mut total = 0;
    // SAFETY: walks this backend's memory-context tree, which nothing changes meanwhile (one
    // thread); names and identifiers are NUL-terminated strings owned by their contexts.
    unsafe {
        let mut child = (*pg_sys::CacheMemoryContext).firstchild;
        while !child.is_null() {
            let context = &*child;
            if !context.ident.is_null() && !context.name.is_null() {
                let name = CStr::from_ptr(context.name);
                if (name == c"CachedPlanSource" || name == c"CachedPlan")
                    && CStr::from_ptr(context.ident) == sql.as_c_str()
                {
                    total += pg_sys::MemoryContextMemAllocated(child, true);
                }
            }
            child = context.nextchild;
        }
    }
    total
}

/// How many plans this backend keeps, and the bytes they hold (tests check the bounds).
#[cfg(any(test, feature = "pg_test"))]
pub(crate) fn usage() -> (usize, usize) {
    CACHE.with(|cache| {
        let cache = cache.borrow();
        (cache.entries.len(), cache.bytes)
    })
}
