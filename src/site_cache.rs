//! Sites by account, read from the database and kept for a short time, so a frame costs no
//! query in the common case while changes made elsewhere (`vakt site`, another node) still
//! arrive within `site_cache_secs`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::Result;
use tracing::warn;

use crate::site::Site;
use crate::store::Db;

/// A site, or the knowledge that there is none, as of `at`.
#[derive(Debug, Clone)]
struct Entry {
    site: Option<Arc<Site>>,
    at: Instant,
}

/// The cache.
#[derive(Debug)]
pub struct SiteCache {
    db: Db,
    ttl: Duration,
    map: RwLock<HashMap<String, Entry>>,
}

/// Entries beyond this are dropped wholesale (they are re-read on demand), which bounds the
/// memory a scan of random accounts can take.
const MAX_ENTRIES: usize = 2_000_000;

impl SiteCache {
    /// An empty cache over `db`.
    pub fn new(db: Db, ttl: Duration) -> Self {
        Self {
            db,
            ttl,
            map: RwLock::new(HashMap::new()),
        }
    }

    /// The site with this (upper-case) account, `None` if there is none. Errors only when the
    /// database cannot be read and nothing usable is cached.
    pub async fn get(&self, account: &str) -> Result<Option<Arc<Site>>> {
        let cached = self
            .map
            .read()
            .expect("site cache lock")
            .get(account)
            .cloned();
        if let Some(e) = &cached {
            if e.at.elapsed() < self.ttl {
                return Ok(e.site.clone());
            }
        }
        let site = match self.db.site(account).await {
            Ok(spec) => match spec.map(Site::new).transpose() {
                Ok(site) => site.map(Arc::new),
                Err(e) => {
                    warn!(account, error = %e, "site in the database has an unusable key; treating it as unknown");
                    None
                }
            },
            // A database hiccup must not turn known sites into NAKs: keep using what we had.
            Err(e) => match cached {
                Some(old) => {
                    warn!(account, error = %e, "site lookup failed; using the cached site");
                    return Ok(old.site);
                }
                None => return Err(e),
            },
        };
        let mut map = self.map.write().expect("site cache lock");
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(
            account.to_owned(),
            Entry {
                site: site.clone(),
                at: Instant::now(),
            },
        );
        Ok(site)
    }

    /// Forgets one account (after it was changed through this process).
    pub fn invalidate(&self, account: &str) {
        self.map.write().expect("site cache lock").remove(account);
    }
}
