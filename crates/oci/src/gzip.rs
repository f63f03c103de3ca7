//! Block-parallel gzip in the manner of pigz: the input is cut into fixed-size blocks, each block
//! is deflated on its own with the previous block's last 32 KiB as its dictionary and ends on a
//! byte boundary (a sync flush; the last block finishes the stream), and the raw deflate pieces
//! are concatenated between one gzip header and one trailer (CRC-32 and length of the whole
//! input).
//!
//! The bytes depend only on the input, the level and [`BLOCK_SIZE`], never on the number of
//! threads or on timing: a block's output is a function of (block, previous block's tail,
//! level), and blocks are written in order. So a layer's digest is the same on a laptop and a
//! 64-core runner.
//!
//! [`ParallelGzip`] is a [`Write`]: the calling thread cuts blocks, keeps the CRC and writes
//! finished pieces out in order (hashing them, to a file, to an upload), while worker threads
//! compress.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Compress, Compression, FlushCompress, Status};

/// Uncompressed bytes per block. Part of the output's identity: changing it changes digests
/// (and must come with a bump of [`crate::layer::COMPRESSOR`]).
pub const BLOCK_SIZE: usize = 1 << 20;

/// The dictionary each block gets from the one before: deflate's whole window.
const DICTIONARY: usize = 32 * 1024;

/// Threads to compress with when the caller does not say: the machine's parallelism.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

struct Job {
    data: Vec<u8>,
    dictionary: Vec<u8>,
    last: bool,
    level: u32,
    done: Sender<io::Result<Vec<u8>>>,
}

/// A gzip stream written with `threads` compressing threads (1: no thread, all inline).
pub struct ParallelGzip<W: Write> {
    /// `None` only after [`ParallelGzip::finish`].
    out: Option<W>,
    level: u32,
    block: Vec<u8>,
    dictionary: Vec<u8>,
    crc: flate2::Crc,
    /// Compressed pieces not yet written, in input order.
    pending: VecDeque<Receiver<io::Result<Vec<u8>>>>,
    max_pending: usize,
    jobs: Option<SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
    header_written: bool,
}

impl<W: Write> ParallelGzip<W> {
    /// A stream at `level` (0..=9) into `out`. Nothing is written until the first block or
    /// [`ParallelGzip::finish`].
    pub fn new(out: W, level: u32, threads: usize) -> Self {
        let threads = threads.max(1);
        let (jobs, workers) = if threads > 1 {
            let (tx, rx) = sync_channel::<Job>(threads);
            let rx = Arc::new(Mutex::new(rx));
            let workers = (0..threads)
                .map(|_| {
                    let rx = rx.clone();
                    std::thread::spawn(move || {
                        loop {
                            let job = match rx.lock() {
                                Ok(rx) => rx.recv(),
                                Err(_) => return,
                            };
                            let Ok(job) = job else { return };
                            let piece =
                                deflate_block(&job.data, &job.dictionary, job.level, job.last);
                            let _ = job.done.send(piece);
                        }
                    })
                })
                .collect();
            (Some(tx), workers)
        } else {
            (None, Vec::new())
        };
        ParallelGzip {
            out: Some(out),
            level,
            block: Vec::with_capacity(BLOCK_SIZE),
            dictionary: Vec::new(),
            crc: flate2::Crc::new(),
            pending: VecDeque::new(),
            max_pending: threads * 2,
            jobs,
            workers,
            header_written: false,
        }
    }

    fn out(&mut self) -> &mut W {
        self.out.as_mut().expect("the output is there until finish")
    }

    fn write_header(&mut self) -> io::Result<()> {
        if !self.header_written {
            let header = header(self.level);
            self.out().write_all(&header)?;
            self.header_written = true;
        }
        Ok(())
    }

    /// Hand the current block to a worker (or compress it here), keeping its tail as the next
    /// block's dictionary.
    fn submit(&mut self, last: bool) -> io::Result<()> {
        self.write_header()?;
        let data = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK_SIZE));
        // Every block but the last is full, so its tail is a whole window.
        let next_dictionary = data[data.len().saturating_sub(DICTIONARY)..].to_vec();
        let dictionary = std::mem::replace(&mut self.dictionary, next_dictionary);
        match &self.jobs {
            None => {
                let piece = deflate_block(&data, &dictionary, self.level, last)?;
                self.out().write_all(&piece)?;
            }
            Some(jobs) => {
                let (done, piece) = channel();
                jobs.send(Job {
                    data,
                    dictionary,
                    last,
                    level: self.level,
                    done,
                })
                .map_err(|_| io::Error::other("gzip worker threads stopped"))?;
                self.pending.push_back(piece);
                while self.pending.len() >= self.max_pending {
                    self.write_oldest()?;
                }
            }
        }
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        if let Some(piece) = self.pending.pop_front() {
            let piece = piece
                .recv()
                .map_err(|_| io::Error::other("a gzip worker thread died"))??;
            self.out().write_all(&piece)?;
        }
        Ok(())
    }

    /// Compress what is left, write the trailer, stop the workers, and return the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.submit(true)?;
        while !self.pending.is_empty() {
            self.write_oldest()?;
        }
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&self.crc.sum().to_le_bytes());
        trailer[4..].copy_from_slice(&self.crc.amount().to_le_bytes());
        self.out().write_all(&trailer)?;
        Ok(self.out.take().expect("the output is there until finish"))
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = BLOCK_SIZE - self.block.len();
        let n = buf.len().min(room);
        self.block.extend_from_slice(&buf[..n]);
        self.crc.update(&buf[..n]);
        if self.block.len() == BLOCK_SIZE {
            self.submit(false)?;
        }
        Ok(n)
    }

    /// Writes out the pieces already compressed; a partial block stays until it is full or the
    /// stream finishes (flushing it early would change the bytes).
    fn flush(&mut self) -> io::Result<()> {
        self.out().flush()
    }
}

impl<W: Write> Drop for ParallelGzip<W> {
    fn drop(&mut self) {
        // Finished, or dropped after an error upstream: stop the workers, write nothing more.
        self.jobs = None;
        self.pending.clear();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// The 10-byte gzip header layers carry: deflate, no flags, mtime 0, the extra-flags byte as
/// zlib sets it for the level, OS 255 ("unknown"). Identical to what `flate2::GzBuilder` with
/// `mtime(0)` and `operating_system(255)` writes.
fn header(level: u32) -> [u8; 10] {
    let xfl = if level >= 9 {
        2
    } else if level <= 1 {
        4
    } else {
        0
    };
    [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]
}

/// Raw deflate of one block: primed with `dictionary`, ending on a byte boundary (sync flush),
/// or ending the stream when `last`.
fn deflate_block(data: &[u8], dictionary: &[u8], level: u32, last: bool) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(Compression::new(level), false);
    if !dictionary.is_empty() {
        c.set_dictionary(dictionary).map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(data.len() / 2 + 1024);
    loop {
        let consumed = c.total_in() as usize;
        if out.len() == out.capacity() {
            out.reserve(out.capacity().max(64 * 1024));
        }
        let status = c
            .compress_vec(&data[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        let all_in = c.total_in() as usize == data.len();
        let room_left = out.len() < out.capacity();
        match status {
            Status::StreamEnd => return Ok(out),
            Status::Ok | Status::BufError if !last && all_in && room_left => return Ok(out),
            Status::Ok | Status::BufError => {}
        }
    }
}

/// gzip `data` with `threads` threads, as layers are compressed: for tests and the benchmark.
pub fn compress(data: &[u8], level: u32, threads: usize) -> io::Result<Vec<u8>> {
    let mut gz = ParallelGzip::new(Vec::with_capacity(data.len() / 2), level, threads);
    gz.write_all(data)?;
    gz.finish()
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// Compressible but not trivial: a binary-like mix of repeats and noise.
    fn sample(len: usize) -> Vec<u8> {
        let mut x: u32 = 0x1234_5678;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                if i % 7 < 4 { (i / 64) as u8 } else { x as u8 }
            })
            .collect()
    }

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn output_is_the_same_for_any_thread_count_and_gunzips_to_the_input() {
        for len in [
            0,
            1,
            DICTIONARY - 1,
            BLOCK_SIZE - 1,
            BLOCK_SIZE,
            BLOCK_SIZE + 1,
            3 * BLOCK_SIZE + 12345,
        ] {
            let data = sample(len);
            let one = compress(&data, 1, 1).unwrap();
            for threads in [2, 3, 8] {
                assert!(
                    one == compress(&data, 1, threads).unwrap(),
                    "{len} bytes: 1 and {threads} threads differ"
                );
            }
            assert!(gunzip(&one) == data, "{len} bytes: round trip");
            assert_eq!(&one[..10], &header(1));
        }
    }

    #[test]
    fn small_writes_and_one_big_write_give_the_same_bytes() {
        let data = sample(2 * BLOCK_SIZE + 999);
        let mut gz = ParallelGzip::new(Vec::new(), 1, 2);
        for chunk in data.chunks(4093) {
            gz.write_all(chunk).unwrap();
        }
        assert!(gz.finish().unwrap() == compress(&data, 1, 2).unwrap());
    }

    #[test]
    fn the_system_gzip_reads_it() {
        let data = sample(BLOCK_SIZE + 77);
        let gz = compress(&data, 6, 2).unwrap();
        let mut child = std::process::Command::new("gzip")
            .args(["-t", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("gzip runs");
        child.stdin.take().unwrap().write_all(&gz).unwrap();
        assert!(child.wait().unwrap().success());
    }

    #[test]
    fn dictionaries_keep_the_ratio_close_to_one_stream() {
        let data = sample(4 * BLOCK_SIZE);
        let blocks = compress(&data, 1, 2).unwrap().len() as f64;
        let mut single = flate2::write::GzEncoder::new(Vec::new(), Compression::new(1));
        single.write_all(&data).unwrap();
        let single = single.finish().unwrap().len() as f64;
        assert!(blocks / single < 1.02, "{blocks} vs {single}");
    }
}
