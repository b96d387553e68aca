//! Sites by account, read from the database and kept for a short time, so a frame costs no
//! query in the common case while changes made elsewhere (`vakt site`, another node) still
//! arrive within `site_cache_secs`.
//!
//! An entry past half its time is read again by a background task while it is still used
//! (refresh-ahead), so an active site never makes a frame wait for the database, and no entry
//! older than `site_cache_secs` is ever used.

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
    refreshing: bool,
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
    /// database cannot be read and nothing is cached.
    pub async fn get(self: &Arc<Self>, account: &str) -> Result<Option<Arc<Site>>> {
        let cached = {
            let map = self.map.read().expect("site cache lock");
            map.get(account).and_then(|e| {
                let age = e.at.elapsed();
                (age < self.ttl).then(|| (e.site.clone(), age >= self.ttl / 2 && !e.refreshing))
            })
        };
        match cached {
            Some((site, false)) => Ok(site),
            Some((site, true)) => {
                // Mark it, so one task refreshes it however many frames arrive meanwhile.
                if let Some(e) = self.map.write().expect("site cache lock").get_mut(account) {
                    e.refreshing = true;
                }
                let (cache, account) = (self.clone(), account.to_owned());
                tokio::spawn(async move {
                    if let Err(e) = cache.load(&account).await {
                        warn!(account, error = %e, "site refresh failed; will read it again on use");
                        if let Some(e) = cache
                            .map
                            .write()
                            .expect("site cache lock")
                            .get_mut(&account)
                        {
                            e.refreshing = false;
                        }
                    }
                });
                Ok(site)
            }
            None => self.load(account).await,
        }
    }

    /// Reads every site into the cache, a page at a time, so that not even an account's first
    /// frame waits for the database. Runs in the background at start-up; frames arriving
    /// meanwhile load their site on demand.
    pub async fn preload(&self) -> Result<usize> {
        let mut after: Option<String> = None;
        let mut n = 0;
        loop {
            let page = self.db.sites(after.as_deref(), 10_000).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.account.clone());
            let now = Instant::now();
            let mut map = self.map.write().expect("site cache lock");
            for spec in page {
                if map.len() >= MAX_ENTRIES {
                    return Ok(n);
                }
                let account = spec.normalized_account();
                if let Ok(site) = Site::new(spec) {
                    map.insert(
                        account,
                        Entry {
                            site: Some(Arc::new(site)),
                            at: now,
                            refreshing: false,
                        },
                    );
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Reads a site from the database into the cache.
    async fn load(&self, account: &str) -> Result<Option<Arc<Site>>> {
        let site = match self.db.site(account).await?.map(Site::new).transpose() {
            Ok(site) => site.map(Arc::new),
            Err(e) => {
                warn!(account, error = %e, "site in the database has an unusable key; treating it as unknown");
                None
            }
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
                refreshing: false,
            },
        );
        Ok(site)
    }

    /// Forgets one account (after it was changed through this process).
    pub fn invalidate(&self, account: &str) {
        self.map.write().expect("site cache lock").remove(account);
    }
}
