//! File watching: the directories of the files a client served or watches, watched with
//! `notify` (inotify on Linux), so that a rewritten file, or the kubelet's atomic swap of a
//! Secret volume's `..data` link, refreshes the cached value and reaches the watch streams
//! within a second, without waiting for the TTL.
//!
//! Watches are bounded: one per mount directory (`<root>/<mount>`, where the kubelet swaps
//! `..data`), plus one per other directory that holds a served file (`<mount>/sub/x.json`),
//! at most [`MAX_DIRS`] in all; past that, files are refreshed by their TTL only. An event
//! anywhere under a mount refreshes what the client holds from that mount, after a short
//! [`DEBOUNCE`] that gathers the burst of events one swap makes. The watcher, its thread and
//! the task that refreshes are dropped with the client.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use secret_uri::SecretUri;
use tokio::sync::Notify;

use super::{Watched, lock};
use crate::client::{Inner, ResolveOptions};
use crate::secret::UriInput;

/// The most directories one client watches.
pub(super) const MAX_DIRS: usize = 256;
/// How long after a first event the refresh waits for the rest of its burst.
const DEBOUNCE: Duration = Duration::from_millis(50);

/// The client's file watcher, started at the first file it serves or watches.
#[derive(Default)]
pub(in crate::client) struct FileWatch {
    /// Never locked by the event handler: `notify` answers `watch` calls on the thread that
    /// runs the handler, so holding a lock the handler takes while calling it could deadlock.
    watcher: Mutex<Option<RecommendedWatcher>>,
    shared: Arc<Mutex<Shared>>,
    wake: Arc<Notify>,
}

#[derive(Default)]
struct Shared {
    /// The watcher could not start (no inotify instances left …): TTL only.
    failed: bool,
    /// Each watched directory → the mount directory it belongs to.
    dirs: HashMap<PathBuf, PathBuf>,
    /// Each mount directory → what the client holds from it.
    mounts: HashMap<PathBuf, Mount>,
    /// Mount directories with events not yet handled.
    dirty: HashSet<PathBuf>,
}

#[derive(Default)]
struct Mount {
    watched: Vec<Weak<Watched>>,
    /// Canonical URIs of cached values read from the mount.
    served: HashSet<String>,
}

/// What one changed mount asks for.
struct Work {
    /// Its watched secrets, to check.
    watched: Vec<Arc<Watched>>,
    /// Its cached values, to refresh.
    served: Vec<String>,
    /// Its directories other than itself, to watch again.
    nested: Vec<PathBuf>,
}

/// The mount directory and the file's own directory of a file URI read at `path`.
fn dirs_of(uri: &SecretUri, path: &Path) -> Option<(PathBuf, PathBuf)> {
    let depth = uri.path().split('/').filter(|s| !s.is_empty()).count();
    let file_dir = path.parent()?.to_path_buf();
    let mount_dir = path.ancestors().nth(depth)?.to_path_buf();
    Some((mount_dir, file_dir))
}

impl FileWatch {
    /// Refreshes `watched` on every change under its mount.
    pub(in crate::client) fn watch(&self, inner: &Arc<Inner>, watched: &Arc<Watched>, path: &Path) {
        let Some((mount, dir)) = dirs_of(&watched.uri, path) else {
            return;
        };
        if !self.arm(inner, &mount, &dir) {
            return;
        }
        let mut shared = lock(&self.shared);
        shared
            .mounts
            .entry(mount)
            .or_default()
            .watched
            .push(Arc::downgrade(watched));
    }

    /// Refreshes the cached value of `uri` (read at `path`) on every change under its mount.
    pub(in crate::client) fn serve(&self, inner: &Arc<Inner>, uri: &SecretUri, path: &Path) {
        let Some((mount, dir)) = dirs_of(uri, path) else {
            return;
        };
        {
            let shared = lock(&self.shared);
            if shared
                .mounts
                .get(&mount)
                .is_some_and(|m| m.served.contains(uri.as_str()))
                && shared.dirs.contains_key(&dir)
            {
                return;
            }
        }
        if !self.arm(inner, &mount, &dir) {
            return;
        }
        lock(&self.shared)
            .mounts
            .entry(mount)
            .or_default()
            .served
            .insert(uri.as_str().to_owned());
    }

    /// Forgets a watch that ended.
    pub(in crate::client) fn unwatch(&self, watched: &Watched) {
        let mut shared = lock(&self.shared);
        for mount in shared.mounts.values_mut() {
            mount
                .watched
                .retain(|w| w.upgrade().is_some_and(|w| !std::ptr::eq(&*w, watched)));
        }
    }

    /// Stops watching (the client is closing).
    pub(in crate::client) fn clear(&self) {
        lock(&self.watcher).take();
        let mut shared = lock(&self.shared);
        shared.mounts.clear();
        shared.dirs.clear();
        shared.dirty.clear();
    }

    /// Watches `mount` and `dir` (starting the watcher at first use); whether both are.
    fn arm(&self, inner: &Arc<Inner>, mount: &Path, dir: &Path) -> bool {
        let mut watcher = lock(&self.watcher);
        if watcher.is_none() {
            if lock(&self.shared).failed {
                return false;
            }
            match self.start(inner) {
                Some(started) => *watcher = Some(started),
                None => {
                    lock(&self.shared).failed = true;
                    return false;
                }
            }
        }
        let Some(active) = watcher.as_mut() else {
            return false;
        };
        for path in [mount, dir] {
            let known = lock(&self.shared).dirs.contains_key(path);
            if known {
                continue;
            }
            if lock(&self.shared).dirs.len() >= MAX_DIRS {
                tracing::debug!("{MAX_DIRS} directories watched; further files follow their TTL");
                return false;
            }
            if let Err(error) = active.watch(path, RecursiveMode::NonRecursive) {
                tracing::debug!(%error, "cannot watch a secret directory; it follows its TTL");
                return false;
            }
            lock(&self.shared)
                .dirs
                .insert(path.to_path_buf(), mount.to_path_buf());
        }
        true
    }

    /// The watcher, and the task on the client's runtime that handles its events.
    fn start(&self, inner: &Arc<Inner>) -> Option<RecommendedWatcher> {
        let handle = inner.io_handle().ok()?;
        let shared = Arc::clone(&self.shared);
        let wake = Arc::clone(&self.wake);
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let mut state = lock(&shared);
            match event {
                // Opening or reading a file (our own reads among them) changes nothing; a
                // refresh on every open would read the files again forever.
                Ok(event) if event.kind.is_access() => {}
                Ok(event) => {
                    for path in &event.paths {
                        let dir = path.parent().unwrap_or(path);
                        let mount = state
                            .dirs
                            .get(dir)
                            .or_else(|| state.dirs.get(path.as_path()))
                            .cloned();
                        if let Some(mount) = mount {
                            state.dirty.insert(mount);
                        }
                    }
                }
                // Lost events (a queue overflow): everything may have changed.
                Err(_) => {
                    let all: Vec<_> = state.mounts.keys().cloned().collect();
                    state.dirty.extend(all);
                }
            }
            if !state.dirty.is_empty() {
                wake.notify_one();
            }
        })
        .map_err(|error| tracing::debug!(%error, "no file watcher; file secrets follow their TTL"))
        .ok()?;
        handle.spawn(refresh_on_events(
            Arc::downgrade(inner),
            Arc::clone(&self.wake),
        ));
        Some(watcher)
    }

    /// Takes the mounts with pending events: what to check and refresh in each.
    fn take_dirty(&self) -> Vec<Work> {
        let mut shared = lock(&self.shared);
        let dirty: Vec<PathBuf> = shared.dirty.drain().collect();
        let mut work = Vec::with_capacity(dirty.len());
        for mount in dirty {
            let nested: Vec<PathBuf> = shared
                .dirs
                .iter()
                .filter(|(dir, m)| **m == mount && **dir != mount)
                .map(|(dir, _)| dir.clone())
                .collect();
            if let Some(state) = shared.mounts.get_mut(&mount) {
                state.watched.retain(|w| w.strong_count() > 0);
                let watched = state.watched.iter().filter_map(Weak::upgrade).collect();
                let served = state.served.iter().cloned().collect();
                work.push(Work {
                    watched,
                    served,
                    nested,
                });
            }
        }
        work
    }

    /// Watches again the nested directories of a mount whose `..data` may have been swapped:
    /// their old watches followed the old target.
    fn rearm(&self, nested: &[PathBuf]) {
        let mut watcher = lock(&self.watcher);
        if let Some(active) = watcher.as_mut() {
            for dir in nested {
                let _ = active.unwatch(dir);
                let _ = active.watch(dir, RecursiveMode::NonRecursive);
            }
        }
    }

    /// Forgets a served URI that left the cache.
    fn forget(&self, key: &str) {
        for mount in lock(&self.shared).mounts.values_mut() {
            mount.served.remove(key);
        }
    }
}

/// Handles the watcher's events until the client is dropped: after each burst, checks the
/// watched secrets and refreshes the cached values of every mount that changed.
async fn refresh_on_events(inner: Weak<Inner>, wake: Arc<Notify>) {
    loop {
        wake.notified().await;
        tokio::time::sleep(DEBOUNCE).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if inner.closed.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let files = &inner.watches.files;
        for Work {
            watched,
            served,
            nested,
        } in files.take_dirty()
        {
            files.rearm(&nested);
            for watch in watched {
                inner.check(&watch).await;
            }
            for key in served {
                let Some(entry) = inner.cache.get(&key) else {
                    files.forget(&key);
                    continue;
                };
                let uri = entry.uri.clone();
                drop(entry);
                let refreshed = inner
                    .resolve(UriInput::Parsed(&uri), ResolveOptions::refresh())
                    .await;
                match refreshed {
                    Ok(secret) => inner.changed(&secret),
                    // Gone (the refresh dropped it from the cache): no longer served.
                    Err(_) if inner.cache.get(&key).is_none() => files.forget(&key),
                    Err(_) => {}
                }
            }
        }
    }
}
