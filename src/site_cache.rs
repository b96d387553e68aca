//! Sites by account, read from the database and kept, so a frame costs no query in the common
//! case while changes made elsewhere (`vakt site`, the HTTP API, another node) still arrive
//! within `site_cache_secs`.
//!
//! Whether anything changed is one read: `site_epoch` counts every change to `sites`
//! (triggers, migrations/*/0009_site_epoch.sql). [`SiteCache::keep_current`] reads it every
//! half `site_cache_secs`. While it holds, every entry is confirmed current as of that read;
//! when it moved, every site is read again, a page at a time, and the pages replace the cache
//! at once. An entry is used while it was read, or last confirmed, less than `site_cache_secs`
//! ago, so the old entries serve while the new ones are read. When the epoch cannot be read,
//! entries run out that long after their last confirmation and are read again on use, as a
//! frame from a site not in the cache is.
//!
//! Until 2026-12-06 each entry was read again on its first use past half its time instead. The
//! sites were loaded together at start-up, so they went stale together: every 5 s, the
//! connection thread ran 1,000 reads in about 0.2 s for 1,000 sites, beside the frames. And a
//! site heard from once a minute (a heartbeat) was read on its frame's path every time.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::Result;
use metrics::counter;
use tracing::warn;

use crate::site::Site;
use crate::store::Db;

/// A site, or the knowledge that there is none, as read at `at`.
#[derive(Debug, Clone)]
struct Entry {
    site: Option<Arc<Site>>,
    at: Instant,
}

#[derive(Debug, Default)]
struct Cached {
    map: HashMap<String, Entry>,
    /// The epoch the map was read under and when it was last found unchanged (when that read
    /// began), once [`SiteCache::keep_current`] has read it. Kept when it is found moved: the
    /// entries were current then, before the change, so they may serve until `site_cache_secs`
    /// after it while every site is read again, and the frames of a busy station do not all
    /// read their sites at once meanwhile.
    confirmed: Option<(i64, Instant)>,
    /// Bumped whenever the map is replaced, so a read begun before cannot put a site read
    /// under the old epoch into the new map.
    generation: u64,
}

/// The cache.
#[derive(Debug)]
pub struct SiteCache {
    db: Db,
    ttl: Duration,
    cached: RwLock<Cached>,
}

/// Entries beyond this are dropped wholesale (they are re-read on demand), which bounds the
/// memory a scan of random accounts can take.
const MAX_ENTRIES: usize = 2_000_000;

/// Sites read per query when the whole cache is read again. Each page is decoded on the
/// connections' thread between frames: 19,000 sites in pages of 10,000 held frames for long
/// enough to double the p99 at 10,000 frames/s while sites changed every 4 s (README,
/// "Results").
const PAGE: i64 = 1_000;

impl SiteCache {
    /// An empty cache over `db`.
    pub fn new(db: Db, ttl: Duration) -> Self {
        Self {
            db,
            ttl,
            cached: RwLock::new(Cached::default()),
        }
    }

    /// The site with this (upper-case) account, `None` if there is none. Errors only when the
    /// database cannot be read and nothing current is cached.
    pub async fn get(&self, account: &str) -> Result<Option<Arc<Site>>> {
        {
            let c = self.cached.read().expect("site cache lock");
            if let Some(e) = c.map.get(account) {
                let current_as_of = c.confirmed.map_or(e.at, |(_, t)| t.max(e.at));
                if current_as_of.elapsed() < self.ttl {
                    return Ok(e.site.clone());
                }
            }
        }
        self.load(account).await
    }

    /// Keeps the cache current, for as long as the process runs: reads every site at once,
    /// then the epoch every half `site_cache_secs`, and every site again when it moved.
    pub async fn keep_current(&self) {
        let every = (self.ttl / 2).max(Duration::from_millis(100));
        // Said once per outage, not every half `site_cache_secs`.
        let mut failing = false;
        loop {
            match self.check().await {
                Ok(read) => {
                    if let Some(n) = read {
                        tracing::info!(sites = n, "site cache read");
                    }
                    failing = false;
                }
                Err(e) => {
                    if !failing {
                        warn!(error = %e, "reading the sites failed; cached sites run out and are read on use");
                    }
                    failing = true;
                }
            }
            tokio::time::sleep(every).await;
        }
    }

    /// One look at the epoch: confirms the cache, or reads every site again. Returns how many
    /// sites were read, if they were.
    async fn check(&self) -> Result<Option<usize>> {
        let started = Instant::now();
        let epoch = self.db.site_epoch().await?;
        {
            let mut c = self.cached.write().expect("site cache lock");
            if let Some((held, at)) = &mut c.confirmed {
                if *held == epoch {
                    *at = started;
                    return Ok(None);
                }
            }
        }
        let map = self.read_all(started).await?;
        let n = map.len();
        let mut c = self.cached.write().expect("site cache lock");
        *c = Cached {
            map,
            confirmed: Some((epoch, started)),
            generation: c.generation + 1,
        };
        counter!("vakt_site_reads_total", "how" => "all").increment(1);
        Ok(Some(n))
    }

    /// Every site, a page at a time, as of `at` or later.
    async fn read_all(&self, at: Instant) -> Result<HashMap<String, Entry>> {
        let mut map = HashMap::new();
        let mut after: Option<String> = None;
        while map.len() < MAX_ENTRIES {
            let page = self.db.sites(after.as_deref(), PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.account.clone());
            for spec in page {
                let account = spec.normalized_account();
                let site = usable(&account, Site::new(spec));
                map.insert(account, Entry { site, at });
            }
        }
        Ok(map)
    }

    /// Reads one site into the cache.
    async fn load(&self, account: &str) -> Result<Option<Arc<Site>>> {
        let generation = self.cached.read().expect("site cache lock").generation;
        let at = Instant::now();
        counter!("vakt_site_reads_total", "how" => "one").increment(1);
        let site = match self.db.site(account).await? {
            Some(spec) => usable(account, Site::new(spec)),
            None => None,
        };
        let mut c = self.cached.write().expect("site cache lock");
        if c.generation == generation {
            if c.map.len() >= MAX_ENTRIES {
                c.map.clear();
            }
            c.map.insert(
                account.to_owned(),
                Entry {
                    site: site.clone(),
                    at,
                },
            );
        }
        Ok(site)
    }
}

/// A site whose stored key cannot be used is treated as unknown (its frames get a NAK).
fn usable<E: std::fmt::Display>(account: &str, site: Result<Site, E>) -> Option<Arc<Site>> {
    match site {
        Ok(site) => Some(Arc::new(site)),
        Err(e) => {
            warn!(account, error = %e, "site in the database has an unusable key; treating it as unknown");
            None
        }
    }
}
