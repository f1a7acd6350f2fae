//! Running a few internal statements as the extension's owner. Users write change events and
//! history only through the triggers: they hold no privileges on Sluice's tables, so a client
//! cannot forge events. The guard switches the user id the way Postgres itself does for
//! SECURITY DEFINER functions; an error in between aborts the (sub)transaction, which restores
//! the previous user id by itself.

use crate::error::{raise, report};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use std::cell::Cell;

/// A Sluice function or trigger ran in a database where the extension is not installed (its
/// library was loaded by a trigger left behind, say): 55000, object not in prerequisite state.
#[derive(Debug, thiserror::Error)]
#[error("sluice: the sluice extension is not installed in this database")]
pub struct NotInstalled;

impl From<NotInstalled> for ErrorReport {
    fn from(error: NotInstalled) -> Self {
        report(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            &error,
            "sluice::elevate",
        )
    }
}

pub struct AsExtensionOwner {
    saved_user: pg_sys::Oid,
    saved_context: i32,
}

impl AsExtensionOwner {
    pub fn begin() -> Self {
        let owner = extension_owner();
        let mut saved_user = pg_sys::Oid::INVALID;
        let mut saved_context = 0;
        // SAFETY: plain reads and writes of the backend's current user id, as fmgr does for
        // SECURITY DEFINER functions; restored in Drop or by transaction abort.
        unsafe {
            pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context);
            pg_sys::SetUserIdAndSecContext(
                owner,
                saved_context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32,
            );
        }
        AsExtensionOwner {
            saved_user,
            saved_context,
        }
    }
}

impl Drop for AsExtensionOwner {
    fn drop(&mut self) {
        // SAFETY: restores exactly what `begin` saved.
        unsafe { pg_sys::SetUserIdAndSecContext(self.saved_user, self.saved_context) }
    }
}

fn extension_owner() -> pg_sys::Oid {
    thread_local! {
        static OWNER: Cell<Option<pg_sys::Oid>> = const { Cell::new(None) };
    }
    if let Some(owner) = OWNER.get() {
        return owner;
    }
    let owner = Spi::get_one::<pg_sys::Oid>(
        "SELECT extowner FROM pg_catalog.pg_extension WHERE extname = 'sluice'",
    )
    .ok()
    .flatten()
    .unwrap_or_else(|| raise(NotInstalled));
    OWNER.set(Some(owner));
    owner
}
