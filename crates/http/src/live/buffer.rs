//! What running builds printed so far, kept so that a live page opened
//! mid-build starts from the beginning (or from a marked cut), and which
//! builds ended here lately, so that their live page can move on to the
//! result. Plain data: the hub around it adds the lock and the channel.

use buildmesh_protocol::{CommitId, ProjectId, Timestamp};
use std::collections::{BTreeMap, VecDeque};

/// A cell, as live output names it: project, commit, platform.
pub type LiveCell = (ProjectId, CommitId, String);

/// Most bytes of output (step names included) kept per running build:
/// past this the oldest go, and a late comer is told how many.
pub const LIVE_TAIL_BYTES: usize = 256 * 1024;

/// Ended builds remembered, newest kept: enough for their pages to find
/// the result the node writes a moment after.
pub const ENDED_REMEMBERED: usize = 64;

/// How far past the cut a line break is looked for, so that kept output
/// starts with a whole line when one starts near the cut.
const LINE_SEARCH_BYTES: usize = 1024;

/// Some consecutive output of one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The step's name.
    pub step: String,
    /// What it printed.
    pub text: String,
}

/// What a build printed so far: the newest output within a byte budget,
/// and how many bytes were dropped before it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Bytes of output dropped to stay within the budget (0: none).
    pub cut_bytes: u64,
    /// The rest, oldest first; consecutive output of a step is one chunk.
    pub chunks: Vec<Chunk>,
}

/// Most bytes of text one piece of kept output holds. Output is kept in
/// pieces so that past the budget the oldest whole pieces go
/// (`pop_front`) and the front one is cut by moving an offset: a new
/// chunk never moves the output kept before it, which happens on the
/// build's output thread under the hub's lock.
const PIECE_BYTES_MAX: usize = 8 * 1024;

/// Some consecutive output of one step, at most [`PIECE_BYTES_MAX`] bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Piece {
    step: String,
    text: String,
}

/// Output of one running build, bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tail {
    pieces: VecDeque<Piece>,
    /// Bytes at the start of the front piece that were cut already.
    front_cut: usize,
    /// Bytes kept: texts (after the front cut) and step names.
    bytes: usize,
    cut_bytes: u64,
}

impl Tail {
    fn new() -> Tail {
        Tail {
            pieces: VecDeque::new(),
            front_cut: 0,
            bytes: 0,
            cut_bytes: 0,
        }
    }

    fn push(&mut self, step: &str, text: &str, budget: usize) {
        let mut rest = text;
        while !rest.is_empty() {
            let taken = self.append(step, rest);
            rest = &rest[taken..];
        }
        self.shrink(budget);
    }

    /// Appends as much of `text` as the last piece has room for, or starts
    /// a piece; returns how many bytes were taken (at least one character).
    fn append(&mut self, step: &str, text: &str) -> usize {
        if let Some(last) = self.pieces.back_mut()
            && last.step == step
        {
            let room = PIECE_BYTES_MAX.saturating_sub(last.text.len());
            let taken = char_floor(text, room);
            if taken > 0 {
                last.text.push_str(&text[..taken]);
                self.bytes += taken;
                return taken;
            }
        }
        // A piece holds at least one character, whatever its size.
        let taken = match char_floor(text, PIECE_BYTES_MAX) {
            0 => text.chars().next().map_or(text.len(), char::len_utf8),
            taken => taken,
        };
        self.pieces.push_back(Piece {
            step: step.to_owned(),
            text: text[..taken].to_owned(),
        });
        self.bytes += step.len() + taken;
        taken
    }

    /// Drops the oldest output until what is kept fits `budget`: whole
    /// pieces first, then the front of the oldest one left.
    fn shrink(&mut self, budget: usize) {
        while self.bytes > budget {
            let excess = self.bytes - budget;
            let Some(front) = self.pieces.front() else {
                self.bytes = 0;
                return;
            };
            let kept = front.text.get(self.front_cut..).unwrap_or_default();
            let cut = cut_point(kept, excess);
            if cut < kept.len() {
                self.front_cut += cut;
                self.bytes -= cut;
                self.cut_bytes += cut as u64;
            } else {
                self.bytes -= kept.len() + front.step.len();
                self.cut_bytes += kept.len() as u64;
                self.pieces.pop_front();
                self.front_cut = 0;
            }
        }
    }

    /// The kept output, consecutive pieces of a step as one chunk.
    fn backlog(&self) -> Backlog {
        let mut chunks: Vec<Chunk> = Vec::new();
        for (index, piece) in self.pieces.iter().enumerate() {
            let skip = if index == 0 { self.front_cut } else { 0 };
            let text = piece.text.get(skip..).unwrap_or_default();
            match chunks.last_mut() {
                Some(last) if last.step == piece.step => last.text.push_str(text),
                _ => chunks.push(Chunk {
                    step: piece.step.clone(),
                    text: text.to_owned(),
                }),
            }
        }
        Backlog {
            cut_bytes: self.cut_bytes,
            chunks,
        }
    }
}

/// The longest prefix of `text` no longer than `max` bytes that ends on a
/// character boundary, as a length.
fn char_floor(text: &str, max: usize) -> usize {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// Where to cut `text` to drop at least `excess` bytes: on a character
/// boundary, and after the next line break if one comes soon.
fn cut_point(text: &str, excess: usize) -> usize {
    let mut cut = excess.min(text.len());
    while !text.is_char_boundary(cut) {
        cut += 1;
    }
    let ahead = &text.as_bytes()[cut..text.len().min(cut + LINE_SEARCH_BYTES)];
    match ahead.iter().position(|&b| b == b'\n') {
        Some(at) => cut + at + 1,
        None => cut,
    }
}

/// Where a cell's build stands on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveState {
    /// It runs here now.
    Running,
    /// It ended here lately.
    Ended {
        /// When it started (its result, if written, is newer).
        started: Timestamp,
        /// When it ended.
        ended: Timestamp,
        /// Whether it was cancelled: it writes no result.
        cancelled: bool,
    },
    /// Nothing known: it never ran here, or ended long ago.
    Unknown,
}

/// Running builds' output so far, and builds that ended lately.
#[derive(Debug, Clone)]
pub struct LiveBuffers {
    running: BTreeMap<LiveCell, (Timestamp, Tail)>,
    ended: VecDeque<(LiveCell, LiveState)>,
    budget: usize,
}

impl Default for LiveBuffers {
    fn default() -> Self {
        LiveBuffers::new(LIVE_TAIL_BYTES)
    }
}

impl LiveBuffers {
    /// Keeping at most `budget` bytes of each running build's output.
    pub fn new(budget: usize) -> LiveBuffers {
        LiveBuffers {
            running: BTreeMap::new(),
            ended: VecDeque::new(),
            budget,
        }
    }

    /// A build of `cell` started at `now`: its output is kept from here
    /// (a build of it that ran before is forgotten).
    pub fn started(&mut self, cell: LiveCell, now: Timestamp) {
        self.ended.retain(|(c, _)| *c != cell);
        self.running.insert(cell, (now, Tail::new()));
    }

    /// `cell`'s running build printed `text` in `step`; whether it is
    /// running (output of a build not started here is not kept).
    pub fn output(&mut self, cell: &LiveCell, step: &str, text: &str) -> bool {
        match self.running.get_mut(cell) {
            Some((_, tail)) => {
                tail.push(step, text, self.budget);
                true
            }
            None => false,
        }
    }

    /// `cell`'s build ended at `now`: its output is dropped (its logs are
    /// blobs now) and its end remembered.
    pub fn ended(&mut self, cell: &LiveCell, now: Timestamp, cancelled: bool) {
        let Some((started, _)) = self.running.remove(cell) else {
            return;
        };
        self.ended.retain(|(c, _)| c != cell);
        if self.ended.len() >= ENDED_REMEMBERED {
            self.ended.pop_front();
        }
        let state = LiveState::Ended {
            started,
            ended: now,
            cancelled,
        };
        self.ended.push_back((cell.clone(), state));
    }

    /// Where `cell`'s build stands here.
    pub fn state(&self, cell: &LiveCell) -> LiveState {
        if self.running.contains_key(cell) {
            return LiveState::Running;
        }
        self.ended
            .iter()
            .rev()
            .find(|(c, _)| c == cell)
            .map_or(LiveState::Unknown, |(_, state)| *state)
    }

    /// What `cell`'s running build printed so far (`None`: not running).
    pub fn backlog(&self, cell: &LiveCell) -> Option<Backlog> {
        self.running.get(cell).map(|(_, tail)| tail.backlog())
    }

    /// Bytes held for running builds, for tests and metrics.
    pub fn bytes(&self) -> usize {
        self.running.values().map(|(_, tail)| tail.bytes).sum()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cell(n: u8) -> LiveCell {
        (
            ProjectId([n; 32]),
            CommitId::from_bytes(&[n; 20]).unwrap(),
            "linux".to_owned(),
        )
    }

    fn text(backlog: &Backlog) -> String {
        backlog.chunks.iter().map(|c| c.text.as_str()).collect()
    }

    #[test]
    fn a_late_comer_gets_everything_printed_so_far_by_step() {
        let mut buffers = LiveBuffers::default();
        buffers.started(cell(1), Timestamp(10));
        assert!(buffers.output(&cell(1), "build", "early\n"));
        assert!(buffers.output(&cell(1), "build", "still\n"));
        assert!(buffers.output(&cell(1), "test", "late\n"));
        assert!(!buffers.output(&cell(2), "build", "not started here\n"));
        let backlog = buffers.backlog(&cell(1)).unwrap();
        assert_eq!(backlog.cut_bytes, 0);
        assert_eq!(
            backlog.chunks,
            [
                Chunk {
                    step: "build".into(),
                    text: "early\nstill\n".into()
                },
                Chunk {
                    step: "test".into(),
                    text: "late\n".into()
                },
            ]
        );
        assert_eq!(buffers.backlog(&cell(2)), None);
        assert_eq!(buffers.state(&cell(1)), LiveState::Running);
        assert_eq!(buffers.state(&cell(2)), LiveState::Unknown);
    }

    #[test]
    fn the_oldest_output_goes_past_the_budget_and_is_counted() {
        let mut buffers = LiveBuffers::new(100);
        buffers.started(cell(1), Timestamp(0));
        for i in 0..50 {
            buffers.output(&cell(1), "test", &format!("line {i:02}\n"));
        }
        let backlog = buffers.backlog(&cell(1)).unwrap();
        let kept = text(&backlog);
        // 50 lines of 8 bytes; the step name counts too.
        assert!(kept.len() + "test".len() <= 100, "{kept:?}");
        assert!(kept.ends_with("line 49\n"), "{kept:?}");
        assert!(
            kept.starts_with("line "),
            "starts with a whole line: {kept:?}"
        );
        assert_eq!(backlog.cut_bytes as usize + kept.len(), 50 * 8);
        assert!(buffers.bytes() <= 100);
    }

    #[test]
    fn the_oldest_step_goes_first() {
        let mut buffers = LiveBuffers::new(64);
        buffers.started(cell(1), Timestamp(0));
        buffers.output(&cell(1), "build", &"b".repeat(40));
        buffers.output(&cell(1), "test", &"t".repeat(30));
        let backlog = buffers.backlog(&cell(1)).unwrap();
        assert_eq!(backlog.chunks[0].text, "b".repeat(25), "{backlog:?}");
        assert_eq!(backlog.chunks[1].text, "t".repeat(30));
        assert_eq!(backlog.cut_bytes, 15);
        // One chunk larger than the budget keeps its newest bytes, and
        // the older step is gone.
        buffers.output(&cell(1), "test", &"x".repeat(500));
        let backlog = buffers.backlog(&cell(1)).unwrap();
        assert_eq!(backlog.chunks.len(), 1, "{backlog:?}");
        assert_eq!(text(&backlog), "x".repeat(60));
        assert_eq!(backlog.cut_bytes, 40 + 30 + 440);
        assert_eq!(buffers.bytes(), 64);
    }

    #[test]
    fn a_cut_never_splits_a_character() {
        let mut buffers = LiveBuffers::new(10);
        buffers.started(cell(1), Timestamp(0));
        buffers.output(&cell(1), "s", "ééééééééééé");
        let kept = text(&buffers.backlog(&cell(1)).unwrap());
        assert!(kept.chars().all(|c| c == 'é'), "{kept:?}");
        assert!(!kept.is_empty() && kept.len() < 10, "{kept:?}");
        assert_eq!(cut_point("aé", 2), 3);
    }

    #[test]
    fn past_the_budget_whole_pieces_go_and_pieces_stay_small() {
        let mut buffers = LiveBuffers::default();
        buffers.started(cell(1), Timestamp(0));
        let line = format!("{}\n", "y".repeat(99));
        for _ in 0..10_000 {
            buffers.output(&cell(1), "test", &line);
        }
        let (_, tail) = &buffers.running[&cell(1)];
        assert!(tail.pieces.iter().all(|p| p.text.len() <= PIECE_BYTES_MAX));
        assert!(tail.pieces.len() <= LIVE_TAIL_BYTES / PIECE_BYTES_MAX + 2);
        assert!(tail.front_cut < PIECE_BYTES_MAX);
        assert!(buffers.bytes() <= LIVE_TAIL_BYTES);
        let backlog = buffers.backlog(&cell(1)).unwrap();
        assert_eq!(backlog.chunks.len(), 1, "one step, one chunk");
        let kept = text(&backlog);
        assert!(kept.len() + "test".len() * tail.pieces.len() > LIVE_TAIL_BYTES - 2 * 1024);
        assert!(kept.starts_with('y') && kept.ends_with('\n'));
        assert_eq!(backlog.cut_bytes as usize + kept.len(), 10_000 * 100);
    }

    #[test]
    fn an_ended_build_is_remembered_then_forgotten() {
        let mut buffers = LiveBuffers::default();
        buffers.started(cell(1), Timestamp(5));
        buffers.output(&cell(1), "build", "x");
        buffers.ended(&cell(1), Timestamp(9), false);
        assert_eq!(
            buffers.state(&cell(1)),
            LiveState::Ended {
                started: Timestamp(5),
                ended: Timestamp(9),
                cancelled: false
            }
        );
        assert_eq!(buffers.backlog(&cell(1)), None);
        assert_eq!(buffers.bytes(), 0);
        // Started again: running, from an empty backlog.
        buffers.started(cell(1), Timestamp(20));
        assert_eq!(buffers.state(&cell(1)), LiveState::Running);
        assert_eq!(buffers.backlog(&cell(1)), Some(Backlog::default()));
        // An end of a build that is not running changes nothing.
        buffers.ended(&cell(2), Timestamp(21), true);
        assert_eq!(buffers.state(&cell(2)), LiveState::Unknown);
        // Only the newest ends are remembered.
        for n in 0..=ENDED_REMEMBERED as u8 {
            buffers.started(cell(n + 10), Timestamp(30));
            buffers.ended(&cell(n + 10), Timestamp(31), true);
        }
        assert_eq!(buffers.state(&cell(10)), LiveState::Unknown);
        assert!(matches!(
            buffers.state(&cell(11)),
            LiveState::Ended {
                cancelled: true,
                ..
            }
        ));
    }

    /// What was written, as (step, text) in order.
    fn written_chunks(writes: &[(usize, String)]) -> Vec<(String, String)> {
        writes
            .iter()
            .map(|(step, text)| (format!("step{step}"), text.clone()))
            .collect()
    }

    /// The last `kept` bytes of `writes`, as a late comer should get them:
    /// consecutive output of a step as one chunk, no empty chunk.
    fn expected_suffix(writes: &[(String, String)], kept: usize) -> Vec<Chunk> {
        let total: usize = writes.iter().map(|(_, t)| t.len()).sum();
        let mut skip = total - kept;
        let mut chunks: Vec<Chunk> = Vec::new();
        for (step, text) in writes {
            let from = skip.min(text.len());
            skip -= from;
            let text = &text[from..];
            if text.is_empty() {
                continue;
            }
            match chunks.last_mut() {
                Some(last) if last.step == *step => last.text.push_str(text),
                _ => chunks.push(Chunk {
                    step: step.clone(),
                    text: text.to_owned(),
                }),
            }
        }
        chunks
    }

    proptest::proptest! {
        /// Whatever is written, what is kept fits the budget, is exactly
        /// the newest output (by step), and the cut count accounts for the
        /// rest; each piece stays small.
        #[test]
        fn what_is_kept_is_the_newest_output_within_the_budget(
            budget in 1usize..40_000,
            writes in proptest::collection::vec(
                (0usize..3, "([a-z\n]{0,40}|[é€😀x\n]{0,20}|[ab\n]{0,12000})"),
                0..40,
            ),
        ) {
            let mut buffers = LiveBuffers::new(budget);
            buffers.started(cell(1), Timestamp(0));
            for (step, text) in &writes {
                buffers.output(&cell(1), &format!("step{step}"), text);
            }
            let backlog = buffers.backlog(&cell(1)).unwrap();
            let kept = text(&backlog);
            let written = written_chunks(&writes);
            let all: String = written.iter().map(|(_, t)| t.as_str()).collect();
            proptest::prop_assert!(buffers.bytes() <= budget);
            proptest::prop_assert!(kept.len() <= budget);
            proptest::prop_assert!(all.ends_with(&kept));
            proptest::prop_assert_eq!(backlog.cut_bytes as usize + kept.len(), all.len());
            proptest::prop_assert_eq!(&backlog.chunks, &expected_suffix(&written, kept.len()));
            let (_, tail) = &buffers.running[&cell(1)];
            proptest::prop_assert!(tail.pieces.iter().all(|p| p.text.len() <= PIECE_BYTES_MAX));
            let held: usize = tail.pieces.iter().map(|p| p.step.len() + p.text.len()).sum();
            proptest::prop_assert_eq!(held - tail.front_cut, buffers.bytes());
        }
    }
}
