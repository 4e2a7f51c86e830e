//! Crash-safe, append-only write-ahead log of one tenant.
//!
//! A WAL is a directory of numbered segment files (`0000000000000001.wal`, …).
//! Each segment starts with an 8-byte magic, then records framed as
//! `[len: u32 LE][crc32c(payload): u32 LE][payload]`. Appends go to the newest
//! segment; a segment is rotated once it exceeds `segment_bytes`.
//!
//! Durability follows [`FsyncMode`]: `Never` leaves data in the page cache (it
//! survives a process kill, not a power cut), `Interval` fsyncs from a background
//! tick ([`Wal::sync`]), and `Always` fsyncs before an append returns, batching
//! concurrent appenders into one fsync (group commit).
//!
//! Replay reads every record in order and stops at the first torn or corrupt
//! record of a segment; the newest segment is truncated there so later appends
//! follow valid data.

use std::fs::{self, File, OpenOptions};
use std::io::{self, IoSlice, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Condvar, Mutex};

const MAGIC: &[u8; 8] = b"TFWAL\x00\x00\x01";
const HEADER: usize = 8;
/// Largest record accepted on replay; anything bigger is treated as corruption.
pub const MAX_RECORD: usize = 256 << 20;

/// When appended data is fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncMode {
    Always,
    Interval,
    Never,
}

impl FsyncMode {
    pub fn parse(s: &str) -> Option<FsyncMode> {
        match s {
            "always" => Some(FsyncMode::Always),
            "interval" => Some(FsyncMode::Interval),
            "never" => Some(FsyncMode::Never),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct WalOptions {
    pub fsync: FsyncMode,
    pub segment_bytes: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions { fsync: FsyncMode::Interval, segment_bytes: 64 << 20 }
    }
}

/// Counters of one WAL, all monotonic except `segments`.
#[derive(Debug, Default)]
pub struct WalStats {
    pub bytes_written: AtomicU64,
    pub records: AtomicU64,
    pub fsyncs: AtomicU64,
    pub segments: AtomicU64,
}

/// What a replay found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    pub segments: u64,
    pub records: u64,
    /// Bytes after the last valid record of a segment (torn or corrupt tails).
    pub torn_bytes: u64,
}

struct Active {
    id: u64,
    file: File,
    len: u64,
    /// Sequence number of the last record written (in any segment).
    written_seq: u64,
}

struct SyncState {
    synced_seq: u64,
    syncing: bool,
}

/// The write-ahead log of one tenant.
pub struct Wal {
    dir: PathBuf,
    opts: WalOptions,
    active: Mutex<Active>,
    sync: Mutex<SyncState>,
    synced: Condvar,
    /// Segments that must not be deleted: `(segment, pins)`, pinned by appends
    /// whose data is not yet reflected in the caller's bookkeeping.
    pins: Mutex<Vec<(u64, u32)>>,
    pub stats: WalStats,
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:016}.wal"))
}

/// Segment ids present in `dir`, ascending.
fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut ids = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(stem) = name.strip_suffix(".wal") {
            if let Ok(id) = stem.parse::<u64>() {
                ids.push(id);
            }
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn create_segment(dir: &Path, id: u64) -> io::Result<File> {
    let mut f = OpenOptions::new().create_new(true).append(true).open(segment_path(dir, id))?;
    f.write_all(MAGIC)?;
    f.sync_data()?;
    sync_dir(dir)?;
    Ok(f)
}

impl Wal {
    /// Opens (creating if needed) the WAL in `dir` and replays it: `on_record`
    /// receives `(segment id, payload)` for every valid record in order. New
    /// appends go to a fresh segment after the replayed ones.
    pub fn open<F>(
        dir: &Path,
        opts: WalOptions,
        mut on_record: F,
    ) -> io::Result<(Wal, ReplayReport)>
    where
        F: FnMut(u64, &[u8]),
    {
        fs::create_dir_all(dir)?;
        let ids = list_segments(dir)?;
        let mut report = ReplayReport::default();
        for (n, &id) in ids.iter().enumerate() {
            let newest = n + 1 == ids.len();
            replay_segment(&segment_path(dir, id), id, newest, &mut report, &mut on_record)?;
        }
        let next = ids.last().map_or(1, |id| id + 1);
        let file = create_segment(dir, next)?;
        let stats = WalStats::default();
        stats.segments.store(ids.len() as u64 + 1, Ordering::Relaxed);
        let wal = Wal {
            dir: dir.to_path_buf(),
            opts,
            active: Mutex::new(Active { id: next, file, len: HEADER as u64, written_seq: 0 }),
            sync: Mutex::new(SyncState { synced_seq: 0, syncing: false }),
            synced: Condvar::new(),
            pins: Mutex::new(Vec::new()),
            stats,
        };
        Ok((wal, report))
    }

    /// Appends one record and returns the segment it went to, pinned: the
    /// caller must [`Wal::unpin`] it once its own state references the data.
    /// With `FsyncMode::Always` the record is on stable storage on return.
    pub fn append(&self, payload: &[u8]) -> io::Result<u64> {
        self.append_parts(&[payload])
    }

    /// [`Wal::append`] of one record made of several pieces (written without
    /// joining them first).
    pub fn append_parts(&self, parts: &[&[u8]]) -> io::Result<u64> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let len = u32::try_from(total)
            .ok()
            .filter(|&l| (l as usize) <= MAX_RECORD)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "WAL record too large"))?;
        let crc = parts.iter().fold(0, |crc, p| crc32c::crc32c_append(crc, p));
        let mut head = [0u8; 8];
        head[..4].copy_from_slice(&len.to_le_bytes());
        head[4..].copy_from_slice(&crc.to_le_bytes());
        let mut slices = Vec::with_capacity(parts.len() + 1);
        slices.push(IoSlice::new(&head));
        slices.extend(parts.iter().map(|p| IoSlice::new(p)));

        let (segment, seq) = {
            let mut a = self.active.lock();
            if a.len >= self.opts.segment_bytes {
                self.rotate_locked(&mut a)?;
            }
            if let Err(e) = write_all_vectored(&mut a.file, &slices) {
                // Cut a partly written record off so later records follow valid data.
                let _ = a.file.set_len(a.len);
                return Err(e);
            }
            a.len += 8 + total as u64;
            a.written_seq += 1;
            self.pin(a.id);
            (a.id, a.written_seq)
        };
        self.stats.bytes_written.fetch_add(8 + total as u64, Ordering::Relaxed);
        self.stats.records.fetch_add(1, Ordering::Relaxed);
        if self.opts.fsync == FsyncMode::Always {
            if let Err(e) = self.sync_through(seq) {
                self.unpin(segment);
                return Err(e);
            }
        }
        Ok(segment)
    }

    fn rotate_locked(&self, a: &mut Active) -> io::Result<()> {
        if self.opts.fsync != FsyncMode::Never {
            a.file.sync_data()?;
            self.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        let id = a.id + 1;
        a.file = create_segment(&self.dir, id)?;
        a.id = id;
        a.len = HEADER as u64;
        self.stats.segments.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Group commit: returns once every record up to `seq` is fsynced. One caller
    /// fsyncs for all who wrote before it started; the others wait.
    fn sync_through(&self, seq: u64) -> io::Result<()> {
        let mut s = self.sync.lock();
        loop {
            if s.synced_seq >= seq {
                return Ok(());
            }
            if !s.syncing {
                break;
            }
            self.synced.wait(&mut s);
        }
        s.syncing = true;
        drop(s);
        let result = self.sync_active();
        let mut s = self.sync.lock();
        s.syncing = false;
        if let Ok(upto) = result {
            s.synced_seq = s.synced_seq.max(upto);
        }
        self.synced.notify_all();
        result.map(|_| ())
    }

    /// Fsyncs the active segment; returns the last sequence number it covers.
    fn sync_active(&self) -> io::Result<u64> {
        let (file, upto) = {
            let a = self.active.lock();
            (a.file.try_clone()?, a.written_seq)
        };
        file.sync_data()?;
        self.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        Ok(upto)
    }

    /// Fsyncs everything written so far (the `Interval` tick; a no-op when clean).
    pub fn sync(&self) -> io::Result<()> {
        let seq = self.active.lock().written_seq;
        if self.sync.lock().synced_seq >= seq {
            return Ok(());
        }
        self.sync_through(seq)
    }

    fn pin(&self, segment: u64) {
        let mut pins = self.pins.lock();
        match pins.iter_mut().find(|(s, _)| *s == segment) {
            Some((_, n)) => *n += 1,
            None => pins.push((segment, 1)),
        }
    }

    /// Releases a pin taken by [`Wal::append`].
    pub fn unpin(&self, segment: u64) {
        let mut pins = self.pins.lock();
        if let Some(i) = pins.iter().position(|(s, _)| *s == segment) {
            pins[i].1 -= 1;
            if pins[i].1 == 0 {
                pins.swap_remove(i);
            }
        }
    }

    /// Id of the segment appends currently go to.
    pub fn active_segment(&self) -> u64 {
        self.active.lock().id
    }

    /// Deletes every segment older than `segment` that is neither active nor
    /// pinned. Returns how many were deleted.
    pub fn delete_before(&self, segment: u64) -> io::Result<usize> {
        let active = self.active_segment();
        let floor = self.pins.lock().iter().map(|(s, _)| *s).min().unwrap_or(u64::MAX);
        let limit = segment.min(active).min(floor);
        let mut deleted = 0;
        for id in list_segments(&self.dir)? {
            if id >= limit {
                break;
            }
            match fs::remove_file(segment_path(&self.dir, id)) {
                Ok(()) => deleted += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        if deleted > 0 {
            self.stats.segments.fetch_sub(deleted as u64, Ordering::Relaxed);
        }
        Ok(deleted)
    }
}

fn write_all_vectored(f: &mut File, bufs: &[IoSlice<'_>]) -> io::Result<()> {
    let total: usize = bufs.iter().map(|b| b.len()).sum();
    let n = f.write_vectored(bufs)?;
    if n == total {
        return Ok(());
    }
    // Short write: finish the rest piece by piece.
    let mut skip = n;
    for b in bufs {
        if skip >= b.len() {
            skip -= b.len();
            continue;
        }
        f.write_all(&b[skip..])?;
        skip = 0;
    }
    Ok(())
}

/// Replays one segment; truncates a torn tail of the newest segment.
fn replay_segment<F>(
    path: &Path,
    id: u64,
    newest: bool,
    report: &mut ReplayReport,
    on_record: &mut F,
) -> io::Result<()>
where
    F: FnMut(u64, &[u8]),
{
    let mut data = Vec::new();
    File::open(path)?.read_to_end(&mut data)?;
    report.segments += 1;
    if data.len() < HEADER || &data[..HEADER] != MAGIC {
        // Not even a header: a segment torn at creation. Nothing in it was acknowledged.
        report.torn_bytes += data.len() as u64;
        if newest {
            fs::remove_file(path)?;
        }
        return Ok(());
    }
    let mut pos = HEADER;
    while pos + 8 <= data.len() {
        let len = u32::from_le_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(data[pos + 4..pos + 8].try_into().unwrap());
        let start = pos + 8;
        let Some(end) = start.checked_add(len).filter(|&e| e <= data.len() && len <= MAX_RECORD)
        else {
            break;
        };
        let payload = &data[start..end];
        if crc32c::crc32c(payload) != crc {
            break;
        }
        on_record(id, payload);
        report.records += 1;
        pos = end;
    }
    if pos < data.len() {
        report.torn_bytes += (data.len() - pos) as u64;
        if newest {
            let f = OpenOptions::new().write(true).open(path)?;
            f.set_len(pos as u64)?;
            f.sync_all()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn collect(dir: &Path, opts: WalOptions) -> (Wal, Vec<(u64, Vec<u8>)>, ReplayReport) {
        let mut got = Vec::new();
        let (wal, report) = Wal::open(dir, opts, |seg, p| got.push((seg, p.to_vec()))).unwrap();
        (wal, got, report)
    }

    #[test]
    fn appends_replay_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let (wal, got, _) = collect(tmp.path(), WalOptions::default());
        assert!(got.is_empty());
        for i in 0..100u32 {
            let seg = wal.append(&i.to_le_bytes().repeat(i as usize)).unwrap();
            wal.unpin(seg);
        }
        drop(wal);
        let (_, got, report) = collect(tmp.path(), WalOptions::default());
        assert_eq!(got.len(), 100);
        assert_eq!(report.records, 100);
        assert_eq!(report.torn_bytes, 0);
        for (i, (_, p)) in got.iter().enumerate() {
            assert_eq!(p, &(i as u32).to_le_bytes().repeat(i));
        }
    }

    #[test]
    fn torn_tail_is_cut_and_earlier_records_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let (wal, _, _) = collect(tmp.path(), WalOptions::default());
        for i in 0..10u8 {
            wal.append(&[i; 1000]).unwrap();
        }
        let seg = wal.active_segment();
        drop(wal);
        // Tear the last record in the middle.
        let path = segment_path(tmp.path(), seg);
        let len = fs::metadata(&path).unwrap().len();
        OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 500).unwrap();
        let (wal, got, report) = collect(tmp.path(), WalOptions::default());
        assert_eq!(got.len(), 9);
        assert_eq!(report.torn_bytes, 508);
        // Appends after the tear replay fine too.
        wal.append(b"after").unwrap();
        drop(wal);
        let (_, got, report) = collect(tmp.path(), WalOptions::default());
        assert_eq!(got.len(), 10);
        assert_eq!(got.last().unwrap().1, b"after");
        assert_eq!(report.torn_bytes, 0);
    }

    #[test]
    fn corrupt_crc_stops_the_segment() {
        let tmp = tempfile::tempdir().unwrap();
        let (wal, _, _) = collect(tmp.path(), WalOptions::default());
        for i in 0..3u8 {
            wal.append(&[i; 100]).unwrap();
        }
        let seg = wal.active_segment();
        drop(wal);
        let path = segment_path(tmp.path(), seg);
        let mut data = fs::read(&path).unwrap();
        let second_payload = HEADER + 108 + 8 + 10;
        data[second_payload] ^= 0xff;
        fs::write(&path, data).unwrap();
        let (_, got, report) = collect(tmp.path(), WalOptions::default());
        assert_eq!(got.len(), 1);
        assert_eq!(report.torn_bytes, 2 * 108);
    }

    #[test]
    fn rotation_and_deletion_respect_pins() {
        let tmp = tempfile::tempdir().unwrap();
        let opts = WalOptions { fsync: FsyncMode::Never, segment_bytes: 500 };
        let (wal, _, _) = collect(tmp.path(), opts.clone());
        let first = wal.append(&[1; 900]).unwrap(); // stays pinned
        for _ in 0..5 {
            let s = wal.append(&[2; 900]).unwrap();
            wal.unpin(s);
        }
        assert!(wal.active_segment() > first + 3);
        assert_eq!(wal.delete_before(u64::MAX).unwrap(), 0, "pinned segment blocks deletion");
        wal.unpin(first);
        let deleted = wal.delete_before(u64::MAX).unwrap();
        assert_eq!(deleted as u64, wal.active_segment() - first);
        drop(wal);
        let (_, got, _) = collect(tmp.path(), opts);
        assert_eq!(got.len(), 1, "only the active segment's record is left");
    }

    #[test]
    fn group_commit_from_many_threads() {
        let tmp = tempfile::tempdir().unwrap();
        let opts = WalOptions { fsync: FsyncMode::Always, segment_bytes: 1 << 20 };
        let (wal, _, _) = collect(tmp.path(), opts.clone());
        let wal = Arc::new(wal);
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let wal = wal.clone();
                std::thread::spawn(move || {
                    for i in 0..50u32 {
                        let s = wal.append(&(t * 1000 + i).to_le_bytes()).unwrap();
                        wal.unpin(s);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(wal.stats.fsyncs.load(Ordering::Relaxed) <= 400);
        drop(wal);
        let (_, got, _) = collect(tmp.path(), opts);
        assert_eq!(got.len(), 400);
    }

    #[test]
    fn garbage_header_segment_is_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(segment_path(tmp.path(), 1), b"garbage!!").unwrap();
        let (wal, got, report) = collect(tmp.path(), WalOptions::default());
        assert!(got.is_empty());
        assert_eq!(report.torn_bytes, 9);
        assert_eq!(wal.active_segment(), 2);
    }
}
