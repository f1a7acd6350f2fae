//! Admin operations on users (the `service_role` key's `/admin/users`): create, read, update,
//! delete and list any user.

use serde_json::{json, Value};
use uuid::Uuid;

use super::store;
use super::{normalize_email, user_id_of, AccountError, Accounts, Changes};

/// A new user as an admin creates it.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub email: String,
    pub password: Option<String>,
    pub email_confirm: bool,
    pub user_metadata: Option<Value>,
    pub app_metadata: Option<Value>,
    pub role: Option<String>,
    pub ban_seconds: Option<f64>,
}

impl Accounts {
    pub async fn admin_create(&self, new: NewUser) -> Result<Value, AccountError> {
        let email = normalize_email(&new.email)?;
        let hash = match new.password {
            Some(password) => {
                self.check_password(&password)?;
                Some(self.passwords.hash(password).await?)
            }
            None => None,
        };
        let user = store::create_user(
            &self.pool,
            &email,
            hash.as_deref(),
            &new.user_metadata.unwrap_or_else(|| json!({})),
            &new.app_metadata.unwrap_or_else(|| json!({})),
            new.email_confirm,
            new.role.as_deref(),
        )
        .await?;
        match new.ban_seconds {
            Some(ban) => {
                let changes = Changes {
                    ban_seconds: Some(ban),
                    ..Changes::default()
                };
                let id = user_id_of(&user)?;
                self.apply(id, changes, None)
                    .await?
                    .ok_or(AccountError::UserNotFound)
            }
            None => Ok(user),
        }
    }

    pub async fn admin_update(&self, id: Uuid, changes: Changes) -> Result<Value, AccountError> {
        self.apply(id, changes, None)
            .await?
            .ok_or(AccountError::UserNotFound)
    }

    pub async fn admin_get(&self, id: Uuid) -> Result<Value, AccountError> {
        store::get_user(&self.pool, id)
            .await?
            .ok_or(AccountError::UserNotFound)
    }

    pub async fn admin_delete(&self, id: Uuid) -> Result<(), AccountError> {
        if store::delete_user(&self.pool, id).await? {
            Ok(())
        } else {
            Err(AccountError::UserNotFound)
        }
    }

    /// One page of users (1-based) and the total count.
    pub async fn admin_list(&self, page: i32, per_page: i32) -> Result<(Value, i64), AccountError> {
        let listed = store::list_users(&self.pool, page, per_page).await?;
        let total = listed["total"].as_i64().unwrap_or(0);
        Ok((listed["users"].clone(), total))
    }
}
