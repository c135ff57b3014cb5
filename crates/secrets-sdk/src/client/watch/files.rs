//! File watching: the directories of the files a client served or watches, watched with
//! `notify` (inotify on Linux), so that a rewritten file, or the kubelet's atomic swap of a
//! Secret volume's `..data` link, refreshes the cached value and reaches the watch streams
//! within a second, without waiting for the TTL.
//!
//! What is watched, per mount (`<root>/<mount>`, where the kubelet swaps `..data`):
//! - the mount directory, and every other directory that holds a served file
//!   (`<mount>/sub/x.json`), when its real path stays inside the mount;
//! - the mount's parent, so that a mount directory removed and made again, or a mount that is
//!   a link swapped to a new target, is watched again;
//! - for a mount that is one file (`file://name`, Docker's `/run/secrets/name`), its folder,
//!   its events told apart by file name.
//!
//! At most [`MAX_DIRS`] directories per client; past that, files follow their TTL. A mount
//! nobody holds any more (its watches ended, its values left the cache) is released. An event
//! under a mount refreshes what the client holds from it, after a short [`DEBOUNCE`] that
//! gathers the burst of events one swap makes; opening or reading a file is no event. A file
//! written in place is read once its writer closed it, or [`WRITE_WAIT`] after its first
//! write if the close never comes, and a change a read shows is published only once a second
//! read agrees (a read between a truncation, which no event announces, and the write that
//! follows would announce an empty file, then the old bytes again). The watcher, its thread
//! and the task that refreshes are dropped with the client.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, ModifyKind};
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
/// How long a round that read a change waits for its mount to stay quiet before publishing
/// it: a file rewritten in place can be read between its truncation and its write, whose
/// events may reach the watcher a little after the read.
const CONFIRM_AFTER: Duration = Duration::from_millis(50);
/// How long a mount's refresh waits for a file being written in place to be closed.
const WRITE_WAIT: Duration = Duration::from_millis(500);
/// Served URIs no longer cached are forgotten when a mount holds this many more than at the
/// last pruning.
const PRUNE_EVERY: usize = 1024;

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
    /// The directories given to the watcher.
    armed: HashSet<PathBuf>,
    /// Each mount or nested directory → its mount.
    dir_mount: HashMap<PathBuf, PathBuf>,
    /// Each mount that is one file → itself.
    file_mount: HashSet<PathBuf>,
    /// Each mount → what the client holds from it.
    mounts: HashMap<PathBuf, Mount>,
    /// Mounts with events not yet handled.
    dirty: HashSet<PathBuf>,
}

#[derive(Default)]
struct Mount {
    watched: Vec<Weak<Watched>>,
    /// Canonical URIs of cached values read from the mount.
    served: HashSet<String>,
    /// `served.len()` after the last pruning.
    pruned_at: usize,
    /// Its directories given to the watcher (the mount's parent included).
    dirs: Vec<PathBuf>,
    /// Files written or made in place and not closed yet → when the first write was seen.
    writing: HashMap<PathBuf, Instant>,
}

/// Where a file URI read at `path` sits.
struct Place {
    /// The mount: its directory, or the file itself for a one-file mount.
    mount: PathBuf,
    /// The mount's parent directory (the root).
    parent: PathBuf,
    /// The file's directory, when it is below the mount directory.
    nested: Option<PathBuf>,
    one_file: bool,
}

fn place_of(uri: &SecretUri, path: &Path) -> Option<Place> {
    let depth = uri.path().split('/').filter(|s| !s.is_empty()).count();
    let mount = path.ancestors().nth(depth)?.to_path_buf();
    let parent = mount.parent()?.to_path_buf();
    let file_dir = path.parent()?;
    let nested = (depth > 1).then(|| file_dir.to_path_buf());
    Some(Place {
        mount,
        parent,
        nested,
        one_file: depth == 0,
    })
}

/// Whether `dir`'s real path lies inside `mount`'s: a link in the mount pointing elsewhere
/// is never watched (a read through it is refused anyway).
fn inside(dir: &Path, mount: &Path) -> bool {
    match (std::fs::canonicalize(dir), std::fs::canonicalize(mount)) {
        (Ok(dir), Ok(mount)) => dir.starts_with(mount),
        _ => false,
    }
}

/// What one changed mount asks for.
struct Work {
    mount: PathBuf,
    /// Its watched secrets, to check.
    watched: Vec<Arc<Watched>>,
    /// Its cached values, to refresh.
    served: Vec<String>,
    /// Its directories, to watch again (a swapped link, a directory made again).
    dirs: Vec<PathBuf>,
}

impl FileWatch {
    /// Refreshes `watched` on every change under its mount.
    pub(in crate::client) fn watch(&self, inner: &Arc<Inner>, watched: &Arc<Watched>, path: &Path) {
        let Some(place) = place_of(&watched.uri, path) else {
            return;
        };
        if self.arm(inner, &place) {
            let mut shared = lock(&self.shared);
            let mount = shared.mounts.entry(place.mount).or_default();
            mount.watched.push(Arc::downgrade(watched));
        }
    }

    /// Refreshes the cached value of `uri` (read at `path`) on every change under its mount.
    pub(in crate::client) fn serve(&self, inner: &Arc<Inner>, uri: &SecretUri, path: &Path) {
        let Some(place) = place_of(uri, path) else {
            return;
        };
        let known = {
            let shared = lock(&self.shared);
            shared
                .mounts
                .get(&place.mount)
                .is_some_and(|m| m.served.contains(uri.as_str()))
        };
        if known || !self.arm(inner, &place) {
            return;
        }
        let mut shared = lock(&self.shared);
        let mount = shared.mounts.entry(place.mount).or_default();
        mount.served.insert(uri.as_str().to_owned());
        if mount.served.len() >= mount.pruned_at + PRUNE_EVERY {
            mount.served.retain(|key| inner.cache.get(key).is_some());
            mount.pruned_at = mount.served.len();
        }
    }

    /// Forgets a watch that ended, and releases its mount if nothing else holds it.
    pub(in crate::client) fn unwatch(&self, watched: &Watched) {
        self.release(|mount| {
            mount
                .watched
                .retain(|w| w.upgrade().is_some_and(|w| !std::ptr::eq(&*w, watched)));
        });
    }

    /// Forgets every served value (the cache was emptied), releasing the mounts no watch
    /// holds.
    pub(in crate::client) fn forget_served(&self) {
        self.release(|mount| {
            mount.served.clear();
            mount.pruned_at = 0;
        });
    }

    /// Applies `update` to every mount, then releases those nothing holds any more (no live
    /// watch, no served value) and gives their directories back.
    fn release(&self, mut update: impl FnMut(&mut Mount)) {
        let released: Vec<PathBuf> = {
            let mut shared = lock(&self.shared);
            let mut empty = Vec::new();
            for (key, mount) in &mut shared.mounts {
                update(mount);
                mount.watched.retain(|w| w.strong_count() > 0);
                if mount.watched.is_empty() && mount.served.is_empty() {
                    empty.push(key.clone());
                }
            }
            empty
                .into_iter()
                .flat_map(|key| self.forget_mount(&mut shared, &key))
                .collect()
        };
        self.disarm(&released);
    }

    /// Stops watching (the client is closing).
    pub(in crate::client) fn clear(&self) {
        lock(&self.watcher).take();
        let mut shared = lock(&self.shared);
        *shared = Shared {
            failed: shared.failed,
            ..Shared::default()
        };
    }

    /// Drops `key` from the maps; the directories no other mount uses, to give back.
    fn forget_mount(&self, shared: &mut Shared, key: &Path) -> Vec<PathBuf> {
        let Some(mount) = shared.mounts.remove(key) else {
            return Vec::new();
        };
        shared.file_mount.remove(key);
        shared.dir_mount.retain(|_, m| m != key);
        let still_used: HashSet<&PathBuf> =
            shared.mounts.values().flat_map(|m| m.dirs.iter()).collect();
        let released: Vec<PathBuf> = mount
            .dirs
            .into_iter()
            .filter(|dir| !still_used.contains(dir))
            .collect();
        for dir in &released {
            shared.armed.remove(dir);
        }
        released
    }

    fn disarm(&self, dirs: &[PathBuf]) {
        if let Some(active) = lock(&self.watcher).as_mut() {
            for dir in dirs {
                let _ = active.unwatch(dir);
            }
        }
    }

    /// Watches what `place` needs (starting the watcher at first use); whether the mount
    /// is watched.
    fn arm(&self, inner: &Arc<Inner>, place: &Place) -> bool {
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
        let mut wanted = vec![(place.parent.clone(), None)];
        if !place.one_file {
            wanted.push((place.mount.clone(), Some(place.mount.clone())));
        }
        if let Some(nested) = &place.nested
            && inside(nested, &place.mount)
        {
            wanted.push((nested.clone(), Some(place.mount.clone())));
        }
        let mut mount_watched = true;
        for (dir, maps_to) in wanted {
            let is_mount = maps_to.as_deref() == Some(place.mount.as_path()) && dir == place.mount;
            let known = lock(&self.shared).armed.contains(&dir);
            if !known {
                if lock(&self.shared).armed.len() >= MAX_DIRS {
                    tracing::debug!(
                        "{MAX_DIRS} directories watched; further files follow their TTL"
                    );
                    return false;
                }
                if let Err(error) = active.watch(&dir, RecursiveMode::NonRecursive) {
                    // The kind only: notify's message names the path.
                    tracing::debug!(
                        kind = ?kind_of(&error),
                        "cannot watch a secret directory; it follows its TTL until it can"
                    );
                    if dir == place.parent || is_mount {
                        mount_watched = false;
                    }
                    // A nested directory made later is watched at the mount's next event.
                } else {
                    lock(&self.shared).armed.insert(dir.clone());
                }
            }
            let mut shared = lock(&self.shared);
            if let Some(mount) = maps_to {
                shared.dir_mount.insert(dir.clone(), mount);
            }
            let entry = shared.mounts.entry(place.mount.clone()).or_default();
            if !entry.dirs.contains(&dir) {
                entry.dirs.push(dir);
            }
        }
        if place.one_file {
            lock(&self.shared).file_mount.insert(place.mount.clone());
        }
        mount_watched
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
                // refresh on every open would read the files again forever. A write that
                // closes is the end of a rewrite: kept.
                Ok(event) if is_read(&event.kind) => {}
                Ok(event) => {
                    for path in &event.paths {
                        let mount = if state.file_mount.contains(path.as_path()) {
                            Some(path.clone())
                        } else {
                            state
                                .dir_mount
                                .get(path.as_path())
                                .or_else(|| path.parent().and_then(|p| state.dir_mount.get(p)))
                                .cloned()
                        };
                        if let Some(mount) = mount {
                            if let Some(held) = state.mounts.get_mut(&mount) {
                                track_writes(&mut held.writing, &event.kind, path);
                            }
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
        .map_err(|error| {
            tracing::debug!(kind = ?kind_of(&error), "no file watcher; file secrets follow their TTL");
        })
        .ok()?;
        handle.spawn(refresh_on_events(
            Arc::downgrade(inner),
            Arc::clone(&self.wake),
        ));
        Some(watcher)
    }

    /// Takes the mounts with pending events and no file mid-write: what to check and refresh
    /// in each; and, when a mount waits for a writer to close its file, how long to wait
    /// before asking again.
    fn take_dirty(&self, now: Instant) -> (Vec<Work>, Option<Duration>) {
        let mut shared = lock(&self.shared);
        let dirty: Vec<PathBuf> = shared.dirty.drain().collect();
        let mut work = Vec::with_capacity(dirty.len());
        let mut again: Option<Duration> = None;
        for mount in dirty {
            if let Some(state) = shared.mounts.get_mut(&mount) {
                // A writer that never closes (or whose close was lost) holds the mount
                // back for WRITE_WAIT at most.
                state
                    .writing
                    .retain(|_, since| now.duration_since(*since) < WRITE_WAIT);
                if let Some(oldest) = state.writing.values().min() {
                    let left = WRITE_WAIT.saturating_sub(now.duration_since(*oldest));
                    let wait = left.min(DEBOUNCE);
                    again = Some(again.map_or(wait, |w| w.min(wait)));
                    shared.dirty.insert(mount);
                    continue;
                }
                state.watched.retain(|w| w.strong_count() > 0);
                work.push(Work {
                    mount: mount.clone(),
                    watched: state.watched.iter().filter_map(Weak::upgrade).collect(),
                    served: state.served.iter().cloned().collect(),
                    dirs: state.dirs.clone(),
                });
            }
        }
        (work, again)
    }

    /// Watches a mount's directories again: a `..data` or mount link swapped, or a directory
    /// removed and made again, left the old watches on the old directories. (A watch of a
    /// path already watched is updated in place: no window without one.)
    fn rearm(&self, dirs: &[PathBuf]) {
        let mut watcher = lock(&self.watcher);
        if let Some(active) = watcher.as_mut() {
            for dir in dirs {
                if active.watch(dir, RecursiveMode::NonRecursive).is_ok() {
                    lock(&self.shared).armed.insert(dir.clone());
                }
            }
        }
    }

    /// Whether `mount` has events not handled yet.
    fn is_dirty(&self, mount: &Path) -> bool {
        lock(&self.shared).dirty.contains(mount)
    }

    /// Forgets a served URI that left the cache.
    fn forget(&self, key: &str) {
        for mount in lock(&self.shared).mounts.values_mut() {
            mount.served.remove(key);
        }
    }
}

/// Keeps `writing` (a mount's files mid-write) up to date with one event on `path`: a write
/// or a new regular file starts a write, a close after writing, a removal or a rename ends it.
fn track_writes(writing: &mut HashMap<PathBuf, Instant>, kind: &EventKind, path: &Path) {
    match kind {
        EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any)
        | EventKind::Create(CreateKind::File | CreateKind::Any)
            // A link made in place (the kubelet's `..data_tmp`) is never closed.
            if !writing.contains_key(path)
                && std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file()) =>
        {
            writing.insert(path.to_path_buf(), Instant::now());
        }
        EventKind::Access(AccessKind::Close(AccessMode::Write))
        | EventKind::Remove(_)
        | EventKind::Modify(ModifyKind::Name(_)) => {
            writing.remove(path);
        }
        _ => {}
    }
}

/// Opening, reading and closing without writing.
fn is_read(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Access(
            AccessKind::Open(_) | AccessKind::Read | AccessKind::Close(AccessMode::Read)
        )
    )
}

/// A watcher error's kind, without the paths its message names.
fn kind_of(error: &notify::Error) -> &'static str {
    match &error.kind {
        notify::ErrorKind::Generic(_) => "generic",
        notify::ErrorKind::Io(_) => "io",
        notify::ErrorKind::PathNotFound => "path_not_found",
        notify::ErrorKind::WatchNotFound => "watch_not_found",
        notify::ErrorKind::InvalidConfig(_) => "invalid_config",
        notify::ErrorKind::MaxFilesWatch => "max_files_watch",
    }
}

/// Handles the watcher's events until the client is dropped: after each burst, checks the
/// watched secrets and refreshes the cached values of every mount that changed.
async fn refresh_on_events(inner: Weak<Inner>, wake: Arc<Notify>) {
    let mut again = None;
    let mut put_off: HashSet<PathBuf> = HashSet::new();
    loop {
        match again.take() {
            // A mount waits for a file being written to be closed.
            Some(wait) => tokio::time::sleep(wait).await,
            None => {
                wake.notified().await;
                tokio::time::sleep(DEBOUNCE).await;
            }
        }
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if inner.closed.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let files = &inner.watches.files;
        let (work, wait) = files.take_dirty(Instant::now());
        again = wait;
        for Work {
            mount,
            watched,
            served,
            dirs,
        } in work
        {
            files.rearm(&dirs);
            let mut reads = Vec::with_capacity(watched.len());
            for watch in &watched {
                reads.extend(inner.read_check(watch).await);
            }
            // A change is published once the mount stayed quiet a moment after the reads;
            // a write that was under way when they ran starts the round that reads it. A
            // mount whose round was put off publishes at the next one (another file written
            // all the time in its folder delays a change by one round, not for ever).
            if !put_off.remove(&mount) && reads.iter().any(|read| inner.would_change(read)) {
                tokio::time::sleep(CONFIRM_AFTER).await;
                if files.is_dirty(&mount) {
                    reads.clear();
                    put_off.insert(mount);
                }
            }
            for read in reads {
                inner.publish_check(read);
            }
            // One read per file and round: a watched value's check refreshed its cache entry.
            let checked: HashSet<&str> = watched.iter().map(|w| w.uri.as_str()).collect();
            for key in served.iter().filter(|key| !checked.contains(key.as_str())) {
                let Some(entry) = inner.cache.get(key) else {
                    files.forget(key);
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
                    Err(_) if inner.cache.get(key).is_none() => files.forget(key),
                    Err(_) => {}
                }
            }
        }
    }
}
